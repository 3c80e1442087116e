"""Loaders and image I/O."""

from kaug.data.loaders import ArrayLoader

__all__ = ["ArrayLoader"]
