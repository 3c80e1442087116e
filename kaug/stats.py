"""Featurewise statistics and the ZCA matrix, streamed in float64 on the device.

`fit` feeds batches to a `StatsAccumulator`, which keeps only sums: per-channel
sums and sums of squares and, for ZCA, the feature sums and the D x D matrix
X^T X. The centred (and scaled) covariance follows from those in closed form, and
the whitening matrix from its eigendecomposition, without ever holding more than
one batch plus a D x D matrix. Two regularisations (`ZCA_REGULARIZATIONS`):

- "covariance" (kaug's default): `U diag(1 / sqrt(lambda + eps)) U^T` on the
  eigenvalues lambda of the covariance X^T X / n, as Keras 2.0 (and the tutorials
  of its time) computed it. Near-constant pixels (MNIST's borders) have tiny
  lambda and are damped, so whitened digits show their outlines.
- "keras3": `U diag(sqrt(n) / (s + eps)) U^T` on the singular values s of the
  N x D data (keras-preprocessing #332, 2021; Keras 3), of which the route
  through X^T X and `eigh` gives the same matrix. It lifts every direction the
  data vary in, however little, to unit variance: at the default eps = 1e-6 the
  near-constant pixels become noise (whitened MNIST values up to ~220, where
  the covariance form stays under ~16 on the first digits).
"""

import os

import numpy as np
import torch

from kaug import distributed
from kaug._checks import invalid

_F64 = torch.float64
ZCA_REGULARIZATIONS = ("covariance", "keras3")


def zca_memory_needed(features):
    """Bytes ZCA needs at its peak: about four D x D float64 matrices."""
    return 4 * features * features * 8


def free_memory(device):
    """Bytes free on `device` (for the CPU, the machine's available memory)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _int8_products_work(device):
    """Whether torch's int8 matrix product (exact int32 sums) runs on `device`."""
    try:
        probe = torch.ones((32, 32), dtype=torch.int8, device=device)
        return bool((torch._int_mm(probe, probe) == 32).all())
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class StatsAccumulator:
    """Running float64 sums over (B, C, H, W) batches.

    uint8 batches are summed exactly: X^T X as an int8 matrix product with int32
    sums (x = a + 128, corrected in float64), 7x faster than float64 on a CPU.

    Args:
        channels: C.
        features: D = C * H * W when the ZCA matrix is wanted, else None.
        device: where the sums live.
        scale: factor the data are multiplied by before their statistics are
            read (`rescale`, applied to the sums instead of to every value).
    """

    def __init__(self, channels, features, device, scale=1.0):
        self.images = 0
        self.pixels = 0
        self.scale = scale
        self._channel_sum = torch.zeros(channels, dtype=_F64, device=device)
        self._channel_sum_sq = torch.zeros(channels, dtype=_F64, device=device)
        self.features = features
        if features is not None:
            self._feature_sum = torch.zeros(features, dtype=_F64, device=device)
            # Only the blocks on and above the diagonal are accumulated (the matrix is
            # symmetric): about half the flops of X^T X, in blocks of >= 768 columns.
            self._gram_upper = torch.zeros(features, features, dtype=_F64, device=device)
            self._block = -(-features // max(1, features // 768))
            self._int8 = None  # probed on the first uint8 batch

    def update(self, x, flat=None):
        """Add a batch: `x` is (B, C, H, W); `flat` its (B, D) rows, for ZCA."""
        self.images += x.shape[0]
        self.pixels += x.shape[0] * x.shape[2] * x.shape[3]
        x64 = x.to(_F64)
        self._channel_sum += x64.sum((0, 2, 3))
        self._channel_sum_sq += x64.square().sum((0, 2, 3))
        if self.features is None:
            return
        if flat.dtype == torch.uint8 and self._int8 is None:
            self._int8 = _int8_products_work(flat.device)
        if flat.dtype == torch.uint8 and self._int8:
            self._add_uint8_rows(flat)
            return
        flat = flat.to(_F64)
        self._feature_sum += flat.sum(0)
        for start in range(0, self.features, self._block):
            rows = slice(start, start + self._block)
            self._gram_upper[rows, start:].addmm_(flat[:, rows].T, flat[:, start:])

    def _add_uint8_rows(self, flat):
        # |a| <= 128, so a chunk's int32 sums are exact up to 2**31 / 128**2 rows.
        for chunk in flat.split(65_536):
            shifted = (chunk.to(torch.int16) - 128).to(torch.int8)
            sums = shifted.sum(0, dtype=torch.int64).to(_F64)
            products = torch._int_mm(shifted.T.contiguous(), shifted).to(_F64)
            products += 128 * (sums[:, None] + sums[None, :]) + len(chunk) * 128.0**2
            self._gram_upper += torch.triu(products)
            self._feature_sum += sums + 128.0 * len(chunk)

    def all_reduce(self):
        """Sum everything over the ranks of an initialised process group (else nothing)."""
        counts = torch.tensor(
            [self.images, self.pixels], dtype=_F64, device=self._channel_sum.device
        )
        sums = [counts, self._channel_sum, self._channel_sum_sq]
        if self.features is not None:
            sums += [self._feature_sum, self._gram_upper]
        distributed.all_reduce_sum(*sums)
        self.images, self.pixels = int(counts[0]), int(counts[1])

    @property
    def channel_sum(self):
        return self._channel_sum * self.scale

    @property
    def channel_sum_sq(self):
        return self._channel_sum_sq * self.scale**2

    @property
    def feature_sum(self):
        return self._feature_sum * self.scale

    @property
    def gram(self):
        """X^T X of everything added, (D, D) float64."""
        upper = self._gram_upper * self.scale**2
        return torch.triu(upper) + torch.triu(upper, 1).T

    def mean(self):
        """(C,) float64 per-channel mean."""
        return self.channel_sum / self.pixels

    def std(self):
        """(C,) float64 per-channel population standard deviation."""
        mean = self.mean()
        return torch.sqrt(torch.clamp(self.channel_sum_sq / self.pixels - mean.square(), min=0))

    def zca_matrix(self, center, scale, epsilon, regularization="covariance"):
        """The ZCA whitening matrix of (x - center) / scale.

        Args:
            center: (D,) per-feature value subtracted first (zeros for none).
            scale: (D,) per-feature divisor applied next (ones for none).
            epsilon: Keras's `zca_epsilon`.
            regularization: "covariance" (Keras 2.0: epsilon added to the
                covariance's eigenvalues, every eigenvector kept) or "keras3"
                (Keras 3: epsilon added to the data's singular values, min(n, D)
                of them kept); see the module docstring.

        Returns:
            (D, D) float64 tensor W; whitened rows are `flat @ W`.
        """
        n = self.images
        center, scale = center.to(_F64), scale.to(_F64)
        total = self.feature_sum
        cross = torch.outer(total, center)
        gram = self.gram - cross - cross.T + n * torch.outer(center, center)
        gram = gram / torch.outer(scale, scale)
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        if regularization == "keras3":
            # The data's SVD has min(n, D) singular values; keep as many eigenpairs.
            kept = min(n, eigenvalues.shape[0])
            eigenvalues, eigenvectors = eigenvalues[-kept:], eigenvectors[:, -kept:]
        # eigh resolves eigenvalues only to about eps * D * max; below that they are
        # zero (MNIST's constant borders make many exactly zero), and their rounding
        # noise (even negative) would stand where the exact value is 0.
        floor = eigenvalues[-1] * eigenvalues.shape[0] * torch.finfo(_F64).eps
        eigenvalues = torch.where(eigenvalues > floor, eigenvalues, 0.0)
        if regularization == "keras3":
            weights = n**0.5 / (torch.sqrt(eigenvalues) + epsilon)
        else:  # the covariance X^T X / n has eigenvalues lambda = eigenvalue / n
            weights = torch.rsqrt(eigenvalues / n + epsilon)
        return (eigenvectors * weights) @ eigenvectors.T


STATISTICS = ("mean", "std", "zca_whitening_matrix")


def check_statistic(name, value, dtype):
    """A fitted statistic as a read-only numpy copy in `dtype`, or None.

    `mean` and `std` broadcast over one image (rank <= 3, Keras's (1, 1, C) or
    (C, 1, 1) after `fit`); `std` is non-negative; `zca_whitening_matrix` is a
    square (D, D) matrix. Every value is finite. Whether a shape suits the images
    is checked against each batch (`FittedStatistics.check_image`).
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise invalid(name, value, "must be a numeric array") from error
    if array.dtype.kind not in "biuf":
        raise invalid(name, f"array of dtype {array.dtype}", "must be a real numeric array")
    array = np.array(array, dtype=dtype)  # a copy: later changes to `value` do not leak in
    if not np.isfinite(array).all():
        raise invalid(name, f"array of shape {array.shape}", "must hold finite values only")
    if name == "zca_whitening_matrix":
        if array.ndim != 2 or array.shape[0] != array.shape[1] or array.size == 0:
            raise invalid(name, f"array of shape {array.shape}", "must be a square (D, D) matrix")
    elif array.ndim > 3 or array.size == 0:
        raise invalid(
            name, f"array of shape {array.shape}", "must broadcast over one image (rank <= 3)"
        )
    if name == "std" and (array < 0).any():
        raise invalid(name, f"array of shape {array.shape}", "must be non-negative")
    array.flags.writeable = False
    return array


class FittedStatistics:
    """`fit`'s results, replaced whole and never changed: a batch reads one snapshot.

    Holds `mean`, `std` and `zca_whitening_matrix` (read-only numpy arrays or
    None) and caches their device tensors, so a batch that started with one
    `fit` finishes with it even if another `fit` (or a hand-set value) lands
    meanwhile.
    """

    def __init__(self, mean=None, std=None, zca_whitening_matrix=None):
        self.mean, self.std, self.zca_whitening_matrix = mean, std, zca_whitening_matrix
        self._cache = {}

    def replace(self, **values):
        """A new snapshot with some statistics replaced (already checked)."""
        current = {name: getattr(self, name) for name in STATISTICS}
        return FittedStatistics(**{**current, **values})

    def cached(self, key, compute):
        """`compute()`, once per key for this snapshot."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def check_image(self, image_shape, data_format):
        """Refuse statistics that do not fit images of `image_shape` (in data_format)."""
        key = ("shape", tuple(image_shape), data_format)
        if key in self._cache:
            return
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                fits = np.broadcast_shapes(value.shape, image_shape) == tuple(image_shape)
            except ValueError:
                fits = False
            if not fits:
                raise invalid(
                    name,
                    f"array of shape {value.shape}",
                    f"must broadcast over images of shape {tuple(image_shape)} "
                    f"({data_format}) without changing it: refit, or set a matching one",
                )
        matrix = self.zca_whitening_matrix
        features = int(np.prod(image_shape))
        if matrix is not None and matrix.shape[0] != features:
            raise invalid(
                "zca_whitening_matrix",
                f"array of shape {matrix.shape}",
                f"must be ({features}, {features}) for images of shape {tuple(image_shape)}",
            )
        self._cache[key] = True

    def image_tensor(self, name, data_format, dtype, device):
        """`mean` or `std` as a tensor broadcasting over (C, H, W), cached per device."""

        def tensor():
            value = getattr(self, name)
            value = value.reshape((1,) * (3 - value.ndim) + value.shape)
            if data_format == "channels_last":
                value = value.transpose(2, 0, 1)
            return torch.as_tensor(np.array(value), dtype=dtype, device=device)

        return self.cached((name, data_format, dtype, device), tensor)

    def zca_tensor(self, device):
        """The whitening matrix on `device`, in float64: small epsilons make it
        ill-conditioned, and a float32 product loses up to 1e-3 to summation order.
        (`np.array` copies: the snapshot's own array stays read-only.)"""
        return self.cached(
            ("zca", device),
            lambda: torch.as_tensor(np.array(self.zca_whitening_matrix), dtype=_F64, device=device),
        )
