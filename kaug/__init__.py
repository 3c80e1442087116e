"""kaug: Keras's ImageDataGenerator, every batch augmented at once with torch.

    from kaug import ImageDataGenerator

runs Keras code unchanged, on the GPU when there is one and on the CPU otherwise.
"""

from kaug.image_data_generator import ImageDataGenerator

__all__ = ["ImageDataGenerator"]
__version__ = "0.1.0"
