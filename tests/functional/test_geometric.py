"""The warp kernel against Keras's legacy `apply_affine_transform` (scipy); the point maps
of crops, resizes and perspectives against torchvision's."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from keras.src.legacy.preprocessing.image import apply_affine_transform

from kaug.functional import flip, keras_affine_matrix, warp
from kaug.functional import geometric as G

FILL_MODES = ["constant", "nearest", "reflect", "wrap"]


def matrix(height, width, theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0, fh=False, fv=False):
    t = lambda v: torch.tensor([v])  # noqa: E731
    return keras_affine_matrix(
        t(theta), t(tx), t(ty), t(shear), t(zx), t(zy), t(fh), t(fv), height, width
    )


def kaug_warp(image, fill_mode="nearest", cval=0.0, order=1, **params):
    """One HWC numpy image through the kernel."""
    x = torch.from_numpy(image)[None].permute(0, 3, 1, 2)
    out = warp(x, matrix(*image.shape[:2], **params), fill_mode, cval, order)
    return out.permute(0, 2, 3, 1)[0].numpy()


def keras_warp(image, fill_mode="nearest", cval=0.0, order=1, **params):
    return apply_affine_transform(
        image, **params, row_axis=0, col_axis=1, channel_axis=2,
        fill_mode=fill_mode, cval=cval, order=order,
    )  # fmt: skip


def assert_images_match(out, ref, atol, max_mismatch=0.0, ignore=None):
    """All pixels within atol, except at most a `max_mismatch` fraction.

    The fraction allows for source coordinates that land within float32 rounding
    of a pixel edge (constant fill) or of a .5 tie (order 0), where float32 and
    scipy's float64 may round to neighbouring pixels. `ignore` (H, W) marks pixels
    known to sit on such a tie, left out of the count.
    """
    bad = np.abs(out.astype(np.float64) - ref) > atol
    if ignore is not None:
        bad = bad & ~ignore.reshape(ignore.shape + (1,) * (bad.ndim - ignore.ndim))
    assert bad.mean() <= max_mismatch, f"{bad.sum()} of {bad.size} pixels differ"


def tie_pixels(height, width, order, fill_mode, eps=1e-4, **params):
    """(H, W) True where the exact (float64) source coordinate is within `eps` of a
    nearest-neighbour .5 tie (order 0) or of the image's edge (constant fill)."""
    as64 = {k: float(v) for k, v in params.items()}
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    m = keras_affine_matrix(
        *(t(as64.get(k, d)) for k, d in [("theta", 0.0), ("tx", 0.0), ("ty", 0.0),
                                         ("shear", 0.0), ("zx", 1.0), ("zy", 1.0)]),
        torch.tensor([False]), torch.tensor([False]), height, width,
    )[0].numpy()  # fmt: skip
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cols = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    rows = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    ties = np.zeros((height, width), bool)
    if order == 0:
        for coord in (cols, rows):
            ties |= np.abs(np.abs(coord - np.floor(coord)) - 0.5) < eps
    if fill_mode == "constant":
        for coord, size in ((cols, width), (rows, height)):
            ties |= (np.abs(coord) < eps) | (np.abs(coord - (size - 1)) < eps)
    return ties


affine_params = st.fixed_dictionaries(
    {
        "theta": st.floats(-180, 180),
        "tx": st.floats(-10, 10),
        "ty": st.floats(-10, 10),
        "shear": st.floats(-40, 40),
        "zx": st.floats(0.5, 1.6),
        "zy": st.floats(0.5, 1.6),
    }
)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(params=affine_params, index=st.integers(0, 63))
@example(  # hypothesis's find: whole rows on .5 ties (see the test below)
    params={"theta": 9.904116479655341e-15, "tx": 0.0, "ty": 3.0, "shear": 0.0, "zx": 1.0,
            "zy": 1.5999999999999999},
    index=0,
)  # fmt: skip
def test_warp_matches_keras_on_mnist(digits, fill_mode, order, params, index):
    image = digits[index]
    out = kaug_warp(image, fill_mode, 77.0, order, **params)
    ref = keras_warp(image, fill_mode, 77.0, order, **params)
    ties = tie_pixels(*image.shape[:2], order, fill_mode, **params)
    assert_images_match(out, ref, atol=2e-3, max_mismatch=0.01, ignore=ties)


def test_rows_on_exact_ties_are_not_counted():
    """The case hypothesis found: zy=1.6 puts whole rows on .5 ties, where a 1e-14
    rotation tips float64 and float32 to different sides."""
    params = {"theta": 9.904116479655341e-15, "tx": 0.0, "ty": 3.0, "shear": 0.0,
              "zx": 1.0, "zy": 1.6}  # fmt: skip
    ties = tie_pixels(28, 28, 0, "nearest", **params)
    assert ties.any(1).sum() >= 3 and not ties.all()


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_warp_matches_keras_on_rgb(rgb_images, fill_mode, order):
    rng = np.random.default_rng(7)
    for image in rgb_images[:6]:
        params = {
            "theta": rng.uniform(-90, 90), "tx": rng.uniform(-6, 6), "ty": rng.uniform(-6, 6),
            "shear": rng.uniform(-20, 20), "zx": rng.uniform(0.7, 1.3), "zy": rng.uniform(0.7, 1.3),
        }  # fmt: skip
        out = kaug_warp(image, fill_mode, 10.0, order, **params)
        ref = keras_warp(image, fill_mode, 10.0, order, **params)
        assert_images_match(out, ref, atol=2e-3, max_mismatch=0.01)


def test_order_one_is_float_precise(digits):
    """Away from edge cases, order 1 agrees with scipy to float32 precision."""
    params = {"theta": 33.0, "tx": 2.3, "ty": -1.7, "shear": 12.0, "zx": 0.9, "zy": 1.1}
    for fill_mode in FILL_MODES:
        out = kaug_warp(digits[5], fill_mode, 0.0, 1, **params)
        np.testing.assert_allclose(
            out, keras_warp(digits[5], fill_mode, 0.0, 1, **params), atol=2e-3
        )


@pytest.mark.parametrize("fh,fv", [(True, False), (False, True), (True, True)])
def test_flips_fold_into_the_warp(digits, fh, fv):
    """Keras flips after the warp; kaug folds the flip into the same matrix."""
    params = {"theta": 20.0, "tx": 3.0, "zx": 1.2}
    ref = keras_warp(digits[3], "reflect", **params)
    ref = ref[:, ::-1] if fh else ref
    ref = ref[::-1] if fv else ref
    out = kaug_warp(digits[3], "reflect", fh=fh, fv=fv, **params)
    np.testing.assert_allclose(out, ref, atol=2e-3)


def shifted(image, shift, axis, fill):
    """What sampling at index + shift along `axis` gives: content moves by -shift."""
    moved = np.full_like(image, fill)
    n = image.shape[axis]
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    src[axis] = slice(max(shift, 0), n + min(shift, 0))
    dst[axis] = slice(max(-shift, 0), n + min(-shift, 0))
    moved[tuple(dst)] = image[tuple(src)]
    return moved


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("shift", [1, 3, -4])
def test_integer_shift_with_constant_fill_moves_content_exactly(digits, order, shift):
    """tx = s samples column j + s: content moves s columns left, cval fills in.

    Order 0 is bit-exact; order 1 is exact up to grid_sample's float32
    normalisation round trip (about 1e-6 of the value range).
    """
    image = digits[9]
    atol = 0.0 if order == 0 else 1e-3
    for axis, key in [(1, "tx"), (0, "ty")]:
        out = kaug_warp(image, "constant", cval=-1.0, order=order, **{key: float(shift)})
        expected = shifted(image, shift, axis=axis, fill=-1.0)
        np.testing.assert_allclose(out, expected, atol=atol, rtol=0)
        assert np.array_equal(out == -1.0, expected == -1.0)  # the filled band is exact


def test_rotation_is_about_the_true_centre_of_non_square_images():
    """180 degrees about the centre of a 20x30 image is both flips; Keras is off centre."""
    image = np.random.default_rng(0).uniform(0, 255, (20, 30, 1)).astype("float32")
    out = kaug_warp(image, "constant", theta=180.0)
    np.testing.assert_allclose(out, image[::-1, ::-1], atol=1e-3)
    keras = keras_warp(image, "constant", theta=180.0)
    assert not np.allclose(keras, image[::-1, ::-1], atol=1.0)  # the bug kaug fixes


def test_square_images_use_keras_centre(digits):
    """On square images the two centres coincide: parity for pure rotation."""
    np.testing.assert_allclose(
        kaug_warp(digits[1], "nearest", theta=90.0), keras_warp(digits[1], "nearest", theta=90.0),
        atol=2e-3,
    )  # fmt: skip


def test_identity_matrix_reproduces_input_and_keeps_batch_independent(digits):
    x = torch.from_numpy(digits[:4]).permute(0, 3, 1, 2)
    identity = torch.zeros(4)
    m = keras_affine_matrix(
        identity, identity, identity, identity, identity + 1, identity + 1,
        identity.bool(), identity.bool(), 28, 28,
    )  # fmt: skip
    torch.testing.assert_close(warp(x, m, "constant"), x, atol=1e-3, rtol=0)
    # A batch of N equals N batches of one.
    params = torch.tensor([[10.0, 1.0], [-30.0, -2.0], [45.0, 0.5], [0.0, 3.0]])
    theta, tx = params[:, 0], params[:, 1]
    m = keras_affine_matrix(
        theta, tx, identity, identity, identity + 1, identity + 1,
        identity.bool(), identity.bool(), 28, 28,
    )  # fmt: skip
    whole = warp(x, m, "wrap")
    for i in range(4):
        torch.testing.assert_close(warp(x[i : i + 1], m[i : i + 1], "wrap"), whole[i : i + 1])


def test_warp_reads_uint8_and_does_not_modify_input(mnist):
    x = torch.from_numpy(mnist["x_train"][:3, None])
    before = x.clone()
    out = warp(x, matrix(28, 28, theta=30.0).expand(3, 2, 3), "nearest")
    assert out.dtype == torch.float32
    assert torch.equal(x, before)
    ref = warp(x.float(), matrix(28, 28, theta=30.0).expand(3, 2, 3), "nearest")
    torch.testing.assert_close(out, ref)


def test_empty_batch():
    x = torch.zeros(0, 3, 8, 8)
    assert warp(x, torch.zeros(0, 2, 3), "reflect").shape == (0, 3, 8, 8)
    assert flip(x, torch.zeros(0, dtype=torch.bool), None).shape == (0, 3, 8, 8)


def test_flip_is_exact_per_image(digits):
    x = torch.from_numpy(digits[:4]).permute(0, 3, 1, 2)
    which = torch.tensor([True, False, True, False])
    out = flip(x, which, None)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])
    out = flip(x, None, which)
    assert torch.equal(out[2], x[2].flip(-2)) and torch.equal(out[3], x[3])


def test_perspective_coefficients_are_torchvisions():
    from torchvision.transforms.v2.functional._geometry import _get_perspective_coeffs

    starts = torch.tensor([[0, 0], [27, 0], [27, 27], [0, 27]], dtype=torch.float64)
    ends = (
        starts
        + torch.randint(-6, 7, (50, 4, 2), generator=torch.Generator().manual_seed(0)).double()
    )
    ours = G.perspective_coefficients(starts.expand(50, 4, 2), ends)
    for i in range(50):
        expected = _get_perspective_coeffs(starts.tolist(), ends[i].tolist())
        np.testing.assert_allclose(ours[i].numpy(), expected, rtol=1e-4, atol=1e-6)
    degenerate = torch.zeros(1, 4, 2, dtype=torch.float64)  # every corner in one point
    identity = [1.0, 0, 0, 0, 1.0, 0, 0, 0]
    assert G.perspective_coefficients(starts.expand(1, 4, 2), degenerate)[0].tolist() == identity


def test_a_perspective_never_maps_to_nan():
    """Points on a homography's horizon (denominator 0: column 0 here, where the x
    numerator is 0 too, so 0 / 0) are sent far outside, to be filled, not to NaN."""
    coefficients = torch.tensor([[1.0, 0, -0.5, 0, 1.0, 0, -2.0, 0]])
    columns, rows = G.homography_points(*G.pixel_grid(6, 6, "cpu"), coefficients)
    assert torch.isfinite(columns).all() and torch.isfinite(rows).all()
    assert (columns[..., 0].abs() >= 1e5).all()  # outside any image
    out = G.resample(torch.ones(1, 1, 6, 6), columns, rows, "constant", cval=-1.0)
    assert (out[..., 0] == -1).all() and torch.isfinite(out).all()


@pytest.mark.parametrize("box", [(3, 5, 7, 9), (0, 0, 28, 28), (10, 2, 18, 4)])
@pytest.mark.parametrize("out_size", [(12, 20), (40, 33)])
def test_box_points_resize_the_box_as_interpolate(mnist, box, out_size):
    """A box of the image resized to out_size equals `interpolate` on the cropped box
    (bilinear, half-pixel centres, no antialiasing), up- and downscaling."""
    top, left, height, width = box
    x = torch.from_numpy(mnist["x_train"][:4].astype("float32")).unsqueeze(1)
    columns, rows = G.pixel_grid(*out_size, "cpu")
    t = lambda v: torch.full((4,), float(v))  # noqa: E731
    columns = G.box_points(columns, t(left), t(width), out_size[1])
    rows = G.box_points(rows, t(top), t(height), out_size[0])
    out = G.sample_points(x, columns, rows, order=1)
    crop = x[..., top : top + height, left : left + width]
    expected = torch.nn.functional.interpolate(crop, out_size, mode="bilinear")
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


LABEL_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


@pytest.mark.parametrize("dtype", LABEL_DTYPES, ids=str)
def test_gather_points_is_nearest_sampling_by_index(dtype):
    """`gather_points` picks the pixels `sample_points(order=0)` picks, for any dtype,
    and keeps label values no float holds (2**62 + 1); separable points (crops)
    and full grids alike, empty batches too."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 9, 11, generator=generator) * 100
    rows = torch.rand(3, 5, 7, generator=generator) * 8
    cols = torch.rand(3, 5, 7, generator=generator) * 10
    expected = G.sample_points(x, cols, rows, order=0)
    assert torch.equal(G.gather_points(x, cols, rows), expected)
    separable = (cols[:, :1, :], rows[:, :, :1])
    assert torch.equal(G.gather_points(x, *separable), G.sample_points(x, *separable, order=0))
    info = torch.iinfo(dtype) if dtype != torch.bool else None
    labels = (x > 50) if dtype == torch.bool else (x.long() + (info.max - 100)).to(dtype)
    index = G.sample_points(torch.arange(99.0).view(1, 1, 9, 11).expand(3, 1, 9, 11), cols, rows, 0)
    flat = labels.flatten(2).gather(2, index.long().flatten(1).unsqueeze(1).expand(3, 2, -1))
    assert torch.equal(G.gather_points(labels, cols, rows), flat.view(3, 2, 5, 7))
    assert G.gather_points(labels[:0], cols[:0], rows[:0]).shape == (0, 2, 5, 7)


def test_warp_labels_follow_warp_exactly(digits):
    """Masks through `warp_labels` land where `warp(order=0)` moves the pixels, every
    fill mode, values of any width kept (0 where constant fills)."""
    x = torch.from_numpy(digits[:8]).permute(0, 3, 1, 2)
    masks = (x > 127).to(torch.int64) * (2**62 + 1)
    generator = torch.Generator().manual_seed(1)
    theta = torch.rand(8, generator=generator) * 90 - 45
    shift = torch.rand(8, generator=generator) * 8
    m = keras_affine_matrix(theta, shift, -shift, theta / 3, 1 + shift / 10, 1 - shift / 20,
                            shift > 4, shift < 2, 28, 28)  # fmt: skip
    for fill_mode in FILL_MODES:
        moved = G.warp_labels(masks, m, fill_mode)
        expected = (warp(x, m, fill_mode, 0.0, order=0) > 127).to(torch.int64) * (2**62 + 1)
        assert torch.equal(moved, expected)


def test_warp_labels_zeros_follow_warp_zeros_exactly(digits):
    """The policies' warp (torchvision's rounding) moves masks through the same
    grid_sample, by the pixels' indices."""
    x = torch.from_numpy(digits[:8]).permute(0, 3, 1, 2)
    masks = (x > 127).to(torch.int32) * (2**31 - 1)
    angle = torch.deg2rad(torch.linspace(-40, 40, 8, dtype=torch.float64))
    m = torch.stack([angle.cos(), -angle.sin() + 0.2, 0.5 + 0 * angle, angle.sin(), angle.cos(),
                     -1.5 + 0 * angle], -1).view(-1, 2, 3).float()  # fmt: skip
    expected = (G.warp_zeros(x, m, order=0) > 127).to(torch.int32) * (2**31 - 1)
    assert torch.equal(G.warp_labels_zeros(masks, m), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_sample_where_float32_does(dtype):
    """A float16 grid is off by up to half a pixel at a thousand pixels: half images
    are sampled on a float32 grid and come back in their dtype."""
    x = torch.arange(2048.0).view(1, 1, 1, 2048).expand(1, 1, 2, 2048)
    cols = torch.arange(2048.0).view(1, 1, 2048) * 1.0
    rows = torch.zeros(1, 2, 1)
    for order in (0, 1):
        out = G.sample_points(x.to(dtype), cols, rows, order)
        assert out.dtype == dtype
        assert torch.equal(out, G.sample_points(x, cols, rows, order).to(dtype))
