"""Pure batch kernels: (B, C, H, W) tensors in, tensors out; no RNG, no state."""

from kaug.functional.geometric import flip, keras_affine_matrix, warp
from kaug.functional.intensity import (
    brightness,
    channel_shift,
    salt_and_pepper,
    unit_or_byte_range,
)
from kaug.functional.morphology import dilation, erosion

__all__ = [
    "brightness",
    "channel_shift",
    "dilation",
    "erosion",
    "flip",
    "keras_affine_matrix",
    "salt_and_pepper",
    "unit_or_byte_range",
    "warp",
]
