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
        assert y.shape == x.shape and y.dtype == torch.float32
        torch.testing.assert_close(y, (x > THRESHOLD).float(), rtol=0, atol=0)
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
        torch.testing.assert_close(y, (x > THRESHOLD).float(), rtol=0, atol=0)


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
