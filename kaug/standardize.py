"""Keras's `standardize` on whole (B, C, H, W) batches; no keras import.

In Keras's order: preprocessing_function, rescale, samplewise center and std,
featurewise center and std (folded into one per-channel affine), ZCA (one
float64 matmul). The fitted statistics are one `FittedStatistics` snapshot, read
once per batch, so a batch never mixes two fits.
"""

import warnings

import numpy as np
import torch

from kaug._checks import invalid
from kaug._tensors import as_tensor, from_nchw, to_nchw, to_numpy
from kaug.stats import FittedStatistics

FLAGS = (
    "featurewise_center",
    "samplewise_center",
    "featurewise_std_normalization",
    "samplewise_std_normalization",
    "zca_whitening",
)


def warn_unfitted(argument):
    warnings.warn(
        f"This ImageDataGenerator specifies `{argument}`, but it hasn't been fit on "
        "any training data. Fit it first by calling `.fit(numpy_data)`.",
        stacklevel=4,
    )


def image_shape(chw, data_format):
    """A (C, H, W) shape in `data_format`."""
    return tuple(chw) if data_format == "channels_first" else (chw[1], chw[2], chw[0])


class Standardizer:
    """The standardization settings of a generator, and their application to batches.

    Attributes are the live settings (the ImageDataGenerator keeps them here):
    the five Keras flags, `zca_epsilon`, `zca_regularization`, `rescale`, `preprocessing_function`,
    `data_format`, `dtype` (numpy name), `device`, and `fitted` (the snapshot).
    """

    def __init__(self):
        for flag in FLAGS:
            setattr(self, flag, False)
        self.zca_epsilon = 1e-6
        self.zca_regularization = "covariance"
        self.rescale = None
        self.preprocessing_function = None
        self.data_format = "channels_last"
        self.dtype = "float32"
        self.device = torch.device("cpu")
        self.fitted = FittedStatistics()

    @property
    def statistics_dtype(self):
        """Statistics keep at least float32: a float16 mean of large data would be inf."""
        return "float64" if self.dtype == "float64" else "float32"

    @property
    def compute_dtype(self):
        return torch.float64 if self.dtype == "float64" else torch.float32

    def __call__(self, x):
        """Keras's `standardize`, per image, on a batch; never modifies `x`."""
        fitted = self.fitted
        featurewise = self.featurewise_center or self.featurewise_std_normalization
        if featurewise or self.zca_whitening:
            fitted.check_image(image_shape(x.shape[1:], self.data_format), self.data_format)
        x = x.to(self.compute_dtype)
        if self.preprocessing_function is not None:
            x = self._preprocess(x)
        if self.rescale:
            x = x * self.rescale
        if self.samplewise_center:
            x = x - x.mean((1, 2, 3), keepdim=True)
        if self.samplewise_std_normalization:
            x = x / (x.std((1, 2, 3), correction=0, keepdim=True) + 1e-6)
        if featurewise:
            scale, shift = self._featurewise_affine(fitted)
            if scale is not None:
                x = x * scale
            if shift is not None:
                x = x + shift
        if self.zca_whitening:
            if fitted.zca_whitening_matrix is None:
                warn_unfitted("zca_whitening")
            else:
                matrix = fitted.zca_tensor(self.device)
                image = from_nchw(x, self.data_format)
                flat = image.reshape(x.shape[0], -1).to(torch.float64)
                whitened = (flat @ matrix).to(x.dtype).reshape(image.shape)
                x = to_nchw(whitened, self.data_format)
        return x

    def _featurewise_affine(self, fitted):
        """(scale, shift) so that featurewise center + std is `x * scale + shift`."""
        center, normalize = self.featurewise_center, self.featurewise_std_normalization
        if center and fitted.mean is None:
            warn_unfitted("featurewise_center")
        if normalize and fitted.std is None:
            warn_unfitted("featurewise_std_normalization")
        data_format, dtype, device = self.data_format, self.compute_dtype, self.device

        def affine():
            scale = shift = None
            if center and fitted.mean is not None:
                shift = -fitted.image_tensor("mean", data_format, dtype, device)
            if normalize and fitted.std is not None:
                scale = 1.0 / (fitted.image_tensor("std", data_format, dtype, device) + 1e-6)
                shift = None if shift is None else shift * scale
            return scale, shift

        return fitted.cached(("affine", center, normalize, data_format, dtype, device), affine)

    def _preprocess(self, x):
        """Run the user's per-image numpy function, as Keras does (host round trip).

        Each call gets its own copy of its image: functions that work in place
        (Keras applications' `preprocess_input`) touch nothing else.
        """
        images = to_numpy(from_nchw(x, self.data_format)).astype(self.dtype, copy=False)
        if len(images) == 0:
            return x
        outputs = [np.asarray(self.preprocessing_function(image.copy())) for image in images]
        if any(out.shape != images.shape[1:] for out in outputs):
            shapes = sorted({out.shape for out in outputs})
            raise invalid(
                "preprocessing_function",
                self.preprocessing_function,
                f"must return an image of its input's shape {images.shape[1:]}; returned {shapes}",
            )
        out = as_tensor(np.stack(outputs), self.device, "preprocessing_function's output")
        return to_nchw(out, self.data_format).to(self.compute_dtype)
