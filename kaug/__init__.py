"""kaug: Keras's ImageDataGenerator, every batch augmented at once with torch.

    from kaug import ImageDataGenerator

runs Keras code unchanged, on the GPU when there is one and on the CPU otherwise.
"""

from kaug import transforms
from kaug.image_data_generator import ImageDataGenerator, load

__all__ = ["ImageDataGenerator", "load", "transforms"]
__version__ = "0.1.0"
