"""Colour and tone kernels with a factor per image: torchvision v2's functional ops on a
whole batch.

Images are (B, C, H, W) floats in [0, bound] (255 for Keras's 0..255 data, 1 for
[0, 1] data); every output stays in that range, dtype and device. Factors are
(B,) tensors, one per image. Colour ops work on the first three channels as RGB
(an alpha channel, and any channel after it, passes through) and leave images of
fewer than three channels as they are where colour has no meaning (saturation,
hue).
"""

import torch

LUMA = (0.2989, 0.587, 0.114)  # torchvision's (ITU-R 601-2) grayscale weights


def _per_image(values, x):
    return torch.as_tensor(values, device=x.device).to(x.dtype).view(-1, 1, 1, 1)


def _blend(image, other, ratio, bound):
    """`ratio * image + (1 - ratio) * other`, clipped, as one lerp: with one product
    only, an extreme ratio overflows to +-inf and clips to the range, never NaN."""
    return torch.lerp(other.expand_as(image), image, _per_image(ratio, image)).clamp(0, bound)


def _split_alpha(x):
    """(colour channels, the rest or None): the first three channels are RGB; a fourth
    (alpha) and any after it pass through untouched."""
    return (x[:, :3], x[:, 3:]) if x.shape[1] > 3 else (x, None)


def _with_alpha(colour, alpha):
    return colour if alpha is None else torch.cat([colour, alpha], 1)


def grayscale(x):
    """(B, 1, H, W) luma of RGB images; one-channel images as they are."""
    colour, _ = _split_alpha(x)
    if colour.shape[1] < 3:
        return colour[:, :1]
    r, g, b = colour[:, 0:1], colour[:, 1:2], colour[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def to_grayscale(x):
    """Every colour channel replaced by the luma (torchvision's `rgb_to_grayscale` with
    as many output channels as input)."""
    colour, alpha = _split_alpha(x)
    return _with_alpha(grayscale(x).expand_as(colour), alpha)


def adjust_contrast(x, factor, bound):
    """Blend each image with the mean of its grayscale: 0 gives flat grey, 1 the image."""
    colour, alpha = _split_alpha(x)
    mean = grayscale(x).mean((1, 2, 3), keepdim=True)
    return _with_alpha(_blend(colour, mean, factor, bound), alpha)


def adjust_saturation(x, factor, bound):
    """Blend each RGB image with its grayscale: 0 gives grey, 1 the image."""
    colour, alpha = _split_alpha(x)
    if colour.shape[1] < 3:
        return x
    return _with_alpha(_blend(colour, grayscale(x), factor, bound), alpha)


def _hue(rgb, maxc, chroma):
    """(B, 1, H, W) hue in turns [0, 1) of RGB pixels (Pillow's and torchvision's
    formula), from the differences to the largest channel only, so any data range
    (negative values, above the bound) gives a finite hue; 0 for grey pixels."""
    flat = chroma == 0
    rc, gc, bc = ((maxc - rgb) / torch.where(flat, 1, chroma)).unbind(1)
    r, g, _ = rgb.unbind(1)
    maxc, flat = maxc.squeeze(1), flat.squeeze(1)
    red_max = maxc == r
    green_max = (maxc == g) & ~red_max
    blue_max = ~red_max & ~green_max
    hue = (bc - gc) * red_max + (2.0 + rc - bc) * green_max + (4.0 + gc - rc) * blue_max
    hue = torch.where(flat, 0, hue)
    return torch.fmod(hue / 6.0 + 1.0, 1.0).unsqueeze(1)


def adjust_hue(x, factor, bound):
    """Rotate each RGB image's hue by `factor` (in [-0.5, 0.5] of a full turn).

    torchvision's HSV round trip without its divisions by the value: with V the
    largest channel and C = V - min the chroma (V S in HSV), channel n comes back as
    `V - C clamp(min(k, 4 - k), 0, 1)` with `k = (n + 6 h) mod 6` for n = 5, 3, 1.
    Every pixel stays within its own [min, max], so data in range stays in range and
    data outside `value_range` gives finite values, never NaN. `bound` is unused:
    hue is the same at any scale and offset.
    """
    colour, alpha = _split_alpha(x)
    if colour.shape[1] < 3:
        return x
    maxc = colour.amax(1, keepdim=True)
    chroma = maxc - colour.amin(1, keepdim=True)
    hue = torch.remainder(_hue(colour, maxc, chroma) + _per_image(factor, x), 1.0)
    # 5, 3, 1, made on the device (a tensor from a list is a host-to-device copy).
    offsets = 5 - 2 * torch.arange(3, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = torch.remainder(offsets + 6 * hue, 6)
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return _with_alpha(maxc - chroma * ramp, alpha)


def adjust_gamma(x, gamma, bound, gain=1.0):
    """`bound * gain * (x / bound) ** gamma`, per image gamma, clipped to the range."""
    return (gain * (x / bound).clamp(min=0) ** _per_image(gamma, x) * bound).clamp(0, bound)


def adjust_sharpness(x, factor, bound):
    """Blend with torchvision's smoothing kernel: 0 blurs, 1 is the image, 2 sharpens.
    Border pixels keep their values (as torchvision and PIL)."""
    height, width = x.shape[-2:]
    if x.numel() == 0 or height <= 2 or width <= 2:
        return x
    # torchvision's kernel (ones, 5 in the centre, / 13) as a 3x3 box sum plus 4 centres
    interior = x[..., 1:-1, 1:-1]
    box = torch.nn.functional.avg_pool2d(x, 3, stride=1) * 9
    blurred = (box + 4 * interior) / 13
    ratio = _per_image(factor, x)
    out = x.clone()
    out[..., 1:-1, 1:-1] = interior + (1 - ratio) * (blurred - interior)
    return out.clamp(0, bound)


def invert(x, bound):
    return bound - x


def solarize(x, threshold, bound):
    """Invert the pixels at or above each image's threshold."""
    return torch.where(x >= _per_image(threshold, x), bound - x, x)


def posterize(x, bits, bound):
    """Keep `bits` (per image, 1..8) bits of each 8-bit level: on integer 0..255 data
    this is torchvision's bit mask."""
    step = (2.0 ** (8 - _per_image(bits, x))) * (bound / 255.0)
    return torch.floor(x / step) * step


def autocontrast(x, bound):
    """Stretch each channel of each image to span [0, bound] (flat channels unchanged)."""
    low = x.amin((-2, -1), keepdim=True)
    high = x.amax((-2, -1), keepdim=True)
    flat = high == low
    scale = torch.where(flat, torch.ones_like(high), (high - low) / bound)
    low = torch.where(flat, torch.zeros_like(low), low)
    return ((x - low) / scale).clamp(0, bound)


def adjust_brightness(x, factor, bound):
    """`x * factor` per image, clipped to the range (torchvision's `adjust_brightness`)."""
    return (x * _per_image(factor, x)).clamp(0, bound)


def equalize(x, bound):
    """Histogram equalization of each channel of each image over 256 levels, with PIL's
    lookup table (torchvision's `equalize`); a channel whose histogram has a single
    level besides its top one stays as it is."""
    if x.numel() == 0:
        return x
    # The levels in float32 whatever the images' dtype: float16 rounds 255.999 to 256.
    levels = torch.floor(x.float().clamp(0, bound) / bound * (256 - 1e-3)).long()
    flat = levels.flatten(-2)
    hist = torch.zeros((*flat.shape[:-1], 256), dtype=torch.long, device=x.device)
    hist.scatter_add_(-1, flat, torch.ones_like(flat))
    cumulative = hist.cumsum(-1)
    top = cumulative.argmax(-1, keepdim=True)  # the first level holding the last pixels
    step = (flat.shape[-1] - hist.gather(-1, top)).div(255, rounding_mode="floor")
    lut = (cumulative[..., :-1] + step // 2).div(step.clamp(min=1), rounding_mode="floor")
    lut = torch.cat([torch.zeros_like(lut[..., :1]), lut.clamp(0, 255)], -1)
    equalized = lut.gather(-1, flat).view_as(levels)
    out = torch.where((step != 0).unsqueeze(-1), equalized, levels)
    return out.to(x.dtype) * (bound / 255.0)
