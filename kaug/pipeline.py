"""The batch engine: one gathered (B, C, H, W) batch in, one served batch out.

Keras's order: the Keras augmentation stage (one fused warp, then channel shift
and brightness), the extra transforms (each run of adjacent geometric ones, crops,
perspective, elastic, composed into one resampling), then standardization. Pure torch: no
keras import, no reference to the ImageDataGenerator. The generator keeps its
live settings in a `Pipeline` (the augmentation stage is replaced when one of its
settings changes), and loaders hold the same `Pipeline`, so a setting changed
between epochs drives the next batch.
"""

import torch

from kaug._tensors import from_nchw
from kaug.batch import Batch
from kaug.data.io import to_uint8_images
from kaug.standardize import Standardizer
from kaug.transforms.geometric import GeometricTransform, KerasWarp, call_stages
from kaug.transforms.keras import KerasAugmentation

DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def geometric_runs(transforms):
    """The transforms, with each run of adjacent `GeometricTransform`s as one list."""
    runs = []
    for transform in transforms:
        if isinstance(transform, GeometricTransform):
            if runs and isinstance(runs[-1], list):
                runs[-1].append(transform)
                continue
            transform = [transform]
        runs.append(transform)
    return runs


class Pipeline:
    """Augmentation, extra transforms and standardization of batches on one device.

    Attributes:
        augmentation: the `KerasAugmentation` stage.
        transforms: extra `BatchTransform`s, run in order after it.
        standardizer: the `Standardizer` (its settings, and the fitted statistics).
        contiguous: serve batches contiguous in the Keras data format (for Keras
            backends that copy a permuted view twice).
    """

    def __init__(self):
        self.augmentation = KerasAugmentation()
        self.transforms = []
        self.standardizer = Standardizer()
        self.contiguous = False

    @property
    def data_format(self):
        return self.standardizer.data_format

    @property
    def device(self):
        return self.standardizer.device

    @property
    def dtype(self):
        """The served batches' torch dtype."""
        return DTYPES[self.standardizer.dtype]

    @property
    def compute_dtype(self):
        return self.standardizer.compute_dtype

    def augment_batch(self, batch, generator):
        """Random augmentation of a `Batch`: the Keras stage (its geometry moves the
        masks too: nearest sampling, 0 outside), then the extra transforms in order,
        each seeing what it declares (`apply` the images, `apply_batch` the whole
        batch). When the Keras stage only moves pixels and `transforms` opens with
        geometric ones, its warp joins their run: one resampling for all of them.
        Images come out in the compute dtype."""
        x = batch.images
        if x.is_floating_point() and x.dtype != self.compute_dtype:
            x = x.to(self.compute_dtype)  # integer images convert inside the warp
        batch = batch.replace(images=x)
        keras, runs = self.augmentation, geometric_runs(self.transforms)
        if keras.is_identity:
            batch = batch.replace(images=x.to(self.compute_dtype))
        elif keras.is_geometric_only and runs and isinstance(runs[0], list):
            runs[0] = [KerasWarp(keras), *runs[0]]  # the Keras warp joins the crops after it
        else:
            batch = keras.call_batch(batch, generator)
        for run in runs:
            if isinstance(run, list):  # adjacent geometric transforms: one resampling
                batch = call_stages(run, batch, generator, self.compute_dtype)
            else:
                batch = run.call_batch(batch, generator)
        return batch

    def augment(self, x, generator, masks=None):
        """`augment_batch` for images (and masks) alone; returns (x, masks)."""
        batch = self.augment_batch(Batch(x, masks), generator)
        return batch.images, batch.masks

    def standardize(self, x):
        return self.standardizer(x)

    def serve(self, batch, generator, augment, writer, indices):
        """A gathered `Batch` as served: augmented, standardized (images only), saved.

        Returns the Batch with its images in the data format and dtype.
        """
        if augment:
            batch = self.augment_batch(batch, generator)
        x = self.standardize(batch.images).to(self.dtype)
        if writer is not None:
            writer.submit(to_uint8_images(x), indices)
        x = from_nchw(x, self.data_format)
        return batch.replace(images=x.contiguous() if self.contiguous else x)
