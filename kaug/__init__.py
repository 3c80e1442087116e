"""kaug: Keras's ImageDataGenerator, every batch augmented at once with torch.

    from kaug import ImageDataGenerator

runs Keras code unchanged, on the GPU when there is one and on the CPU otherwise.
Imported before Keras, with no backend chosen and TensorFlow not installed, kaug
makes torch Keras's backend (see `kaug._backend`).
"""

from kaug import _backend

_backend.default_to_torch()

from kaug import datasets, transforms  # noqa: E402
from kaug.image_data_generator import ImageDataGenerator, load  # noqa: E402

__all__ = ["ImageDataGenerator", "datasets", "load", "transforms"]
__version__ = "0.1.0"
