"""Settings live once: a Keras attribute set after construction drives the next batch."""

import json

import numpy as np
import pytest
import torch
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator

from kaug import ImageDataGenerator
from kaug.transforms import BatchTransform, RandomErosion
from kaug.transforms.base import safe_mode_scope

# (attribute, value set later, constructor equivalent): every kind of setting.
LATER = [
    ("rotation_range", 45, {}),
    ("width_shift_range", [3], {}),
    ("height_shift_range", 0.2, {}),
    ("shear_range", 30.0, {}),
    ("zoom_range", [0.5, 0.8], {}),
    ("channel_shift_range", 50.0, {}),
    ("brightness_range", [0.2, 0.5], {}),
    ("horizontal_flip", True, {}),
    ("vertical_flip", True, {}),
    ("fill_mode", "wrap", {"rotation_range": 40}),
    ("cval", 99.0, {"rotation_range": 40, "fill_mode": "constant"}),
    ("interpolation_order", 0, {"rotation_range": 40}),
    ("rescale", 1 / 255, {}),
    ("samplewise_center", True, {}),
    ("dtype", "float64", {}),
]


@pytest.mark.parametrize("name,value,base", LATER, ids=[n for n, _, _ in LATER])
def test_a_setting_changed_later_acts_like_one_given_at_construction(digits, name, value, base):
    later = ImageDataGenerator(**base, device="cpu")
    before = later.augment(digits[:8], seed=1), later.standardize(digits[:8])
    setattr(later, name, value)
    direct = ImageDataGenerator(**base, **{name: value}, device="cpu")
    after = later.augment(digits[:8], seed=1), later.standardize(digits[:8])
    expected = direct.augment(digits[:8], seed=1), direct.standardize(digits[:8])
    for changed, wanted in zip(after, expected, strict=True):
        np.testing.assert_array_equal(changed, wanted)
    assert any(  # it did change
        a.dtype != b.dtype or not np.array_equal(a, b) for a, b in zip(after, before, strict=True)
    )
    assert later.get_config() == direct.get_config()


def test_flow_batches_follow_settings_changed_between_epochs(digits):
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow(digits[:16], batch_size=16, shuffle=False)
    plain = next(iter(loader))
    gen.horizontal_flip = True
    gen.featurewise_center = True
    gen.mean = [[[100.0]]]
    flipped = next(iter(loader))
    mirrored = (plain[:, :, ::-1] - 100.0 == flipped).all(axis=(1, 2, 3))
    unchanged = (plain - 100.0 == flipped).all(axis=(1, 2, 3))
    assert (mirrored | unchanged).all() and mirrored.any()


def test_get_config_is_the_live_configuration():
    gen = ImageDataGenerator(rotation_range=10, device="cpu")
    gen.rotation_range = 20
    gen.zoom_range = 0.25  # Keras's float form, kept in Keras's [low, high] form
    gen.width_shift_range = np.array([1, 2])
    config = gen.get_config()
    assert config["rotation_range"] == 20 and config["zoom_range"] == [0.75, 1.25]
    assert config["width_shift_range"] == [1, 2]
    assert ImageDataGenerator.from_config(config).get_config() == config


def test_bad_values_set_later_are_refused_like_the_constructor_refuses_them():
    gen = ImageDataGenerator(device="cpu")
    for name, value in [("rotation_range", -1), ("fill_mode", "mirror"), ("zca_epsilon", 0),
                        ("horizontal_flip", "yes"), ("dtype", "int8"), ("device", "toaster"),
                        ("data_format", "nchw"), ("preprocessing_function", 3)]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"Received: {name}="):
            setattr(gen, name, value)
    assert gen.get_config() == ImageDataGenerator(device="cpu").get_config()


def test_keras_reads_its_attributes_at_every_draw_too(digits):
    """The Keras behaviour kaug follows: Keras's own generator reads rotation_range live."""
    keras = KerasGenerator()
    keras.rotation_range = 30
    assert keras.get_random_transform((28, 28, 1))["theta"] != 0
    gen = ImageDataGenerator(device="cpu")
    gen.rotation_range = 30
    assert gen.get_random_transform((28, 28, 1))["theta"] != 0


def test_moving_to_another_device_takes_the_generator_along(digits):
    gen = ImageDataGenerator(rotation_range=10, device="cpu")
    gen.device = torch.device("cpu")
    assert gen.augment(torch.from_numpy(digits[:2])).device.type == "cpu"


def test_get_config_is_plain_json_with_transforms_and_functions():
    gen = ImageDataGenerator(
        transforms=[RandomErosion(kernel_size=[1, 3], p=0.2), _halve],
        preprocessing_function=_halve,
        erosion={"p": 0.3},
        device="cpu",
    )
    config = json.loads(json.dumps(gen.get_config()))
    assert config["transforms"][0] == {
        "class_name": "RandomErosion",
        "config": RandomErosion(kernel_size=[1, 3], p=0.2).get_config(),
    }
    assert config["preprocessing_function"] == "tests.test_settings:_halve"
    with safe_mode_scope(False):  # the module-level function imports by name
        copy = ImageDataGenerator.from_config(config)
    assert copy.get_config() == config


def test_get_config_names_what_cannot_be_serialized(tmp_path):
    class Unregistered(BatchTransform):
        def apply(self, x, params):
            return x

    with pytest.raises(ValueError, match="must be registered with @kaug.transforms"):
        ImageDataGenerator(transforms=[Unregistered()], device="cpu").get_config()
    lam = ImageDataGenerator(transforms=[lambda x: x], device="cpu")
    with pytest.raises(ValueError, match="`function` must be a module-level function"):
        lam.get_config()
    with pytest.raises(ValueError, match="`function` must be a module-level function"):
        lam.save(tmp_path / "g.npz")
    with pytest.raises(ValueError, match="`preprocessing_function` must be a module-level"):
        ImageDataGenerator(preprocessing_function=lambda x: x, device="cpu").get_config()


def _halve(x):
    return x / 2
