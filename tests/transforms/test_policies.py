"""RandAugment, TrivialAugmentWide and AugMix: torchvision's operations and magnitude
tables, their draws per image against torchvision's distributions, each operation
against torchvision's functional, AugMix's chains and mix against its arithmetic."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from kaug.transforms import AugMix, RandAugment, TrivialAugmentWide
from kaug.transforms.policies import AUGMIX_OPS, OPS, SIGNED, magnitude_table


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
    # A shear of 0.2 puts whole rows exactly on half-pixel ties, which float
    # rounding may tip apart; the rotation has none here and agrees on every pixel.
    assert agree == 1.0 if op == "Rotate" else agree > 0.985


def test_policies_run_on_the_whole_batch_with_p(rgb):
    out = RandAugment(p=0.5)(rgb, torch.Generator().manual_seed(3))
    assert out.shape == rgb.shape and bool(torch.isfinite(out).all())
    assert 0 <= float(out.min()) and float(out.max()) <= 255
    with pytest.raises(ValueError, match="magnitude"):
        RandAugment(magnitude=31)


def test_augmix_operations_and_magnitudes_are_torchvisions():
    for all_ops, space in [(True, v2.AugMix._AUGMENTATION_SPACE),
                           (False, v2.AugMix._PARTIAL_AUGMENTATION_SPACE)]:  # fmt: skip
        ops = AUGMIX_OPS[1:] if all_ops else AUGMIX_OPS[1 : AUGMIX_OPS.index("Equalize") + 1]
        assert tuple(space) == ops
    for op, (magnitudes, signed) in v2.AugMix._AUGMENTATION_SPACE.items():
        expected = magnitudes(10, 20, 30)
        table = AugMix.magnitude_table(op, 10, 20, 30)
        if expected is None:
            assert table is None, op
        else:
            torch.testing.assert_close(table.float(), expected.float(), msg=op)
        assert signed == (op in SIGNED), op


@pytest.mark.parametrize("all_ops", [True, False])
def test_augmix_draws_are_torchvisions_distributions(all_ops):
    n, alpha = 20000, 0.7
    augmix = AugMix(severity=4, mixture_width=3, alpha=alpha, all_ops=all_ops)
    params = augmix.draw((n, 3, 8, 8), torch.Generator().manual_seed(0))
    ops, bins = params["ops"], params["bins"]
    lengths = (ops > 0).sum(2)  # a chain ends with its first "Identity"
    assert torch.equal(ops > 0, torch.arange(3) < lengths.unsqueeze(-1))
    assert stats.chisquare(np.bincount(lengths.flatten().numpy())[1:]).pvalue > 1e-3
    drawn = ops[ops > 0].numpy()
    choices = 13 if all_ops else 9
    assert drawn.min() == 1 and drawn.max() == choices
    assert stats.chisquare(np.bincount(drawn)[1:]).pvalue > 1e-3
    assert stats.chisquare(np.bincount(bins.flatten().numpy())).pvalue > 1e-3
    assert bins.max() == 3
    original, weights = params["original"].numpy(), params["weights"].numpy()
    np.testing.assert_allclose(original + weights.sum(1), 1.0, atol=1e-9)
    assert stats.kstest(original, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    share = weights[:, 0] / (1 - original)  # a Dirichlet(alpha x 3) marginal
    assert stats.kstest(share, stats.beta(alpha, 2 * alpha).cdf).pvalue > 1e-3


def test_augmix_mixes_torchvisions_chains(rgb):
    """Given kaug's draws, the output is torchvision's own AugMix arithmetic: each chain
    through torchvision's operations (those exact on floats: colour, tone, whole-pixel
    translations), then m * x + sum of the weighted chains."""
    augmix = AugMix(mixture_width=3, chain_depth=2, alpha=1.0)
    params = augmix.draw(rgb.shape, torch.Generator().manual_seed(5))
    exact = ["TranslateX", "TranslateY", "Brightness", "Color", "Contrast", "Sharpness",
             "Solarize", "AutoContrast"]  # fmt: skip
    drawn = torch.randint(len(exact), params["ops"].shape, generator=torch.Generator())
    params["ops"] = torch.tensor([AUGMIX_OPS.index(op) for op in exact])[drawn]
    out = augmix.transform(rgb, params)
    reference = v2.AugMix()
    for i, image in enumerate(rgb / 255):
        mix = float(params["original"][i]) * image
        for chain in range(3):
            augmented = image
            for step in range(2):
                op = AUGMIX_OPS[int(params["ops"][i, chain, step])]
                table = AugMix.magnitude_table(op, 10, 28, 28)
                m = 0.0 if table is None else float(table[params["bins"][i, chain, step]])
                if op in SIGNED and params["negative"][i, chain, step]:
                    m = -m
                augmented = reference._apply_image_or_video_transform(
                    augmented, op, m, v2.InterpolationMode.BILINEAR, reference._fill
                )
            mix = mix + float(params["weights"][i, chain]) * augmented
        torch.testing.assert_close(out[i], mix * 255, atol=1e-2, rtol=0)


def test_augmix_refuses_bad_arguments_by_name():
    for bad in ({"severity": 0}, {"severity": 11}, {"chain_depth": 0}, {"alpha": 0},
                {"mixture_width": 0}, {"interpolation": "cubic"}, {"all_ops": "y"}):  # fmt: skip
        with pytest.raises(ValueError, match=f"Received: {next(iter(bad))}="):
            AugMix(**bad)
