"""Random erosion and dilation: thinner or thicker strokes, per image."""

import numbers

import numpy as np
import torch

from kaug import functional as F
from kaug._checks import invalid
from kaug.sampling import uniform
from kaug.transforms.base import BatchTransform, register_transform


class _RandomMorphology(BatchTransform):
    """Shared by erosion and dilation: a square window or a footprint."""

    kernel = None  # F.erosion or F.dilation

    def __init__(self, kernel_size=2, footprint=None, p=0.5):
        super().__init__(p=p)
        if footprint is not None:
            array = np.asarray(footprint)
            if array.ndim != 2 or not array.any() or not np.isin(array, (0, 1)).all():
                raise invalid("footprint", footprint, "must be a 2-D array of 0s and 1s, not all 0")
            footprint = array.astype(int).tolist()
            self._footprint = torch.tensor(footprint, dtype=torch.float32)
        self.footprint = footprint
        if isinstance(kernel_size, numbers.Integral) and not isinstance(kernel_size, bool):
            sizes = (int(kernel_size), int(kernel_size))
        elif isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 2:
            sizes = tuple(int(k) for k in kernel_size)
        else:
            sizes = None
        if sizes is None or sizes[0] < 1 or sizes[0] > sizes[1]:
            raise invalid(
                "kernel_size", kernel_size, "must be a positive int or a (min, max) pair of them"
            )
        self.kernel_size = kernel_size if isinstance(kernel_size, int) else list(sizes)
        self._sizes = sizes

    def sample(self, shape, generator):
        low, high = self._sizes
        if self.footprint is not None or low == high:
            return {}
        drawn = uniform((shape[0],), generator, low, high + 1).floor().to(torch.int64)
        return {"kernel_size": torch.clamp(drawn, max=high)}

    def apply(self, x, params):
        if self.footprint is not None:
            return type(self).kernel(x, footprint=self._footprint)
        low, high = self._sizes
        size = params.get("kernel_size", low)
        return type(self).kernel(x, size, choices=range(low, high + 1))


@register_transform
class RandomErosion(_RandomMorphology):
    """Erode images (grey-scale minimum filter): thinner bright strokes.

    The batch version of the classic `skimage.morphology.erosion(x, square(2))`
    recipe, on any number of channels.

    Args:
        kernel_size: side of the square window, or a [min, max] pair to draw a
            side per image.
        footprint: optional 2-D 0/1 array, the window's shape (replaces
            kernel_size).
        p: probability of eroding each image.
    """

    kernel = staticmethod(F.erosion)


@register_transform
class RandomDilation(_RandomMorphology):
    """Dilate images (grey-scale maximum filter): thicker bright strokes.

    Args:
        kernel_size: side of the square window, or a [min, max] pair to draw a
            side per image.
        footprint: optional 2-D 0/1 array, the window's shape (replaces
            kernel_size).
        p: probability of dilating each image.
    """

    kernel = staticmethod(F.dilation)
