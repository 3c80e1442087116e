"""The fast decoders against PIL (Keras's `load_img`): kornia-rs, torchvision.io, and
the resize that reproduces PIL's on a device."""

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kaug.data import decoding
from kaug.data.decoding import FileDecoder, decode_jpegs, decode_pil, read_header, resize_like_pil

COLOR_MODES = ("grayscale", "rgb", "rgba")
FILTERS = ("bilinear", "bicubic", "box", "hamming", "lanczos")


def encode(pixels, format, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format, **options)
    return buffer.getvalue()


def picture(digit, channels):
    """A real digit as L, RGB (distinct channels) or RGBA (varying alpha) pixels."""
    if channels == 1:
        return digit
    planes = [digit, 255 - digit, digit // 2, np.roll(digit, 3, axis=1)]
    return np.stack(planes[:channels], -1)


def assert_decodes_as_pil(data, color_mode, target=(28, 28)):
    """kaug's CPU decoder gives PIL's pixels, or fails where PIL fails."""
    decode = FileDecoder(color_mode, target, "nearest", False)
    try:
        expected = decode_pil(data, color_mode, target)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 -- PIL's own error
            decode(data)
        return
    np.testing.assert_array_equal(decode(data), expected)


@pytest.fixture(scope="module")
def digit_files(mnist):
    """(format, native channels) -> encoded bytes of 24 real digits."""
    files = {}
    for channels, format in [(1, "PNG"), (3, "PNG"), (4, "PNG"), (1, "JPEG"), (3, "JPEG")]:
        files[format, channels] = [
            encode(picture(digit, channels), format, quality=90) for digit in mnist["x_train"][:24]
        ]
    return files


@pytest.mark.parametrize("color_mode", COLOR_MODES)
def test_fast_decoder_is_pil_exactly(digit_files, color_mode):
    fast = FileDecoder(color_mode, (28, 28), "nearest", False)
    for (format, channels), datas in digit_files.items():
        assert read_header(datas[0]) == (format.lower(), 28, 28, channels)
        for data in datas:
            np.testing.assert_array_equal(fast(data), decode_pil(data, color_mode, (28, 28)))


def test_headers_decline_what_kornia_rs_would_not_reproduce(mnist):
    digit = mnist["x_train"][0]
    declined = [
        encode(digit.astype(np.uint16) * 257, "PNG"),  # 16-bit
        encode(digit, "PNG", transparency=0),  # tRNS chunk
        encode(np.stack([digit, digit], -1), "PNG"),  # LA
        encode(np.zeros((8, 8), np.uint8), "BMP"),
    ]
    palette = Image.fromarray(digit).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    cmyk = io.BytesIO()
    Image.fromarray(np.stack([digit] * 3, -1)).convert("CMYK").save(cmyk, "JPEG")
    declined += [buffer.getvalue(), cmyk.getvalue(), b"\x89PNG\r\n\x1a\n" + b"garbage" * 20]
    for data in declined:
        assert read_header(data) is None
        for color_mode in COLOR_MODES:  # PIL decodes them (or fails) as in Keras
            assert_decodes_as_pil(data, color_mode)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    channels=st.sampled_from([1, 3, 4]),
    format=st.sampled_from(["PNG", "JPEG"]),
    color_mode=st.sampled_from(COLOR_MODES),
    quality=st.integers(20, 100),
    subsampling=st.sampled_from([0, 1, 2]),
)
def test_fast_decoder_matches_pil_on_any_image(seed, size, channels, format, color_mode,
                                               quality, subsampling):  # fmt: skip
    channels = 3 if format == "JPEG" and channels == 4 else channels
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, channels), dtype=np.uint8)
    data = encode(pixels.squeeze(-1) if channels == 1 else pixels, format,
                  quality=quality, subsampling=subsampling)  # fmt: skip
    for target in (size, (28, 28)):  # at the target size (kornia-rs) and resized (PIL)
        expected = decode_pil(data, color_mode, target, "bilinear")
        out = FileDecoder(color_mode, target, "bilinear", False)(data)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)


def test_truncated_files_fail_as_in_pil(digit_files):
    """kornia-rs never accepts a file PIL rejects: a cut file raises PIL's error or
    decodes to PIL's pixels."""
    for datas in digit_files.values():
        data = datas[0]
        for cut in range(8, len(data), max(1, len(data) // 25)):
            assert_decodes_as_pil(data[:cut], "rgb")


def pil_resize(images, target, interpolation, keep_aspect_ratio=False):
    """The reference: each (H, W) uint8 image through Keras's PIL resize."""
    out = []
    for image in images:
        data = encode(image, "PNG")
        out.append(decode_pil(data, "grayscale", target, interpolation, keep_aspect_ratio))
    return np.stack(out)[..., 0]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(1, 50), st.integers(1, 50)),
    target=st.tuples(st.integers(1, 50), st.integers(1, 50)),
    crop=st.booleans(),
)
def test_nearest_resize_picks_pils_pixels(seed, size, target, crop):
    images = np.random.default_rng(seed).integers(0, 256, (2, *size), dtype=np.uint8)
    out = resize_like_pil(torch.from_numpy(images)[:, None], target, "nearest", crop)
    np.testing.assert_array_equal(out[:, 0].numpy(), pil_resize(images, target, "nearest", crop))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 60),
    target=st.integers(1, 60),
    axis=st.sampled_from([0, 1]),
    interpolation=st.sampled_from(FILTERS),
)
def test_one_axis_filter_resize_is_pil_exactly(seed, length, target, axis, interpolation):
    """PIL's coefficients, 22-bit fixed point and clipping, bit for bit."""
    size, shape = [17, 17], [17, 17]
    size[axis], shape[axis] = length, target
    images = np.random.default_rng(seed).integers(0, 256, (2, *size), dtype=np.uint8)
    out = resize_like_pil(torch.from_numpy(images)[:, None], tuple(shape), interpolation)
    np.testing.assert_array_equal(
        out[:, 0].numpy(), pil_resize(images, tuple(shape), interpolation)
    )


@pytest.mark.parametrize("interpolation", FILTERS)
def test_two_axis_filter_resize_of_digits_is_within_a_few_levels_of_pil(mnist, interpolation):
    """Both axes: PIL's two 8-bit passes, horizontal first. Pillow 13 runs some
    shapes vertical first, which rounds the intermediate differently: on real
    digits a few levels on a few pixels."""
    digits = mnist["x_train"][:32]
    sources = [
        np.stack([np.asarray(Image.fromarray(d).resize(s[::-1], Image.BILINEAR)) for d in digits])
        for s in ((40, 30), (64, 64), (17, 23))
    ]  # fmt: skip
    for images in sources:
        for target in ((28, 28), (20, 30), (48, 36)):
            out = resize_like_pil(torch.from_numpy(images)[:, None], target, interpolation)
            diff = np.abs(out[:, 0].numpy().astype(int) - pil_resize(images, target, interpolation))
            assert diff.max() <= 6 and diff.mean() < 0.15, (images.shape, target, diff.max())


@pytest.mark.parametrize("color_mode", COLOR_MODES)
@pytest.mark.parametrize(
    "target, interpolation, crop",
    [((28, 28), "nearest", False), ((20, 30), "nearest", True), ((28, 40), "bicubic", False),
     ((14, 28), "lanczos", False)],
)  # fmt: skip
def test_torchvision_decodes_jpegs_as_pil(digit_files, color_mode, target, interpolation, crop):
    if decoding.torchvision_io() is None:
        pytest.skip("torchvision.io does not import here")
    for channels in (1, 3):
        if color_mode == "grayscale" and channels == 3:
            continue  # PIL's weighted grey sum: those files stay with PIL
        datas = digit_files["JPEG", channels]
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        out = decode_jpegs(tensors, color_mode, target, interpolation, crop, torch.device("cpu"))
        expected = np.stack(
            [decode_pil(data, color_mode, target, interpolation, crop) for data in datas]
        )
        assert out.dtype == torch.uint8
        np.testing.assert_array_equal(out.permute(0, 2, 3, 1).numpy(), expected)


def test_jpegs_go_to_the_device_only_when_asked(digit_files):
    data = digit_files["JPEG", 3][0]
    deferred = FileDecoder("rgb", (28, 28), "nearest", False, jpeg_on_device=True)(data)
    assert isinstance(deferred, torch.Tensor) and bytes(deferred.numpy()) == data
    grey = FileDecoder("grayscale", (28, 28), "nearest", False, jpeg_on_device=True)(data)
    assert isinstance(grey, np.ndarray)  # an RGB JPEG made grey: PIL's sum, on the CPU
    png = digit_files["PNG", 1][0]
    assert isinstance(FileDecoder("rgb", (28, 28), "nearest", False, jpeg_on_device=True)(png),
                      np.ndarray)  # fmt: skip


def test_torchvision_resizes_a_batch_of_mixed_sizes_in_order(mnist):
    if decoding.torchvision_io() is None:
        pytest.skip("torchvision.io does not import here")
    sizes = [(28, 28), (40, 30), (28, 28), (17, 23), (40, 30)]
    datas = [
        encode(np.asarray(Image.fromarray(digit).resize(size[::-1])), "JPEG", quality=90)
        for digit, size in zip(mnist["x_train"][:5], sizes, strict=True)
    ]
    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
    out = decode_jpegs(tensors, "rgb", (28, 28), "nearest", False, torch.device("cpu"))
    expected = np.stack([decode_pil(data, "rgb", (28, 28), "nearest") for data in datas])
    np.testing.assert_array_equal(out.permute(0, 2, 3, 1).numpy(), expected)
