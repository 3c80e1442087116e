"""Targets follow their images: every registered transform, alone and fused.

Each of kaug's registered transforms is listed in `KINDS` with what it does to
the pixels' places; a new transform fails `test_every_transform_is_classified`
until its author says which it is, and the checks below then hold it to it:

- "moves": it moves pixels (`moves_pixels`), and the masks of a batch move with
  them, exactly (label values of every integer width kept) and in step: on the
  label-coded images below, the images' values inside each mask label stay one
  value (a misaligned mask mixes the labels' values);
- "refuses": it moves pixels but cannot move masks (AugMix's blend of chains): a
  batch with masks is refused by name;
- "still": it moves no pixel; masks come out as they went in, and the same
  label-coded check, against the unmoved masks, proves the pixels stayed;
- "noisy": moves no pixel, but changes pixels independently (noise, erasing), so
  the label-coded check does not apply; masks come out as they went in;
- "blends": MixUp: each image blended with another, its masks left as they are.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaug
from kaug.batch import Batch
from kaug.transforms import (
    AugMix,
    BatchFunction,
    CenterCrop,
    ColorJitter,
    CutMix,
    KerasAugmentation,
    MixUp,
    RandAugment,
    RandomCrop,
    RandomElasticTransform,
    RandomPerspective,
    RandomResizedCrop,
    TrivialAugmentWide,
    registered_transforms,
)
from kaug.transforms.policies import GEOMETRIC

# Strong settings, so that the pixels really move (or really change).
EXAMPLES = {
    "KerasAugmentation": lambda: KerasAugmentation(
        rotation_range=40, width_shift_range=0.2, shear_range=20, zoom_range=0.3,
        horizontal_flip=True, vertical_flip=True, fill_mode="constant",
    ),  # fmt: skip
    "RandomCrop": lambda: RandomCrop(40, padding=6),
    "CenterCrop": lambda: CenterCrop((30, 40)),
    "RandomResizedCrop": lambda: RandomResizedCrop(40, scale=(0.3, 1.0)),
    "RandomPerspective": lambda: RandomPerspective(0.6, p=1.0),
    "RandomElasticTransform": lambda: RandomElasticTransform(alpha=300.0, sigma=8.0),
    # One operation: a 3x3 Sharpness before a nearest warp would leave sharpened
    # edge pixels inside a label, which the label-coded check cannot tell from a
    # misaligned mask (three operations: `test_masks_land_on_the_pixels_exactly`).
    "RandAugment": lambda: RandAugment(num_ops=1, magnitude=15),
    "TrivialAugmentWide": lambda: TrivialAugmentWide(),
    "AugMix": lambda: AugMix(),
    "CutMix": lambda: CutMix(alpha=1.0),
    "MixUp": lambda: MixUp(alpha=1.0, num_classes=1),
    "ColorJitter": lambda: ColorJitter(0.4, 0.4, 0.4, 0.1),
    "BatchFunction": lambda: BatchFunction(torch.sqrt),
}
# The same moves with nearest sampling and nothing photometric: the images are then
# exactly 40 * label wherever the masks are that label, every pixel, edges included.
NEAREST = {
    "KerasAugmentation": lambda: KerasAugmentation(
        rotation_range=40, width_shift_range=0.2, shear_range=20, zoom_range=0.3,
        horizontal_flip=True, vertical_flip=True, fill_mode="constant", interpolation_order=0,
    ),  # fmt: skip
    "RandomCrop": lambda: RandomCrop(40, padding=6),
    "CenterCrop": lambda: CenterCrop((30, 56)),
    "RandomResizedCrop": lambda: RandomResizedCrop(40, (0.3, 1.0), interpolation="nearest"),
    "RandomPerspective": lambda: RandomPerspective(0.6, interpolation="nearest", p=1.0),
    "RandomElasticTransform": lambda: RandomElasticTransform(300.0, 8.0, interpolation="nearest"),
    "RandAugment": lambda: RandAugment(num_ops=3, magnitude=15),
    "TrivialAugmentWide": lambda: TrivialAugmentWide(),
    "CutMix": lambda: CutMix(alpha=1.0),
}

KINDS = {
    "moves": {"KerasAugmentation", "RandomCrop", "CenterCrop", "RandomResizedCrop",
              "RandomPerspective", "RandomElasticTransform", "RandAugment",
              "TrivialAugmentWide", "CutMix"},
    "refuses": {"AugMix"},
    "blends": {"MixUp"},
    "noisy": {"RandomGaussianNoise", "RandomSaltAndPepper", "RandomErasing"},
    "still": {"BatchFunction", "ColorJitter", "RandomAutoContrast", "RandomContrast",
              "RandomDilation", "RandomEqualize", "RandomErosion", "RandomGamma",
              "RandomGaussianBlur", "RandomGrayscale", "RandomHue", "RandomInvert",
              "RandomPosterize", "RandomSaturation", "RandomSharpness", "RandomSolarize"},
}  # fmt: skip
KIND = {name: kind for kind, names in KINDS.items() for name in names}
KAUG_TRANSFORMS = sorted(
    name for name, cls in registered_transforms().items() if cls.__module__.startswith("kaug.")
)

# Label offsets per mask dtype: values a float32 (or float64) could not hold exactly.
MASK_DTYPES = {
    torch.uint8: 200,
    torch.int8: -120,
    torch.int16: 30000,
    torch.int32: 2**31 - 10,
    torch.int64: 2**62 + 1,
}
BLOCK, GRID = 8, 6  # labels in 8x8 blocks on a 6x6 grid: 48x48 images
# Float rounding of bilinear sampling in float32 (values up to 255); a mask one pixel
# off its image gives a spread of 40 (neighbouring labels' colours) or more.
TOLERANCE = 0.01


def make(name):
    cls = registered_transforms()[name]
    transform = EXAMPLES[name]() if name in EXAMPLES else cls()
    transform.p = 1.0
    return transform


def label_coded(batch=6, seed=0):
    """(images, labels): labels 0..5 in 8x8 blocks, and RGB images whose every channel
    is 40 * label, so the fill value (0) is label 0's colour."""
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.integers(0, 6, (batch, 1, GRID, GRID)))
    labels = labels.repeat_interleave(BLOCK, 2).repeat_interleave(BLOCK, 3)
    return (40.0 * labels).expand(batch, 3, -1, -1).contiguous(), labels


def coded_masks(labels, dtype):
    """The labels as masks of `dtype`, label 0 kept 0 (the fill), the others shifted
    to values that only an exact move keeps."""
    if dtype == torch.bool:
        return labels > 0
    return torch.where(labels > 0, labels + MASK_DTYPES[dtype], 0).to(dtype)


def decoded(masks):
    """`coded_masks` back to the labels 0..5."""
    if masks.dtype == torch.bool:
        return masks.long()
    return torch.where(masks != 0, masks.long() - MASK_DTYPES[masks.dtype], 0)


def spread(images, masks, margin=2):
    """The largest range of the images' mean channel over the pixels of one mask label
    in one image, counting only pixels at least `margin` from the border whose
    (2 margin + 1)^2 neighbourhood in the mask holds that label alone (interpolation
    and 3x3 kernels blend across a label's edge; a mask a pixel off puts whole rows
    of another label's colour inside)."""
    _, codes = torch.unique(masks, return_inverse=True)  # exact: labels of any width
    codes = codes.to(torch.float64)
    size = 2 * margin + 1
    uniform = F.max_pool2d(codes, size, 1) == -F.max_pool2d(-codes, size, 1)
    values = images.double().mean(1)[:, margin:-margin, margin:-margin]
    codes = codes[:, 0, margin:-margin, margin:-margin]
    worst = 0.0
    for b in range(len(images)):
        inside = uniform[b, 0]
        labels, pixels = codes[b][inside], values[b][inside]
        for label in labels.unique():
            chosen = pixels[labels == label]
            worst = max(worst, (chosen.max() - chosen.min()).item())
    return worst


def run(transform, images, masks, seed=0, labels=None):
    generator = torch.Generator().manual_seed(seed)
    return transform.call_batch(Batch(images, masks, labels), generator)


def test_every_transform_is_classified():
    assert set(KAUG_TRANSFORMS) == set(KIND), "classify the new transform in KINDS"


@pytest.mark.parametrize("name", KAUG_TRANSFORMS)
def test_the_declaration_matches_the_kind(name):
    transform = make(name)
    moves = KIND[name] in ("moves", "refuses")
    assert transform.moves_pixels == moves
    assert ("masks" in transform.writes) == (KIND[name] == "moves")


@pytest.mark.parametrize("dtype", [*MASK_DTYPES, torch.bool], ids=str)
@pytest.mark.parametrize("name", KAUG_TRANSFORMS)
def test_masks_follow_their_images_exactly(name, dtype):
    images, labels = label_coded()
    masks = coded_masks(labels, dtype)
    transform, kind = make(name), KIND[name]
    labels_in = torch.zeros(len(images), 1) if kind == "blends" else None
    if kind == "refuses":
        with pytest.raises(ValueError, match=f"transforms={name!r}.*|{name}.*cannot move the"):
            run(transform, images, masks)
        return
    out = run(transform, images, masks, labels=labels_in)
    assert out.masks.dtype == dtype
    assert out.masks.shape[2:] == out.images.shape[2:]
    if kind != "moves":
        assert out.masks is masks
        if kind == "still" and dtype != torch.bool:  # the pixels stayed where the masks are
            assert spread(out.images, masks) < TOLERANCE
        return
    # Exact values: every label that comes out went in (or is the fill, 0).
    assert set(out.masks.unique().tolist()) <= set(masks.unique().tolist()) | {0}
    moved = not torch.equal(out.masks, masks[..., : out.masks.shape[2], : out.masks.shape[3]])
    assert moved, f"{name} did not move the masks"
    if dtype != torch.bool:
        assert spread(out.images, out.masks) < TOLERANCE
        # The check has teeth: the same images against the masks left behind.
        if out.masks.shape == masks.shape:
            assert spread(out.images, masks) > 10


def test_the_unmoved_masks_would_fail_the_check():
    """The label-coded check fails for masks a few pixels off their images."""
    images, labels = label_coded()
    assert spread(images, labels) == 0
    assert spread(images, labels.roll(3, dims=3)) > 10


def geometric_only(transform, params):
    """A policy's draws with every operation replaced by a geometric one."""
    ops = params["ops"]
    geometric = torch.tensor([transform.ops.index(op) for op in sorted(GEOMETRIC)])
    params["ops"] = geometric[ops % len(geometric)]
    return params


@pytest.mark.parametrize("dtype", [*MASK_DTYPES, torch.bool], ids=str)
@pytest.mark.parametrize("name", sorted(NEAREST))
def test_masks_land_on_the_pixels_exactly(name, dtype):
    """Nearest sampling: every pixel of every image is 40 * the label its mask has,
    edges and fills included, for every integer width (RandAugment with three
    geometric operations drawn per image)."""
    images, labels = label_coded()
    masks = coded_masks(labels, dtype)
    transform = NEAREST[name]()
    params = transform.draw(images.shape, torch.Generator().manual_seed(2))
    if name in ("RandAugment", "TrivialAugmentWide"):
        params = geometric_only(transform, params)
    out = transform.transform_batch(Batch(images, masks), params)
    assert out.masks.dtype == dtype
    assert not torch.equal(out.masks, masks[..., : out.masks.shape[2], : out.masks.shape[3]])
    expected = 40.0 * decoded(out.masks)
    if dtype == torch.bool:
        expected = torch.where(out.masks, out.images[:, :1], 0.0)
    assert torch.equal(out.images[:, :1], expected.to(out.images.dtype))


FUSED = [
    {"rotation_range": 30, "zoom_range": 0.2, "fill_mode": "constant",
     "transforms": [RandomCrop(40, padding=4), RandomResizedCrop(32, interpolation="nearest")]},
    {"width_shift_range": 0.2, "horizontal_flip": True, "fill_mode": "reflect",
     "transforms": [RandomPerspective(0.5, interpolation="nearest", p=1.0), CutMix()]},
    {"shear_range": 20, "vertical_flip": True, "fill_mode": "wrap",
     "transforms": [RandomElasticTransform(300.0, 8.0, interpolation="nearest"), CenterCrop(36)]},
]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("config", FUSED, ids=["crops", "perspective+cutmix", "elastic"])
def test_masks_follow_through_fused_pipelines(config, dtype):
    """`flow(x, masks=...)` through the Keras stage fused with geometric runs, then
    CutMix, nearest: every served pixel is 40 * its served mask's label."""
    images, labels = label_coded(batch=8, seed=1)
    masks = coded_masks(labels, dtype)
    datagen = kaug.ImageDataGenerator(
        device="cpu", data_format="channels_first", interpolation_order=0, **config
    )
    flow = datagen.flow(images, masks=masks[:, 0], batch_size=8, seed=3, shuffle=False)
    x, y = (torch.as_tensor(np.asarray(part)) for part in next(iter(flow)))
    assert y.dtype == dtype
    assert not torch.equal(y, masks[:, 0, : y.shape[1], : y.shape[2]])
    assert torch.equal(x[:, 0], 40.0 * decoded(y).to(x.dtype))


def test_kornia_masks_keep_every_label_value():
    """A geometric kornia module moves the masks with kornia's own (nearest) mask
    handling; the labels come back exactly, whatever their width."""
    K = pytest.importorskip("kornia.augmentation")
    images, labels = label_coded()
    masks = coded_masks(labels, torch.int64)
    transform = kaug.transforms.KorniaTransform(K.RandomAffine(20, (0.1, 0.1), p=1.0))
    out = run(transform, images, masks)
    assert out.masks.dtype == torch.int64
    assert set(out.masks.unique().tolist()) <= set(masks.unique().tolist()) | {0}
    assert not torch.equal(out.masks, masks)


def test_a_function_that_moves_pixels_says_so_and_is_refused_with_masks():
    images, labels = label_coded()
    mirror = BatchFunction(torch.fliplr, moves_pixels=True)
    assert mirror.get_config()["moves_pixels"] is True
    with pytest.raises(ValueError, match="BatchFunction.*cannot move the batch's masks"):
        run(mirror, images, coded_masks(labels, torch.uint8))
    assert torch.equal(run(mirror, images, None).images, torch.fliplr(images))
