"""Bad input: a ValueError in Keras wording, naming the argument, before any work."""

import re

import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator

BAD_ARGUMENTS = [
    ("fill_mode", "mirror"),
    ("data_format", "channels_middle"),
    ("rotation_range", -10),
    ("shear_range", -1.0),
    ("channel_shift_range", -5.0),
    ("width_shift_range", -0.2),
    ("height_shift_range", "0.2"),
    ("width_shift_range", []),
    ("zoom_range", -0.1),
    ("zoom_range", [0.8]),
    ("zoom_range", [1.2, 0.8]),
    ("zoom_range", "wide"),
    ("brightness_range", 0.5),
    ("brightness_range", [0.5, 1.0, 1.5]),
    ("brightness_range", [1.5, 0.5]),
    ("validation_split", 1.5),
    ("interpolation_order", 3),
    ("cval", "black"),
    ("rescale", "1/255"),
    ("preprocessing_function", "not callable"),
    ("dtype", "int8"),
    ("zca_epsilon", -1.0),
    ("device", "toaster"),
]


@pytest.mark.parametrize("name,value", BAD_ARGUMENTS, ids=[f"{n}={v!r}" for n, v in BAD_ARGUMENTS])
def test_bad_constructor_arguments(name, value):
    with pytest.raises(ValueError, match=re.escape(f"Received: {name}={value!r}")):
        ImageDataGenerator(**{name: value})


def test_accepted_forms_are_accepted():
    ImageDataGenerator(zoom_range=[0.5, 1.5], width_shift_range=3, height_shift_range=[1, 2])
    ImageDataGenerator(brightness_range=(0.5, 1.5), zoom_range=0, dtype="float64")
    ImageDataGenerator(width_shift_range=np.array([0.1, 0.2]), dtype=torch.float16, device="cpu")


@pytest.fixture
def gen():
    return ImageDataGenerator(rotation_range=10, device="cpu")


def test_fit_needs_rank_4(gen):
    with pytest.raises(
        ValueError,
        match=r"`x` must be a batch of images \(rank 4\)\. Received: x.shape=\(28, 28, 1\)",
    ):
        gen.fit(np.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match="Received: rounds=0"):
        gen.fit(np.zeros((2, 8, 8, 1)), augment=True, rounds=0)
    with pytest.raises(ValueError, match="at least one image"):
        gen.fit(np.zeros((0, 8, 8, 1)))


def test_per_image_methods_need_rank_3(gen):
    batch = np.zeros((2, 28, 28, 1))
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 28, 28, 1\)"):
        gen.random_transform(batch)
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 28, 28, 1\)"):
        gen.apply_transform(batch, {"theta": 3})
    with pytest.raises(ValueError, match=r"Received: img_shape=\(28, 28\)"):
        gen.get_random_transform((28, 28))
    with pytest.raises(ValueError, match=r"Received: x.shape=\(28, 28\)"):
        gen.standardize(np.zeros((28, 28)))
    with pytest.raises(ValueError, match=r"Received: x.shape=\(28, 28, 1\)"):
        gen.augment(np.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match="must be a numeric array"):
        gen.augment(np.array([[[["a"]]]]))


def test_unusual_channel_counts_warn_like_keras():
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    with pytest.warns(UserWarning, match=r"expected either 1, 3 or 4 channels on axis 3") as record:
        gen.fit(np.zeros((4, 8, 8, 2), "float32"))
    assert len(record) == 1


def test_zca_on_huge_images_is_refused_with_the_alternative():
    with pytest.warns(UserWarning, match="overrides setting of `featurewise_center`"):
        gen = ImageDataGenerator(zca_whitening=True, device="cpu")
    with pytest.raises(ValueError, match="featurewise_std_normalization"):
        gen.fit(np.zeros((2, 128, 128, 3), "float32"))
