"""Channel shift and brightness against Keras's legacy helpers."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from keras.src.legacy.preprocessing.image import apply_brightness_shift, apply_channel_shift

from kaug.functional import brightness, channel_shift


def nchw(images):
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def nhwc(batch):
    return batch.permute(0, 2, 3, 1).numpy()


def image_sets(digits, rgb_images):
    rng = np.random.default_rng(3)
    return {
        "mnist": digits[:16],
        "rgb": rgb_images[:8],
        "rgba": rng.uniform(0, 255, (6, 10, 10, 4)).astype("float32"),
        "beyond_0_255": rng.uniform(-300, 600, (6, 10, 10, 3)).astype("float32"),
    }


@pytest.mark.parametrize("kind", ["mnist", "rgb", "rgba", "beyond_0_255"])
def test_brightness_matches_keras_exactly(digits, rgb_images, kind):
    images = image_sets(digits, rgb_images)[kind]
    factors = np.random.default_rng(1).uniform(0.1, 2.0, len(images))
    ref = np.stack(
        [apply_brightness_shift(im, f, scale=False) for im, f in zip(images, factors, strict=True)]
    )
    out = nhwc(brightness(nchw(images), torch.from_numpy(factors)))
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-4)


def test_brightness_on_unit_range_data_is_the_0_255_result_scaled(digits):
    """Keras truncates [0, 1] data to 0/1 levels (a black image); kaug scales it."""
    factors = torch.tensor([0.5, 0.8, 1.3, 1.9])
    raw = brightness(nchw(digits[:4]), factors)
    unit = brightness(nchw(digits[:4] / 255.0), factors)
    torch.testing.assert_close(unit, raw / 255, atol=1e-6, rtol=0)
    keras = apply_brightness_shift(digits[0] / 255.0, 0.8, scale=False)
    assert keras.max() <= 1.0 and unit[1].max() > 0.5  # Keras: black; kaug: bright strokes


def test_brightness_keeps_alpha(image_count=3):
    images = np.random.default_rng(2).uniform(0, 255, (image_count, 6, 6, 4)).astype("float32")
    out = nhwc(brightness(nchw(images), torch.full((image_count,), 0.3)))
    np.testing.assert_array_equal(out[..., 3], np.trunc(images[..., 3]))
    assert np.all(out[..., :3] <= images[..., :3] * 0.3 + 1e-3)


@settings(max_examples=60, deadline=None)
@given(
    image=arrays(np.float32, (5, 5, 3), elements=st.integers(-3200, 5600).map(lambda k: k / 8)),
    factor=st.floats(0, 3),
)
def test_brightness_fuzzed_against_keras(image, factor):
    """Every image Keras handles as intended: all but [0, 1] data (tested above).

    Values are multiples of 1/8, away from the 1e-3 band around 8-bit levels
    where kaug deliberately absorbs float noise (next test).
    """
    assume(image.max() > 1 or image.min() < 0)
    ref = apply_brightness_shift(image, factor, scale=False)
    out = nhwc(brightness(nchw(image[None]), torch.tensor([factor])))[0]
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_values_within_float_noise_of_a_level_count_as_that_level():
    """Interpolation gives 254.99998 or 255.00003 where scipy gives 255."""
    noisy = torch.tensor([254.99998, 255.00003, 0.0, 17.0]).view(1, 1, 1, 4)
    clean = torch.tensor([255.0, 255.0, 0.0, 17.0]).view(1, 1, 1, 4)
    factor = torch.tensor([0.5])
    torch.testing.assert_close(brightness(noisy, factor), brightness(clean, factor))


@pytest.mark.parametrize("kind", ["mnist", "rgb", "rgba", "beyond_0_255"])
def test_channel_shift_matches_keras(digits, rgb_images, kind):
    images = image_sets(digits, rgb_images)[kind]
    shifts = np.random.default_rng(4).uniform(-100, 100, len(images))
    ref = np.stack(
        [apply_channel_shift(im, s, channel_axis=2) for im, s in zip(images, shifts, strict=True)]
    )
    out = nhwc(channel_shift(nchw(images), torch.from_numpy(shifts)))
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)


def test_kernels_do_not_modify_input_and_accept_empty_batches(digits):
    x = nchw(digits[:4].copy())
    before = x.clone()
    brightness(x, torch.full((4,), 1.5))
    channel_shift(x, torch.full((4,), 20.0))
    assert torch.equal(x, before)
    empty = torch.zeros(0, 1, 4, 4)
    assert brightness(empty, torch.zeros(0)).shape == empty.shape
    assert channel_shift(empty, torch.zeros(0)).shape == empty.shape
