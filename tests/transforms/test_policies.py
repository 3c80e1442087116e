"""RandAugment and TrivialAugmentWide: torchvision's operations and magnitude tables,
uniform operation draws per image, each operation against torchvision's functional."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from kaug.transforms import RandAugment, TrivialAugmentWide
from kaug.transforms.policies import OPS, SIGNED, magnitude_table


@pytest.fixture(scope="module")
def rgb(mnist):
    """Eight real RGB images, integer levels 0..255 as floats."""
    digits = torch.from_numpy(mnist["x_train"][:24].astype("float32")).view(3, 8, 28, 28)
    return torch.stack([digits[0], 30 + 0.7 * digits[1], 220 - 0.6 * digits[2]], 1).round()


@pytest.mark.parametrize("cls,ours", [(v2.RandAugment, False), (v2.TrivialAugmentWide, True)])
def test_operations_and_magnitudes_are_torchvisions(cls, ours):
    space = cls._AUGMENTATION_SPACE
    assert tuple(space) == OPS
    for op, (magnitudes, signed) in space.items():
        expected = magnitudes(31, 20, 30)
        table = magnitude_table(op, 31, 20, 30, wide=ours)
        if expected is None or expected.ndim == 0:
            assert table is None, op
        else:
            torch.testing.assert_close(table.float(), expected.float(), msg=op)
        assert signed == (op in SIGNED), op


def test_each_image_draws_its_operations_uniformly():
    params = RandAugment(num_ops=2).draw((14000, 3, 8, 8), torch.Generator().manual_seed(0))
    counts = np.bincount(params["ops"].flatten().numpy(), minlength=len(OPS))
    assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(float(params["negative"].float().mean()) - 0.5) < 0.02
    bins = TrivialAugmentWide().draw((31000, 3, 8, 8), torch.Generator().manual_seed(1))["bins"]
    assert stats.chisquare(np.bincount(bins.flatten().numpy(), minlength=31)).pvalue > 1e-3


def forced(policy, x, op, negative=False):
    """`policy` with every image drawing `op` (once)."""
    params = {
        "ops": torch.full((len(x), 1), OPS.index(op)),
        "bins": torch.full((len(x), 1), policy.magnitude),
        "negative": torch.full((len(x), 1), negative),
    }
    return policy.apply(x, params)


# torchvision's operations as RandAugment calls them, on [0, 1] floats (bytes for the
# two that work on levels), scaled back to 0..255.
OPERATIONS = {
    "Brightness": lambda x, m: TF.adjust_brightness(x, 1 + m),
    "Color": lambda x, m: TF.adjust_saturation(x, 1 + m),
    "Contrast": lambda x, m: TF.adjust_contrast(x, 1 + m),
    "Sharpness": lambda x, m: TF.adjust_sharpness(x, 1 + m),
    "Solarize": lambda x, m: TF.solarize(x, m),
    "AutoContrast": lambda x, m: TF.autocontrast(x),
    "Identity": lambda x, m: x,
    "TranslateX": lambda x, m: TF.affine(x, 0.0, [int(m), 0], 1.0, [0.0, 0.0]),
    "TranslateY": lambda x, m: TF.affine(x, 0.0, [0, int(m)], 1.0, [0.0, 0.0]),
}
ON_BYTES = {
    "Posterize": lambda x, m: TF.posterize(x, int(m)),
    "Equalize": lambda x, m: TF.equalize(x),
}


@pytest.mark.parametrize("op", [*OPERATIONS, *ON_BYTES])
@pytest.mark.parametrize("negative", [False, True])
def test_each_operation_is_torchvisions(rgb, op, negative):
    policy = RandAugment(num_ops=1, magnitude=20)
    table = magnitude_table(op, 31, 28, 28)
    magnitude = 0.0 if table is None else float(table[20])
    if negative and op in SIGNED:
        magnitude = -magnitude
    if op in ON_BYTES:
        expected = ON_BYTES[op](rgb.to(torch.uint8), magnitude).float()
    else:
        expected = OPERATIONS[op](rgb / 255, magnitude) * 255
    served = forced(policy, rgb, op, negative)
    torch.testing.assert_close(served, expected, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("op", ["Rotate", "ShearX", "ShearY"])
def test_geometric_operations_agree_with_torchvision_up_to_nearest_ties(rgb, op):
    policy = RandAugment(num_ops=1, magnitude=20)
    m = float(magnitude_table(op, 31, 28, 28)[20])
    if op == "Rotate":
        reference = TF.rotate(rgb, m)
    else:
        shear = (
            [math.degrees(math.atan(m)), 0.0]
            if op == "ShearX"
            else [0.0, math.degrees(math.atan(m))]
        )
        reference = TF.affine(rgb, 0.0, [0, 0], 1.0, shear, center=[0, 0])
    agree = (forced(policy, rgb, op) == reference).float().mean()
    assert agree > 0.9  # pixels whose source falls on a half-pixel tie may round apart


def test_policies_run_on_the_whole_batch_with_p(rgb):
    out = RandAugment(p=0.5)(rgb, torch.Generator().manual_seed(3))
    assert out.shape == rgb.shape and bool(torch.isfinite(out).all())
    assert 0 <= float(out.min()) and float(out.max()) <= 255
    with pytest.raises(ValueError, match="magnitude"):
        RandAugment(magnitude=31)
