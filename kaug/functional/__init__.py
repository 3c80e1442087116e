"""Pure batch kernels: (B, C, H, W) tensors in, tensors out; no RNG, no state."""

from kaug.functional.geometric import flip, keras_affine_matrix, warp
from kaug.functional.intensity import brightness, channel_shift

__all__ = ["brightness", "channel_shift", "flip", "keras_affine_matrix", "warp"]
