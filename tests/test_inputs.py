"""What users hand the public API: never modified, any stride or dtype, finite or refused."""

import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator
from kaug.transforms import BatchTransform


def scale_in_place(image):
    """Like Keras applications' `preprocess_input`: works on its argument in place."""
    image -= 100.0
    image /= 2.0
    return image


class ZeroInPlace(BatchTransform):
    """A careless user transform that writes into its input."""

    def apply(self, x, params):
        x.zero_()
        return x


def test_in_place_preprocessing_functions_do_not_reach_the_caller(digits):
    x = digits[:6].copy()
    gen = ImageDataGenerator(preprocessing_function=scale_in_place, device="cpu")
    out = gen.standardize(x)
    np.testing.assert_array_equal(x, digits[:6])
    np.testing.assert_allclose(out, (digits[:6] - 100) / 2)
    gen.preview(x, n=4)
    np.testing.assert_array_equal(x, digits[:6])
    one = x[0].copy()
    np.testing.assert_allclose(gen.standardize(one), (one - 100) / 2)
    np.testing.assert_array_equal(one, digits[0])


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_in_place_user_transforms_do_not_reach_the_caller(digits, kind):
    x = digits[:4].copy() if kind == "numpy" else torch.from_numpy(digits[:4].copy())
    gen = ImageDataGenerator(transforms=[ZeroInPlace()], device="cpu")
    assert (np.asarray(gen.augment(x)) == 0).all()
    np.testing.assert_array_equal(np.asarray(x), digits[:4])
    gen.fit(x, augment=True)
    np.testing.assert_array_equal(np.asarray(x), digits[:4])


def test_augment_with_nothing_configured_returns_a_copy(digits):
    x = digits[:4].copy()
    out = ImageDataGenerator(device="cpu").augment(x)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)
    t = torch.from_numpy(x)
    assert ImageDataGenerator(device="cpu").augment(t).data_ptr() != t.data_ptr()


STRIDED = {
    "flipped columns": lambda x: np.flip(x, 2),
    "flipped batch": lambda x: x[::-1],
    "every other row": lambda x: x[:, ::2],
    "fortran order": np.asfortranarray,
    "read-only": lambda x: np.lib.stride_tricks.as_strided(x, writeable=False),
    "big-endian": lambda x: x.astype(">f4"),
}


@pytest.mark.parametrize("layout", sorted(STRIDED))
def test_any_layout_gives_what_its_contiguous_copy_gives(digits, layout):
    x = STRIDED[layout](digits[:8])
    dense = np.ascontiguousarray(x, dtype="float32")
    gen = ImageDataGenerator(rotation_range=20, featurewise_center=True, zca_whitening=False,
                             device="cpu")  # fmt: skip
    gen.fit(x)
    np.testing.assert_allclose(gen.mean, dense.mean((0, 1, 2))[None, None], rtol=1e-6)
    np.testing.assert_array_equal(gen.augment(x, seed=1), gen.augment(dense, seed=1))
    np.testing.assert_array_equal(gen.standardize(x), gen.standardize(dense))
    served, expected = (next(iter(gen.flow(a, batch_size=8, seed=2))) for a in (x, dense))
    np.testing.assert_array_equal(served, expected)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint32", "int64",
                                   "uint64", "float16", "float64", "bool"])  # fmt: skip
def test_every_real_dtype_is_taken(digits, dtype):
    x = (digits[:4] > 100) if dtype == "bool" else digits[:4].astype(dtype)
    gen = ImageDataGenerator(rotation_range=10, device="cpu")
    expected = gen.augment(x.astype("float32"), seed=0)
    np.testing.assert_allclose(gen.augment(x, seed=0), expected, atol=1e-4)
    assert len(list(gen.flow(x, batch_size=2).epoch())) == 2


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_everywhere(digits, value):
    x = digits[:4].copy()
    x[1, 3, 3, 0] = x[2, 5, 5, 0] = value

    def counts(n):
        return f"{n} NaN and 0 infinite" if np.isnan(value) else f"0 NaN and {n} infinite"

    gen = ImageDataGenerator(rotation_range=10, featurewise_center=True, device="cpu")
    calls = [
        lambda: gen.fit(x),
        lambda: gen.fit(iter([x])),
        lambda: gen.augment(x),
        lambda: gen.standardize(x),
        lambda: gen.random_transform(x[1]),
        lambda: gen.apply_transform(x[1], {"theta": 5}),
        lambda: gen.preview(x),
        lambda: gen.flow(x),
    ]
    for index, call in enumerate(calls):
        found = counts(1 if index in (4, 5) else 2)  # one image, or the whole batch
        with pytest.raises(ValueError, match=f"finite values only.*data with {found} values"):
            call()
    assert gen.mean is None  # the failed fits stored nothing


def test_a_failed_fit_keeps_the_previous_statistics(digits):
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    gen.fit(digits[:8])
    before = gen.mean.copy()
    huge = np.full((2, 28, 28, 1), 1e200)  # finite, but its squares are not
    with pytest.raises(ValueError, match="too large to square"):
        gen.fit(huge)
    np.testing.assert_array_equal(gen.mean, before)


@pytest.mark.parametrize("key", ["theta", "tx", "ty", "shear", "zx", "zy", "brightness",
                                 "channel_shift_intensity"])  # fmt: skip
@pytest.mark.parametrize("value", [np.nan, np.inf, "10"])
def test_non_finite_transform_parameters_are_refused(digits, key, value):
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match=rf"Received: transform_parameters\['{key}'\]="):
        gen.apply_transform(digits[0], {key: value})


def test_complex_and_text_input_is_refused(digits):
    gen = ImageDataGenerator(device="cpu")
    for x in (digits[:2].astype("complex64"), torch.zeros((2, 4, 4, 1), dtype=torch.complex64),
              np.full((2, 4, 4, 1), "a")):  # fmt: skip
        with pytest.raises(ValueError, match="must be a real numeric array"):
            gen.augment(x)
        with pytest.raises(ValueError, match="must be a real numeric array"):
            gen.flow(x)
