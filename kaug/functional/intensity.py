"""Photometric batch kernels with Keras's per-image semantics."""

import torch

# Interpolation leaves float32 noise around 8-bit values (254.99998 where scipy
# gives 255): values this close to a level count as that level.
_LEVEL_TOLERANCE = 1e-3


def _image_extrema(x):
    """Per-image min and max over channels, rows and columns, shaped (B, 1, 1, 1)."""
    flat = x.reshape(x.shape[0], -1)
    return flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)


def channel_shift(x, intensity):
    """Add `intensity[i]` to every channel of image i, clipped to that image's range.

    Keras's `apply_channel_shift`: one offset for all channels, and the result
    clipped to the min and max of the image (over all channels) before the shift.

    Args:
        x: (B, C, H, W) floating tensor.
        intensity: (B,) offsets.
    """
    if x.shape[0] == 0:
        return x
    low, high = _image_extrema(x)
    shifted = x + intensity.to(x.dtype).view(-1, 1, 1, 1)
    return torch.minimum(torch.maximum(shifted, low), high)


def brightness(x, factor):
    """Scale each image's brightness the way Keras's legacy generator does (via PIL).

    Keras turns the image into 8-bit PIL levels, lets `ImageEnhance.Brightness`
    compute trunc(factor * level) clipped to 0..255, and turns it back. kaug keeps
    that arithmetic and picks the levels per image:

    - data in 0..255 (max > 1): levels are trunc(x), as in Keras;
    - data in [0, 1]: levels are round(255 * x), result / 255. Keras truncates such
      data to 0/1 levels and returns a black image; this is the fix;
    - anything else: levels are trunc(255 * (x - min) / (max - min)) and the
      result maps back to [min, max], as in Keras.

    A 4th channel is alpha, which PIL leaves unchanged.

    Args:
        x: (B, C, H, W) floating tensor.
        factor: (B,) brightness factors (1 is the identity, 0 is black).
    """
    if x.shape[0] == 0:
        return x
    low, high = _image_extrema(x)
    # high - low overflows for data near the dtype's limits: such images are worked
    # on at half scale, exactly (a power of two), and scaled back at the end.
    half = ~torch.isfinite(high - low)
    scale = torch.where(half, 0.5, 1.0).to(x.dtype)
    x, low, high = x * scale, low * scale, high * scale
    rescaled = (low < -_LEVEL_TOLERANCE) | (high > 255 + _LEVEL_TOLERANCE)
    unit = ~rescaled & (high <= 1)
    span = torch.where(rescaled, high - low, torch.ones_like(high))
    span = torch.where(span > 0, span, torch.ones_like(span))
    origin = torch.where(rescaled, low, torch.zeros_like(low))
    levels = torch.where(unit, torch.round(x * 255), torch.trunc((x - origin) / span * 255))
    levels = torch.where(rescaled | unit, levels, torch.trunc(x))

    factor = factor.to(torch.float32).view(-1, 1, 1, 1).expand(-1, x.shape[1], 1, 1)
    if x.shape[1] == 4:
        factor = factor.clone()
        factor[:, 3] = 1.0
    enhanced = torch.clamp(torch.trunc(factor * levels.to(torch.float32)), 0, 255).to(x.dtype)

    decoded = torch.where(rescaled, enhanced / 255 * span + origin, enhanced / 255)
    return torch.where(rescaled | unit, decoded, enhanced) / scale


def unit_or_byte_range(x):
    """Per-image (low, high) = (0, 1) for data in [0, 1], else (0, 255); (B, 1, 1, 1) each."""
    high = x.reshape(x.shape[0], -1).amax(1).view(-1, 1, 1, 1)
    high = torch.where(high <= 1, 1.0, 255.0).to(x.dtype)
    return torch.zeros_like(high), high


def salt_and_pepper(x, salt, pepper, low, high):
    """Set the `salt` pixels to `high` and the `pepper` pixels to `low`, in every channel.

    Args:
        x: (B, C, H, W) floating tensor.
        salt: (B, 1, H, W) bool.
        pepper: (B, 1, H, W) bool, disjoint from `salt`.
        low: scalar or (B, 1, 1, 1) tensor.
        high: scalar or (B, 1, 1, 1) tensor.
    """
    high, low = (v.to(x.dtype) if torch.is_tensor(v) else float(v) for v in (high, low))
    return torch.where(salt, high, torch.where(pepper, low, x))
