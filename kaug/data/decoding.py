"""Image file bytes to uint8 pixels, as Keras's `load_img` + `img_to_array` give them.

Three decoders, picked per file from its header:

- PIL, Keras's own: every format, mode conversion, resize and crop. The reference,
  and the fallback whenever another decoder declines or fails.
- kornia-rs, for 8-bit PNGs and JPEGs already at the target size: bit-identical to
  PIL there (PNG is lossless; both use libjpeg-turbo for JPEG), 5-6x faster on 28x28 digits.
- torchvision.io on the generator's device, for JPEGs (nvJPEG on CUDA), decoded a
  batch at a time in the main process and resized there. Worker processes only read
  those files' bytes.
"""

import io
import math
import struct
import sys
import warnings
from functools import cache

import numpy as np
import torch

DECODERS = ("auto", "pil", "torchvision")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> channels, 8-bit L / RGB / RGBA
_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}  # Keras color_mode -> channels


def decode_pil(data, color_mode="rgb", target_size=None, interpolation="nearest",
               keep_aspect_ratio=False):  # fmt: skip
    """Encoded image bytes as an (H, W, C) array, exactly as Keras's `load_img`.

    uint8 for 8-bit images; 16- and 32-bit grayscale images come back as float32
    (their values exceed 255), as in Keras.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if color_mode == "grayscale":
        if image.mode not in ("L", "I;16", "I"):
            image = image.convert("L")
    elif image.mode != color_mode.upper():
        image = image.convert(color_mode.upper())
    if target_size is not None:
        size = (target_size[1], target_size[0])
        if image.size != size:
            resample = getattr(Image.Resampling, interpolation.upper())
            box = centre_crop(image.size, size) if keep_aspect_ratio else None
            image = image.resize(size, resample, box=box)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
    return array[:, :, None] if array.ndim == 2 else array


LABEL_MODES = ("1", "L", "P", "I;16", "I")  # one-channel images whose values are labels


def decode_mask(data, target_size=None, keep_aspect_ratio=False):
    """A label image's bytes as an (H, W) array of its stored values: no colour
    conversion (a palette image gives its indices), nearest resize; uint8 for 8-bit
    files, int32 for 16- and 32-bit ones."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.mode not in LABEL_MODES:
        raise ValueError(
            f"a mask must be a one-channel label image (PIL mode {', '.join(LABEL_MODES)}), "
            f"not mode {image.mode}"
        )
    if target_size is not None:
        size = (target_size[1], target_size[0])
        if image.size != size:
            box = centre_crop(image.size, size) if keep_aspect_ratio else None
            image = image.resize(size, Image.Resampling.NEAREST, box=box)
    array = np.asarray(image)
    return array.astype(np.uint8 if array.dtype in (np.bool_, np.uint8) else np.int32)


class MaskDecoder:
    """`decode_mask` with a loader's settings: a picklable callable for its workers."""

    def __init__(self, target_size, keep_aspect_ratio):
        self.target_size = tuple(target_size)
        self.keep_aspect_ratio = keep_aspect_ratio

    def __call__(self, data):
        return decode_mask(data, self.target_size, self.keep_aspect_ratio)


def load_image(path, color_mode="rgb", target_size=None, interpolation="nearest",
               keep_aspect_ratio=False):  # fmt: skip
    """One image file as Keras's `load_img` + `img_to_array` (with PIL)."""
    with open(path, "rb") as file:
        return decode_pil(file.read(), color_mode, target_size, interpolation, keep_aspect_ratio)


def centre_crop(size, target):
    """Keras's crop box: the largest centred (width, height) box with the target's
    aspect ratio, as PIL's (left, top, right, bottom)."""
    width, height = size
    target_width, target_height = target
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return (left, top, left + crop_width, top + crop_height)


def read_header(data):
    """("png" | "jpeg", height, width, channels) for the 8-bit PNGs and JPEGs that a
    fast decoder reproduces PIL on; None for anything else."""
    if data[:8] == _PNG_SIGNATURE:
        return _png_header(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_header(data)
    return None


def _png_header(data):
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlaced = struct.unpack(">IIBBBBB", data[16:29])
    channels = _PNG_CHANNELS.get(colour)
    if depth != 8 or channels is None or interlaced or not width or not height:
        return None
    offset = 33
    while offset + 8 <= len(data):  # a tRNS chunk (before the pixels) -> PIL
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"tRNS":
            return None
        if kind == b"IDAT":
            return ("png", height, width, channels)
        offset += 12 + length
    return None


def _jpeg_header(data):
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_FRAMES:
            if offset + 10 > len(data):
                return None
            precision, height, width, channels = struct.unpack(
                ">BHHB", data[offset + 4 : offset + 10]
            )
            if precision != 8 or channels not in (1, 3) or not width or not height:
                return None
            return ("jpeg", height, width, channels)
        if marker in (0xD9, 0xDA):  # end of image, or pixels before any frame header
            return None
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    return None


def convertible(channels, color_mode):
    """Whether PIL's conversion from `channels` to `color_mode` is a plain channel
    copy (L->RGB, L/RGB->RGBA with opaque alpha, RGBA->RGB) that kaug redoes; a
    conversion to grayscale is PIL's weighted sum, left to PIL."""
    target = COLOR_MODES[color_mode]
    return channels == target or (target > 1 and channels in (1, 3, 4))


def convert_channels(pixels, color_mode, channel_axis=-1):
    """uint8 pixels (a tensor) with 1, 3 or 4 channels in `color_mode`, as PIL
    converts them (`convertible` must hold)."""
    target, channels = COLOR_MODES[color_mode], pixels.shape[channel_axis]
    if channels == target:
        return pixels
    colour = pixels.narrow(channel_axis, 0, min(channels, 3))
    if channels == 1:
        shape = list(colour.shape)
        shape[channel_axis] = 3
        colour = colour.expand(shape)
    if target == 3:
        return colour.contiguous()
    opaque = torch.full_like(colour.narrow(channel_axis, 0, 1), 255)
    return torch.cat([colour, opaque], channel_axis)


@cache
def kornia_rs_io():
    """kornia-rs's decoders, or None where kornia-rs is missing or too old."""
    try:
        from kornia_rs import io as kornia_io
    except Exception:  # an optional speed-up: any import failure means PIL
        return None
    wanted = ("decode_image_png_u8", "decode_image_jpegturbo")
    return kornia_io if all(hasattr(kornia_io, name) for name in wanted) else None


@cache
def torchvision_io():
    """torchvision.io, or None where torchvision is missing or cannot load its ops,
    or would be imported after TensorFlow: with tensorflow 2.21 and torchvision
    0.29 that import aborts the process (both register the same LLVM options), a
    crash no `except` catches. Keras's tensorflow backend imports TensorFlow first."""
    if "tensorflow" in sys.modules and "torchvision" not in sys.modules:
        return None
    try:
        import torchvision.io

        torchvision.io.decode_jpeg  # noqa: B018 -- its ops are what fails to load
    except Exception:  # torchvision built for another torch raises RuntimeError
        return None
    return torchvision.io


class FileDecoder:
    """Decodes one file's bytes for a loader: a picklable callable for its workers.

    Returns an (H, W, C) array, or -- for a JPEG left to the device -- the file's
    bytes as a 1-D uint8 tensor.
    """

    def __init__(self, color_mode, target_size, interpolation, keep_aspect_ratio,
                 fast=True, jpeg_on_device=False):  # fmt: skip
        self.color_mode = color_mode
        self.target_size = tuple(target_size)
        self.interpolation = interpolation
        self.keep_aspect_ratio = keep_aspect_ratio
        self.fast = fast
        self.jpeg_on_device = jpeg_on_device

    def __call__(self, data):
        header = read_header(data) if self.fast or self.jpeg_on_device else None
        if header is not None and convertible(header[3], self.color_mode):
            if self.jpeg_on_device and header[0] == "jpeg":
                return torch.frombuffer(bytearray(data), dtype=torch.uint8)
            if self.fast and header[1:3] == self.target_size:
                pixels = _decode_kornia_rs(data, header)
                if pixels is not None:
                    return convert_channels(torch.from_numpy(pixels), self.color_mode).numpy()
        return decode_pil(
            data, self.color_mode, self.target_size, self.interpolation, self.keep_aspect_ratio
        )


def _decode_kornia_rs(data, header):
    """(H, W, C) uint8 pixels from kornia-rs, or None to leave the file to PIL."""
    kornia_io = kornia_rs_io()
    if kornia_io is None:
        return None
    kind, height, width, channels = header
    mode = {1: "mono", 3: "rgb", 4: "rgba"}[channels]
    try:
        if kind == "png":
            pixels = kornia_io.decode_image_png_u8(data, (height, width), mode)
        else:
            pixels = kornia_io.decode_image_jpegturbo(data, mode)
    except Exception:  # PIL decodes it, or reports why it cannot
        return None
    return pixels if pixels.shape == (height, width, channels) else None


def decode_jpegs(datas, color_mode, target_size, interpolation, keep_aspect_ratio, device):
    """JPEG bytes (1-D uint8 tensors) as a (N, C, H, W) uint8 batch on `device`:
    torchvision.io decodes them there (nvJPEG on CUDA, one call per batch), and
    images of one size are converted and resized together, as PIL would. Raises if
    any file fails."""
    tvio = torchvision_io()
    unchanged = tvio.ImageReadMode.UNCHANGED
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders for TorchCodec's, once per call
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        if device.type == "cuda":
            images = tvio.decode_jpeg(datas, mode=unchanged, device=device)
        else:
            images = [tvio.decode_jpeg(data, mode=unchanged) for data in datas]

    def prepare(batch):
        batch = resize_like_pil(batch, target_size, interpolation, keep_aspect_ratio)
        return convert_channels(batch, color_mode, channel_axis=1)  # opaque alpha after

    by_size = {}
    for position, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(position)
    if len(by_size) == 1:  # the usual case: one stack, one resize
        return prepare(torch.stack(images))
    resized = {}
    for positions in by_size.values():
        batch = prepare(torch.stack([images[p] for p in positions]))
        resized.update(zip(positions, batch, strict=True))
    return torch.stack([resized[position] for position in range(len(images))])


def resize_like_pil(images, target_size, interpolation, keep_aspect_ratio=False):
    """(N, C, H, W) uint8 images resized exactly as PIL's `Image.resize` (Keras's
    `load_img`), on their device: "nearest" picks PIL's source pixels; the filters
    are PIL's two 8-bit passes (horizontal, then vertical), same coefficients, same
    22-bit fixed-point rounding. Channels are resized independently, so RGBA must
    have opaque alpha (PIL premultiplies it)."""
    height, width = images.shape[-2:]
    box = (
        centre_crop((width, height), target_size[::-1]) if keep_aspect_ratio
        else (0, 0, width, height)
    )  # fmt: skip
    if (height, width) == tuple(target_size) and box == (0, 0, width, height):
        return images
    device = str(images.device)
    if interpolation == "nearest":
        rows = _nearest_sources(box[1], box[3], target_size[0], height, device)
        columns = _nearest_sources(box[0], box[2], target_size[1], width, device)
        return images.index_select(-2, rows).index_select(-1, columns)
    out_height, out_width = target_size
    if out_width != width or box[0] or box[2] != out_width:  # PIL's own test
        weights = _filter_weights(width, box[0], box[2], out_width, interpolation, device)
        images = _fixed_point(images.double() @ weights.T)
    if out_height != height or box[1] or box[3] != out_height:
        weights = _filter_weights(height, box[1], box[3], out_height, interpolation, device)
        images = _fixed_point(weights @ images.double())
    return images


_PRECISION_BITS = 22  # PIL's 8-bit resampling: 32 - 8 - 2


def _fixed_point(sums):
    """PIL's clip8: round the 22-bit fixed-point sums to uint8."""
    scale = float(1 << _PRECISION_BITS)
    return ((sums + scale / 2) / scale).floor_().clamp_(0, 255).to(torch.uint8)


def _bicubic(x):
    x, a = abs(x), -0.5
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    return (((x - 5) * x + 8) * x - 4) * a if x < 2.0 else 0.0


def _sinc(x):
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


_F32_054, _F32_046 = float(np.float32(0.54)), float(np.float32(0.46))  # PIL's 0.54f, 0.46f


def _hamming(x):
    x = abs(x)
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x *= math.pi
    return math.sin(x) / x * (_F32_054 + _F32_046 * math.cos(x))


_FILTERS = {  # PIL's filters and their supports (Resample.c)
    "box": (lambda x: 1.0 if -0.5 < x <= 0.5 else 0.0, 0.5),
    "bilinear": (lambda x: max(0.0, 1.0 - abs(x)), 1.0),
    "hamming": (_hamming, 1.0),
    "bicubic": (_bicubic, 2.0),
    "lanczos": (lambda x: _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0, 3.0),
}


@cache
def _filter_weights(in_size, start, stop, out_size, interpolation, device):
    """PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` as an (out, in) matrix of
    integer weights (float64, so the products sum exactly)."""
    function, support = _FILTERS[interpolation]
    scale = (stop - start) / out_size
    filter_scale = max(scale, 1.0)
    support *= filter_scale
    weights = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = start + (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        row = [function((x - centre + 0.5) * (1.0 / filter_scale)) for x in range(first, last)]
        total = sum(row)
        for x, weight in zip(range(first, last), row, strict=True):
            weight = weight / total if total != 0.0 else weight
            weights[out, x] = int(weight * (1 << _PRECISION_BITS) + (0.5 if weight >= 0 else -0.5))
    return torch.from_numpy(weights).to(device)


@cache
def _nearest_sources(start, stop, size, length, device):
    """PIL's nearest source pixel (of `length`) for each of `size` outputs over
    [start, stop): ImagingScaleAffine's running double sum, truncated."""
    scale, position, sources = (stop - start) / size, start + (stop - start) / size * 0.5, []
    for _ in range(size):
        sources.append(min(int(position), length - 1))
        position += scale
    return torch.tensor(sources, dtype=torch.int64, device=device)
