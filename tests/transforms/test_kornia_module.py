"""A kornia.augmentation module in `transforms=[...]`: runs on the batch, repeats under
kaug's seed, and (when geometric) moves masks with the images."""

import kornia.augmentation as K
import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator
from kaug.transforms import KorniaTransform


def test_a_kornia_module_runs_on_the_batch_under_kaugs_seed(mnist):
    x = mnist["x_train"][:32, :, :, None].astype("float32")
    datagen = ImageDataGenerator(
        transforms=[K.RandomGaussianBlur((5, 5), (0.5, 2.0), p=1.0)], device="cpu"
    )
    assert isinstance(datagen._pipeline.transforms[0], KorniaTransform)
    first, again, other = (datagen.augment(x, seed=s) for s in (1, 1, 2))
    assert (first == again).all() and not (first == other).all()
    plain = ImageDataGenerator(device="cpu").augment(x)
    assert not (first == plain).all()  # blurred


def test_a_geometric_kornia_module_moves_masks(mnist):
    x = mnist["x_train"][:32, :, :, None].astype("float32")
    masks = (x > 100).astype("uint8")
    rotate = K.RandomAffine(degrees=40, translate=(0.1, 0.1), resample="nearest", p=1.0)
    loader = ImageDataGenerator(transforms=[rotate], device="cpu").flow(
        x, masks=masks, batch_size=32, seed=0
    )
    images, served = loader[0]
    assert served.dtype == np.uint8
    np.testing.assert_array_equal(served, images > 100)
    assert not np.array_equal(images, x[loader.index_array])


def test_a_kornia_module_is_named_when_saving(tmp_path):
    datagen = ImageDataGenerator(transforms=[K.RandomInvert()], device="cpu")
    with pytest.raises(ValueError, match="must be registered.*KorniaTransform"):
        datagen.save(tmp_path / "g.npz")
    with pytest.raises(ValueError, match="kornia.augmentation module"):
        KorniaTransform(torch.nn.Identity())
