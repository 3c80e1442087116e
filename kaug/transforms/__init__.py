"""Batch transforms: validated configuration, device-side sampling, pure apply."""

from kaug.transforms.base import BatchTransform
from kaug.transforms.keras import KerasAugmentation

__all__ = ["BatchTransform", "KerasAugmentation"]
