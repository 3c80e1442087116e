"""ImageDataGenerator with extra transforms, shortcuts, masks, config and save/load."""

import inspect
import warnings

import numpy as np
import pytest
import torch

import kaug
from kaug import ImageDataGenerator
from kaug.transforms import CutMix, MixUp, RandomErosion, RandomSaltAndPepper


@pytest.fixture(scope="module")
def digits400(mnist):
    return mnist["x_train"][:400, :, :, None].astype("float32")


def changed(out, x):
    return (out != x).reshape(len(x), -1).any(1)


def test_shortcuts_act_on_half_the_images_by_default(digits400):
    eroded = ImageDataGenerator(erosion=True, device="cpu").augment(digits400, seed=0)
    assert 0.4 < changed(eroded, digits400).mean() < 0.6
    assert np.all(eroded <= digits400)
    noisy = ImageDataGenerator(salt_pepper=True, device="cpu").augment(digits400, seed=0)
    hit = changed(noisy, digits400)
    assert 0.4 < hit.mean() < 0.6
    differing = (noisy != digits400).reshape(400, -1).sum(1)
    assert differing.max() <= 100 and set(np.unique(noisy[noisy != digits400])) <= {0.0, 255.0}


def test_shortcuts_are_tunable(digits400):
    always = ImageDataGenerator(erosion=1.0, device="cpu").augment(digits400[:50], seed=0)
    assert changed(always, digits400[:50]).all()
    gen = ImageDataGenerator(salt_pepper={"count": 10, "p": 1.0}, device="cpu")
    differing = (gen.augment(digits400[:50], seed=0) != digits400[:50]).reshape(50, -1).sum(1)
    assert differing.max() <= 10 and differing.min() >= 4  # pepper on black pixels changes nothing
    with pytest.raises(ValueError, match="Received: erosion='yes'"):
        ImageDataGenerator(erosion="yes")


def test_transforms_run_after_augmentation_and_before_standardization(digits400):
    seen = {}

    def spy(x):
        seen["max"] = float(x.max())
        return x

    gen = ImageDataGenerator(
        horizontal_flip=True, rescale=1 / 255, salt_pepper={"count": 20, "p": 1.0},
        transforms=[spy], device="cpu",
    )  # fmt: skip
    x, _ = next(iter(gen.flow(digits400, np.zeros(400), batch_size=400)))
    assert seen["max"] == 255.0  # the transforms saw raw data: rescale comes later
    assert x.max() == 1.0  # salt at 255, then rescaled


def test_masks_get_the_images_geometric_transform(mnist):
    x = mnist["x_train"][:64, :, :, None]
    masks = (x[..., 0] > 127).astype("uint8")  # (N, H, W) label maps
    gen = ImageDataGenerator(horizontal_flip=True, vertical_flip=True, device="cpu")
    for images, served in gen.flow(x, masks=masks, batch_size=16, seed=0).epoch():
        assert served.dtype == torch.uint8 and served.shape == (16, 28, 28)
        assert torch.equal(served, (images[..., 0] > 127).to(torch.uint8))  # flips are exact
    gen = ImageDataGenerator(
        rotation_range=40, zoom_range=0.2, width_shift_range=0.1, fill_mode="constant",
        channel_shift_range=50.0, brightness_range=(0.5, 1.5), device="cpu",
    )  # fmt: skip
    images, served = next(iter(gen.flow(x, masks=masks[..., None], batch_size=64, seed=1)))
    assert set(np.unique(served).tolist()) <= {0, 1}  # labels only: no interpolation
    agreement = (served[..., 0].astype(bool) == (images[..., 0] > 127)).mean()
    assert agreement > 0.95  # same warp; they differ where bilinear and nearest disagree


def test_masks_in_channels_first(mnist):
    x = mnist["x_train"][:8, None]
    masks = (x > 127).astype("int64")
    gen = ImageDataGenerator(horizontal_flip=True, data_format="channels_first", device="cpu")
    images, served = next(iter(gen.flow(x, masks=masks, batch_size=8)))
    assert served.shape == (8, 1, 28, 28) and served.dtype == np.int64
    np.testing.assert_array_equal(served, images > 127)


def test_bad_masks(mnist, tmp_path):
    x = mnist["x_train"][:8, :, :, None]
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match="replaces `y`"):
        gen.flow(x, np.zeros(8), masks=np.zeros((8, 28, 28)))
    with pytest.raises(ValueError, match=r"Received: masks.shape=\(8, 20, 28\)"):
        gen.flow(x, masks=np.zeros((8, 20, 28)), save_to_dir=tmp_path / "saved")
    assert not (tmp_path / "saved").exists()  # the error came before any work


def test_config_keys_are_the_constructor_arguments():
    config = ImageDataGenerator(device="cpu").get_config()
    assert set(config) == set(inspect.signature(ImageDataGenerator).parameters)


EVERYTHING = dict(
    rotation_range=30, width_shift_range=[2, 3], height_shift_range=0.1, shear_range=10,
    zoom_range=[0.9, 1.2], channel_shift_range=20.0, brightness_range=[0.7, 1.3],
    horizontal_flip=True, fill_mode="reflect", rescale=1 / 255, erosion=0.3,
    salt_pepper={"amount": 0.02, "p": 0.4},
    transforms=[RandomErosion(kernel_size=[1, 3], p=0.2), RandomSaltAndPepper(count=7)],
)  # fmt: skip


def test_from_config_rebuilds_the_same_generator(digits400):
    gen = ImageDataGenerator(**EVERYTHING, device="cpu")
    copy = ImageDataGenerator.from_config(gen.get_config())
    np.testing.assert_array_equal(
        copy.augment(digits400[:32], seed=2), gen.augment(digits400[:32], seed=2)
    )


def test_save_and_load_restore_output_and_fitted_statistics(digits400, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zca's override of featurewise_center
        gen = ImageDataGenerator(**EVERYTHING, zca_whitening=True, zca_epsilon=0.1, device="cpu")
    gen.fit(digits400)
    path = tmp_path / "datagen.npz"
    gen.save(path)
    loaded = kaug.load(path)
    for name in ("mean", "zca_whitening_matrix"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gen, name))
    assert loaded.std is None
    batch = digits400[:32]
    np.testing.assert_array_equal(loaded.augment(batch, seed=5), gen.augment(batch, seed=5))
    np.testing.assert_array_equal(loaded.standardize(batch), gen.standardize(batch))
    served = [next(iter(g.flow(batch, batch_size=32, seed=1))) for g in (gen, loaded)]
    np.testing.assert_array_equal(*served)


def test_save_warns_about_what_it_cannot_keep(tmp_path):
    gen = ImageDataGenerator(preprocessing_function=np.sqrt, device="cpu")
    with pytest.warns(UserWarning, match="`preprocessing_function` is not saved"):
        gen.save(tmp_path / "g.npz")
    loaded = kaug.load(tmp_path / "g.npz", preprocessing_function=np.sqrt, device="cpu")
    assert loaded.preprocessing_function is np.sqrt
    with pytest.raises(ValueError, match="must be a module-level function"):
        ImageDataGenerator(transforms=[lambda x: x], device="cpu").save(tmp_path / "h.npz")


def test_preview_runs_label_mixing_transforms(digits400):
    """The grid shows images only, so MixUp and CutMix (which read labels) get stand-in
    labels there; the mixed grid differs from the plain one."""
    x = digits400[:9]
    plain = ImageDataGenerator().preview(x, n=9, seed=0)
    mixed = ImageDataGenerator(transforms=[MixUp(alpha=1.0, num_classes=10), CutMix()])
    grid = mixed.preview(x, n=9, seed=0)
    assert grid.shape == plain.shape and not np.array_equal(grid, plain)
