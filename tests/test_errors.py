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
    ("zca_epsilon", 0),  # Keras takes it, and its whitening matrix is infinite
    ("device", "toaster"),
    ("device", "meta"),
    ("device", 3.5),
    ("transforms", 5),
    ("transforms", "RandomErosion"),
    ("erosion", 1.5),  # the shortcut's probability: named as `erosion`, not `p`
    ("salt_pepper", {"bogus": 1}),
    ("erosion", "yes"),
    ("horizontal_flip", "yes"),
    ("featurewise_center", [1]),
    ("rotation_range", np.array([1.0, 2.0])),
]
if not torch.cuda.is_available():
    BAD_ARGUMENTS += [("device", "cuda"), ("device", "cuda:1")]


@pytest.mark.parametrize("name,value", BAD_ARGUMENTS, ids=[f"{n}={v!r}" for n, v in BAD_ARGUMENTS])
def test_bad_constructor_arguments(name, value):
    with pytest.raises(ValueError, match=re.escape(f"Received: {name}={value!r}")):
        ImageDataGenerator(**{name: value})


def test_accepted_forms_are_accepted():
    ImageDataGenerator(zoom_range=[0.5, 1.5], width_shift_range=3, height_shift_range=[1, 2])
    ImageDataGenerator(brightness_range=(0.5, 1.5), zoom_range=0, dtype="float64")
    ImageDataGenerator(width_shift_range=np.array([0.1, 0.2]), dtype=torch.float16, device="cpu")
    # numpy scalars and 0-d arrays are numbers, as in Keras; configs keep Python values
    gen = ImageDataGenerator(rotation_range=np.array(20), zoom_range=np.float32(0.1),
                             width_shift_range=np.int64(2), horizontal_flip=np.bool_(True),
                             rescale=np.array(0.5), cval=np.float64(3), device="cpu")  # fmt: skip
    config = gen.get_config()
    assert config["rotation_range"] == 20 and type(config["rotation_range"]) is int
    assert type(config["rescale"]) is float and config["horizontal_flip"] is True
    import json

    json.dumps({k: v for k, v in config.items() if k != "transforms"})


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
    with pytest.raises(ValueError, match="must be a real numeric array"):
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


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "7", True, np.float64(3.0)])
def test_seeds_are_checked_the_same_everywhere(gen, seed):
    x = np.zeros((2, 8, 8, 1), "float32")
    calls = [
        lambda: gen.augment(x, seed=seed),
        lambda: gen.random_transform(x[0], seed=seed),
        lambda: gen.get_random_transform((8, 8, 1), seed=seed),
        lambda: gen.preview(x, seed=seed),
        lambda: gen.fit(x, seed=seed),
        lambda: gen.flow(x, seed=seed),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"Received: seed="):
            call()


def test_the_largest_seed_works(gen):
    x = np.zeros((2, 8, 8, 1), "float32")
    gen.augment(x, seed=2**63 - 1)
    next(iter(gen.flow(x, seed=2**63 - 1, rank=1, world_size=2)))


@pytest.mark.parametrize("shape", [(2, 0, 8, 1), (2, 8, 0, 1), (2, 8, 8, 0)])
def test_images_without_pixels_or_channels(gen, shape):
    x = np.zeros(shape, "float32")
    for call in (gen.augment, gen.standardize, gen.fit, gen.flow, gen.preview):
        with pytest.raises(ValueError, match=r"at least one channel, row and column"):
            call(x)


def test_preview_needs_an_image(gen):
    with pytest.raises(ValueError, match="must hold an image"):
        gen.preview(np.zeros((0, 8, 8, 1)))


def test_preview_path_must_name_an_image_file(gen, tmp_path):
    """A folder, or a name without an image extension, is blamed on `path` (preview has
    no `save_format`), and nothing is written."""
    x = np.zeros((2, 8, 8, 1))
    with pytest.raises(ValueError, match=r"`path` must name an image file.*not a folder"):
        gen.preview(x, path=tmp_path)
    with pytest.raises(ValueError, match=r"`path` must end in an image extension"):
        gen.preview(x, path=tmp_path / "grid")
    assert list(tmp_path.iterdir()) == []


def test_random_transform_takes_nested_lists_as_keras_does(gen):
    image = np.random.default_rng(0).uniform(0, 255, (6, 5, 1))
    out = gen.random_transform(image.tolist(), seed=3)
    assert isinstance(out, np.ndarray) and out.shape == (6, 5, 1)
    np.testing.assert_array_equal(out, gen.random_transform(image, seed=3))


@pytest.mark.parametrize("y", [np.array(["cat", "dog"]), 5, "labels", [[1], [2, 3]]])
def test_flow_targets_must_be_numeric_and_per_image(gen, y):
    with pytest.raises(ValueError, match=r"Received: y"):
        gen.flow(np.zeros((2, 8, 8, 1)), y)


def test_streamed_fit_refuses_batches_that_change_shape():
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    for second in (np.zeros((2, 8, 8, 3)), np.zeros((2, 9, 8, 1))):
        with pytest.raises(ValueError, match=r"must yield images of one shape; the first"):
            gen.fit(iter([np.zeros((2, 8, 8, 1)), second]))
    for bad in (5, "images", {"x": 1}):
        with pytest.raises(ValueError, match=r"Received: x="):
            gen.fit(bad)


@pytest.mark.parametrize("img_shape", [(8, 8), (8, 0, 1), (8.0, 8, 1), 5, ("a", 8, 1)])
def test_get_random_transform_needs_one_image_shape(gen, img_shape):
    with pytest.raises(ValueError, match="Received: img_shape="):
        gen.get_random_transform(img_shape)


def test_preprocessing_function_must_keep_the_shape(digits):
    gen = ImageDataGenerator(preprocessing_function=lambda image: image[:4], device="cpu")
    with pytest.raises(ValueError, match=r"must return an image of its input's shape"):
        gen.standardize(digits[:2])
