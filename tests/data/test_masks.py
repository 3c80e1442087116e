"""Masks from files: `flow_from_directory(mask_directory=)` and `flow_from_dataframe(mask_col=)`."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kaug import ImageDataGenerator

THRESHOLD = 100


@pytest.fixture
def pairs(mnist, tmp_path):
    """A folder of MNIST digits and a mirror folder of their thresholded masks
    (palette PNGs: label values, not colours)."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i, digit in enumerate(mnist["x_train"][:40]):
        for root in (images, masks):
            (root / "all").mkdir(parents=True, exist_ok=True)
        Image.fromarray(digit).save(images / "all" / f"{i:02d}.png")
        mask = Image.fromarray((digit > THRESHOLD).astype(np.uint8), mode="L").convert("P")
        mask.save(masks / "all" / f"{i:02d}.png")
    return images, masks


GEOMETRY = dict(rotation_range=40, width_shift_range=0.2, zoom_range=0.3, horizontal_flip=True,
                fill_mode="constant", cval=0.0, interpolation_order=0)  # fmt: skip


def test_each_mask_gets_its_images_geometry(pairs):
    images, masks = pairs
    loader = ImageDataGenerator(**GEOMETRY, device="cpu").flow_from_directory(
        images, target_size=(28, 28), color_mode="grayscale", class_mode=None,
        mask_directory=masks, batch_size=16, seed=0, num_workers=0,
    )  # fmt: skip
    moved = 0
    for x, y in loader.epoch():
        assert y.shape == x.shape and y.dtype == torch.uint8  # the files' labels, exactly
        assert torch.equal(y, (x > THRESHOLD).to(torch.uint8))
        moved += int((y != 0).sum())
    assert moved > 0


def test_dataframe_masks_and_worker_processes(pairs):
    images, masks = pairs
    frame = pd.DataFrame({
        "filename": [f"images/all/{i:02d}.png" for i in range(40)],
        "mask": [f"masks/all/{i:02d}.png" for i in range(40)],
    })  # fmt: skip
    loader = ImageDataGenerator(**GEOMETRY, device="cpu").flow_from_dataframe(
        frame, images.parent, class_mode=None, mask_col="mask", target_size=(28, 28),
        color_mode="grayscale", batch_size=16, seed=1, num_workers=2,
    )  # fmt: skip
    for x, y in loader.epoch():
        assert torch.equal(y, (x > THRESHOLD).to(y.dtype))


def test_masks_are_never_standardized(pairs):
    images, masks = pairs
    gen = ImageDataGenerator(samplewise_center=True, rescale=1 / 255, device="cpu")
    x, y = gen.flow_from_directory(
        images, target_size=(28, 28), color_mode="grayscale", class_mode=None,
        mask_directory=masks, batch_size=40, shuffle=False, num_workers=0,
    )[0]  # fmt: skip
    assert set(np.unique(y).tolist()) == {0.0, 1.0} and x.min() < 0


def test_missing_masks_and_bad_arguments_fail_up_front(pairs):
    images, masks = pairs
    (masks / "all" / "07.png").unlink()
    gen = ImageDataGenerator(device="cpu")
    kwargs = dict(target_size=(28, 28), class_mode=None)
    with pytest.raises(ValueError, match=r"1 image\(s\) have no mask, such as \['all/07.png'\]"):
        gen.flow_from_directory(images, mask_directory=masks, **kwargs)
    with pytest.raises(ValueError, match="`mask_directory` must be an existing folder"):
        gen.flow_from_directory(images, mask_directory=masks / "nowhere", **kwargs)
    with pytest.raises(ValueError, match="class_mode.*must be None with `mask_directory`"):
        gen.flow_from_directory(images, mask_directory=masks, target_size=(28, 28))
    (masks / "all" / "07.jpg").write_bytes(b"")
    (masks / "all" / "07.png").write_bytes(b"")
    with pytest.raises(ValueError, match="match several masks"):
        gen.flow_from_directory(images, mask_directory=masks, **kwargs)


def test_colour_masks_are_refused_by_name(pairs):
    images, masks = pairs
    Image.new("RGB", (28, 28)).save(masks / "all" / "03.png")
    loader = ImageDataGenerator(device="cpu").flow_from_directory(
        images, target_size=(28, 28), class_mode=None, mask_directory=masks,
        batch_size=40, shuffle=False, on_error="raise", num_workers=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="03.png.*one-channel label image.*not mode RGB"):
        loader[0]


def test_32_bit_label_files_keep_every_value(mnist, tmp_path):
    """Labels above 2**24 (no float32 holds them) from 32-bit TIFFs come back exactly,
    moved with their images."""
    big = 2**30 + 1
    images, masks = tmp_path / "images" / "all", tmp_path / "masks" / "all"
    images.mkdir(parents=True), masks.mkdir(parents=True)
    for i, digit in enumerate(mnist["x_train"][:16]):
        Image.fromarray(digit).save(images / f"{i:02d}.png")
        label = np.where(digit > THRESHOLD, big + i, 0).astype(np.int32)
        Image.fromarray(label, mode="I").save(masks / f"{i:02d}.tif")
    loader = ImageDataGenerator(**GEOMETRY, device="cpu").flow_from_directory(
        images.parent, target_size=(28, 28), color_mode="grayscale", class_mode=None,
        mask_directory=masks.parent, batch_size=16, shuffle=False, num_workers=0,
    )  # fmt: skip
    x, y = (np.asarray(part) for part in loader[0])
    assert y.dtype == np.int32
    expected = np.where(x > THRESHOLD, big + np.arange(16).reshape(-1, 1, 1, 1), 0)
    np.testing.assert_array_equal(y, expected)


WIDTHS = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]


@pytest.mark.parametrize("dtype", WIDTHS)
def test_array_masks_of_every_integer_width_keep_every_value(mnist, dtype):
    """`flow(x, masks=)` with the largest labels each width holds (uint64: below 2**63;
    int64's 2**62 + 1 is no float64): served exactly, on the pixels of their images."""
    digits = mnist["x_train"][:32]
    info = np.iinfo(dtype) if dtype != "bool" else None
    top = True if dtype == "bool" else min(info.max, 2**63 - 1) - 5
    masks = np.where(digits > THRESHOLD, top, 0).astype(dtype)
    x, y = (np.asarray(part) for part in ImageDataGenerator(**GEOMETRY, device="cpu").flow(
        digits[..., None], masks=masks, batch_size=32, shuffle=False)[0])  # fmt: skip
    assert set(np.unique(y).tolist()) <= {0, int(top)}
    np.testing.assert_array_equal(y.astype(np.uint64) == np.uint64(top), x[..., 0] > THRESHOLD)


def test_uint64_labels_past_int64_are_refused_by_name(mnist):
    masks = np.zeros((4, 28, 28), np.uint64)
    masks[0, 0, 0] = 2**63
    with pytest.raises(ValueError, match="`masks` must hold labels below 2..63"):
        ImageDataGenerator(device="cpu").flow(mnist["x_train"][:4, :, :, None], masks=masks)


def test_masks_never_meet_the_class_split_check(mnist):
    """With `validation_split`, masks are not labels: no "different number of classes"
    refusal for a split whose masks hold different values on each side."""
    digits = mnist["x_train"][:20, :, :, None]
    masks = np.zeros((20, 28, 28), np.uint8)
    masks[:5] = 1  # the validation share holds label 1 only, the rest label 0
    gen = ImageDataGenerator(validation_split=0.25, device="cpu")
    for subset, count in (("validation", 5), ("training", 15)):
        loader = gen.flow(digits, masks=masks, subset=subset, batch_size=32, shuffle=False)
        assert len(np.asarray(loader[0][1])) == count
