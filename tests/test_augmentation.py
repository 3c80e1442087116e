"""ImageDataGenerator's augmentation: Keras parity, sampling, exactness, Keras bug fixes."""

import warnings

import numpy as np
import pytest
import torch
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator

from kaug import ImageDataGenerator

FILL_MODES = ["constant", "nearest", "reflect", "wrap"]
EVERYTHING = dict(
    rotation_range=60, width_shift_range=0.2, height_shift_range=0.2, shear_range=25,
    zoom_range=0.3, channel_shift_range=40.0, horizontal_flip=True, vertical_flip=True,
)  # fmt: skip


def keras_params(count, **kwargs):
    """Parameter dicts drawn by Keras's own generator, brightness included."""
    np.random.seed(0)  # noqa: NPY002  (Keras draws from the global RNG)
    keras = KerasGenerator(**EVERYTHING, brightness_range=(0.4, 1.6), **kwargs)
    return [keras.get_random_transform((28, 28, 1)) for _ in range(count)]


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("images", ["digits", "rgb_images"])
def test_apply_transform_matches_keras(request, images, data_format, fill_mode, order):
    images = request.getfixturevalue(images)[:8]
    if data_format == "channels_first":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    kwargs = dict(
        fill_mode=fill_mode, cval=33.0, interpolation_order=order, data_format=data_format
    )
    keras, kaug = KerasGenerator(**kwargs), ImageDataGenerator(**kwargs, device="cpu")
    for image, params in zip(images, keras_params(len(images)), strict=True):
        if data_format == "channels_first":
            params["brightness"] = None  # Keras's brightness assumes channels_last (a Keras bug)
        out = kaug.apply_transform(image, params)
        ref = keras.apply_transform(image.copy(), params)
        assert out.shape == ref.shape and out.dtype == np.float32
        mismatch = np.mean(np.abs(out - ref) > 1e-2)
        # Brightness truncates to integer levels: a float32 hair's breadth before
        # truncation can move a pixel by one level, rarely.
        assert mismatch <= 0.01, f"{mismatch:.2%} of pixels differ for {params}"


def test_get_random_transform_has_keras_keys_and_ranges():
    kaug = ImageDataGenerator(**EVERYTHING, brightness_range=(0.5, 1.5), device="cpu")
    keras = KerasGenerator(**EVERYTHING, brightness_range=(0.5, 1.5))
    draws = [kaug.get_random_transform((20, 30, 3)) for _ in range(300)]
    assert set(draws[0]) == set(keras.get_random_transform((20, 30, 3)))
    values = {key: np.array([d[key] for d in draws], dtype=float) for key in draws[0]}
    assert np.abs(values["theta"]).max() <= 60 and np.abs(values["theta"]).std() > 10
    assert np.abs(values["tx"]).max() <= 0.2 * 30 + 1e-6  # width shift: x, scaled by width
    assert np.abs(values["ty"]).max() <= 0.2 * 20 + 1e-6
    assert np.abs(values["tx"]).max() > 0.2 * 20  # so tx really scales with the width
    assert np.abs(values["shear"]).max() <= 25
    assert values["zx"].min() >= 0.7 and values["zy"].max() <= 1.3
    assert 0.3 < values["flip_horizontal"].mean() < 0.7
    assert 0.3 < values["flip_vertical"].mean() < 0.7
    assert np.abs(values["channel_shift_intensity"]).max() <= 40
    assert values["brightness"].min() >= 0.5 and values["brightness"].max() <= 1.5


def test_get_random_transform_defaults_are_identity():
    params = ImageDataGenerator(device="cpu").get_random_transform((28, 28, 1))
    assert params == KerasGenerator().get_random_transform((28, 28, 1))


def test_shift_forms_int_and_list_follow_keras():
    draws = lambda gen: np.array(  # noqa: E731
        [gen.get_random_transform((50, 50, 1))["tx"] for _ in range(400)]
    )
    ints = draws(ImageDataGenerator(width_shift_range=3, device="cpu"))
    assert set(np.unique(ints)) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # choice(range(3)) * sign
    listed = draws(ImageDataGenerator(width_shift_range=[4, 7], device="cpu"))
    assert set(np.unique(listed)) == {-7.0, -4.0, 4.0, 7.0}
    fractions = draws(ImageDataGenerator(width_shift_range=[0.1], device="cpu"))
    assert set(np.unique(fractions)) == {-5.0, 5.0}  # a list below 1: fractions of the width
    pixels = draws(ImageDataGenerator(width_shift_range=2.5, device="cpu"))
    assert np.abs(pixels).max() <= 2.5 and len(np.unique(pixels)) > 300


def test_seeds_make_draws_reproducible(digits):
    gen = ImageDataGenerator(**EVERYTHING, device="cpu")
    assert gen.get_random_transform((28, 28, 1), seed=5) == gen.get_random_transform(
        (28, 28, 1), seed=5
    )
    np.testing.assert_array_equal(gen.augment(digits, seed=3), gen.augment(digits, seed=3))
    assert not np.array_equal(gen.augment(digits, seed=3), gen.augment(digits, seed=4))
    np.testing.assert_array_equal(
        gen.random_transform(digits[0], seed=9), gen.augment(digits[:1], seed=9)[0]
    )
    torch.manual_seed(11)
    first = ImageDataGenerator(**EVERYTHING, device="cpu").augment(digits)
    torch.manual_seed(11)
    np.testing.assert_array_equal(
        first, ImageDataGenerator(**EVERYTHING, device="cpu").augment(digits)
    )


def test_parameters_differ_across_the_batch(digits):
    gen = ImageDataGenerator(rotation_range=90, device="cpu")
    out = gen.augment(np.repeat(digits[:1], 16, axis=0))
    distinct = {out[i].tobytes() for i in range(16)}
    assert len(distinct) == 16


def test_batch_equals_per_image_apply_transform(digits):
    """The batch path and the per-image path are one implementation."""
    gen = ImageDataGenerator(**EVERYTHING, fill_mode="reflect", device="cpu")
    batch = torch.from_numpy(digits[:6]).permute(0, 3, 1, 2)
    params = gen._augmentation.sample(tuple(batch.shape), torch.Generator().manual_seed(0))
    whole = gen._augmentation.apply(batch, params).permute(0, 2, 3, 1).numpy()
    for i in range(6):
        one = {key: value[i : i + 1] for key, value in params.items()}
        keras_dict = gen._augmentation.params_to_keras(one)
        np.testing.assert_allclose(gen.apply_transform(digits[i], keras_dict), whole[i], atol=1e-3)


def test_no_augmentation_returns_input_unchanged(digits, mnist):
    gen = ImageDataGenerator(device="cpu")
    np.testing.assert_array_equal(gen.augment(digits), digits)
    raw = mnist["x_train"][:8, :, :, None]
    out = gen.augment(raw)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, raw.astype(np.float32))
    np.testing.assert_array_equal(gen.random_transform(digits[0]), digits[0])


@pytest.mark.parametrize("flag,axis", [("horizontal_flip", 2), ("vertical_flip", 1)])
def test_flip_only_yields_each_image_or_its_mirror(digits, flag, axis):
    gen = ImageDataGenerator(**{flag: True}, device="cpu")
    out = gen.augment(digits)
    mirrored = np.flip(digits, axis=axis)
    same = np.all(out == digits, axis=(1, 2, 3))
    flipped = np.all(out == mirrored, axis=(1, 2, 3))
    assert np.all(same | flipped)
    assert 10 < flipped.sum() < 54


@pytest.mark.parametrize("argument,axis", [("width_shift_range", 2), ("height_shift_range", 1)])
def test_width_shifts_move_columns_and_height_shifts_rows(digits, argument, axis):
    """Keras swaps these (its width range shifts rows); kaug does not."""
    gen = ImageDataGenerator(**{argument: [5]}, fill_mode="constant", cval=-1.0, device="cpu")
    out = gen.augment(digits[:16], seed=1)
    for image, result in zip(digits[:16], out, strict=True):
        candidates = [np.roll(image, s, axis=axis - 1) for s in (5, -5)]
        for moved, s in zip(candidates, (5, -5), strict=True):
            band = [slice(None)] * 3
            band[axis - 1] = slice(0, 5) if s > 0 else slice(-5, None)
            moved[tuple(band)] = -1.0
        assert any(np.allclose(result, moved, atol=1e-3) for moved in candidates)
    with warnings.catch_warnings():
        np.random.seed(0)  # noqa: NPY002  (Keras draws from the global RNG)
        keras = KerasGenerator(**{argument: [5]}).get_random_transform((28, 28, 1))
    keras_key = "ty" if argument == "width_shift_range" else "tx"
    assert abs(keras[keras_key]) == 5  # Keras's swap, for the record


def test_non_square_rotation_turns_about_the_true_centre():
    image = np.random.default_rng(0).uniform(0, 255, (20, 30, 3)).astype("float32")
    gen = ImageDataGenerator(fill_mode="constant", device="cpu")
    np.testing.assert_allclose(
        gen.apply_transform(image, {"theta": 180}), image[::-1, ::-1], atol=1e-3
    )


@pytest.mark.parametrize("zero", [0, 0.0, [0], np.int64(0), np.array(0)])
def test_a_zero_shift_range_is_no_shift_beside_other_options(digits, zero):
    """Keras skips a falsy shift range; an int 0 once crashed every batch (IndexError)."""
    kaug = ImageDataGenerator(width_shift_range=zero, height_shift_range=zero, device="cpu")
    assert kaug.get_random_transform((28, 28, 1))["tx"] == 0.0
    warped = ImageDataGenerator(width_shift_range=zero, rotation_range=30, device="cpu")
    params = [warped.get_random_transform((28, 28, 1), seed=s) for s in range(20)]
    assert all(p["tx"] == 0.0 and p["ty"] == 0.0 for p in params)
    assert len({p["theta"] for p in params}) == 20
    assert warped.augment(digits[:4]).shape == (4, 28, 28, 1)


def test_brightness_range_works_on_unit_data(digits):
    unit = digits[:8] / 255.0
    gen = ImageDataGenerator(brightness_range=(1.2, 1.2), device="cpu")
    out = gen.augment(unit)
    np.testing.assert_allclose(out, gen.augment(digits[:8]) / 255, atol=1e-6)
    assert out.max() > 0.9  # Keras turns [0, 1] images black
    keras = KerasGenerator(brightness_range=(1.2, 1.2)).random_transform(unit[0].copy())
    assert keras.max() <= 1.0


def test_inputs_are_never_modified(digits):
    x = digits[:8].copy()
    gen = ImageDataGenerator(**EVERYTHING, brightness_range=(0.5, 1.5), device="cpu")
    gen.augment(x)
    gen.random_transform(x[0])
    gen.apply_transform(x[0], {"theta": 10, "brightness": 0.5})
    t = torch.from_numpy(x.copy())
    gen.augment(t)
    np.testing.assert_array_equal(x, digits[:8])
    np.testing.assert_array_equal(t.numpy(), digits[:8])


def test_brightness_of_data_near_the_float32_limits_stays_finite():
    x = np.random.default_rng(0).uniform(-3.4e38, 3.4e38, (4, 6, 6, 3)).astype("float32")
    gen = ImageDataGenerator(brightness_range=(0.5, 1.5), device="cpu")
    out = gen.augment(x)
    assert np.isfinite(out).all()
    flat_out, flat_x = out.reshape(4, -1), x.reshape(4, -1)
    assert (flat_out.min(1) >= flat_x.min(1)).all() and (flat_out.max(1) <= flat_x.max(1)).all()
    # Halving is exact: the huge images get the levels of their half-scale copies.
    half = gen.augment(x / 2, seed=3)
    np.testing.assert_array_equal(gen.augment(x, seed=3), half * 2)


def test_augment_returns_the_kind_it_was_given(digits):
    gen = ImageDataGenerator(rotation_range=10, device="cpu")
    assert isinstance(gen.augment(digits[:2]), np.ndarray)
    out = gen.augment(torch.from_numpy(digits[:2]))
    assert (
        isinstance(out, torch.Tensor) and out.device.type == "cpu" and out.shape == (2, 28, 28, 1)
    )
    gen64 = ImageDataGenerator(rotation_range=10, dtype="float64", device="cpu")
    assert gen64.augment(digits[:2]).dtype == np.float64
    assert gen.augment(digits[:0]).shape == (0, 28, 28, 1)


def test_channels_first_gives_the_transposed_result(digits):
    params = {"theta": 25, "tx": 3, "shear": 10, "zy": 0.8, "flip_horizontal": True}
    last = ImageDataGenerator(data_format="channels_last", device="cpu")
    first = ImageDataGenerator(data_format="channels_first", device="cpu")
    out_first = first.apply_transform(digits[0].transpose(2, 0, 1), params)
    np.testing.assert_allclose(
        out_first.transpose(1, 2, 0), last.apply_transform(digits[0], params)
    )
