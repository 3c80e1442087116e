"""Featurewise statistics and the ZCA matrix, streamed in float64 on the device.

`fit` feeds batches to a `StatsAccumulator`, which keeps only sums: per-channel
sums and sums of squares and, for ZCA, the feature sums and the D x D matrix
X^T X. The centred (and scaled) covariance follows from those in closed form, and
the whitening matrix from its eigendecomposition: the route through X^T X and
`eigh` gives Keras's `U diag(sqrt(n) / (s + eps)) U^T` (its SVD of the N x D data)
without ever holding more than one batch plus a D x D matrix.
"""

import torch

_F64 = torch.float64

# ZCA holds a few D x D float64 matrices; above this many features it is refused.
MAX_ZCA_FEATURES = 12_288


class StatsAccumulator:
    """Running float64 sums over (B, C, H, W) batches.

    Args:
        channels: C.
        features: D = C * H * W when the ZCA matrix is wanted, else None.
        device: where the sums live.
    """

    def __init__(self, channels, features, device):
        self.images = 0
        self.pixels = 0
        self.channel_sum = torch.zeros(channels, dtype=_F64, device=device)
        self.channel_sum_sq = torch.zeros(channels, dtype=_F64, device=device)
        self.features = features
        if features is not None:
            self.feature_sum = torch.zeros(features, dtype=_F64, device=device)
            self.gram = torch.zeros(features, features, dtype=_F64, device=device)

    def update(self, x, flat=None):
        """Add a batch: `x` is (B, C, H, W); `flat` its (B, D) rows for ZCA."""
        x64 = x.to(_F64)
        self.images += x.shape[0]
        self.pixels += x.shape[0] * x.shape[2] * x.shape[3]
        self.channel_sum += x64.sum((0, 2, 3))
        self.channel_sum_sq += x64.square().sum((0, 2, 3))
        if self.features is not None:
            flat64 = flat.to(_F64)
            self.feature_sum += flat64.sum(0)
            self.gram.addmm_(flat64.T, flat64)

    def mean(self):
        """(C,) float64 per-channel mean."""
        return self.channel_sum / self.pixels

    def std(self):
        """(C,) float64 per-channel population standard deviation."""
        mean = self.mean()
        return torch.sqrt(torch.clamp(self.channel_sum_sq / self.pixels - mean.square(), min=0))

    def zca_matrix(self, center, scale, epsilon):
        """Keras's ZCA whitening matrix of (x - center) / scale.

        Args:
            center: (D,) per-feature value subtracted first (zeros for none).
            scale: (D,) per-feature divisor applied next (ones for none).
            epsilon: Keras's `zca_epsilon`, added to the singular values.

        Returns:
            (D, D) float64 tensor W; whitened rows are `flat @ W`.
        """
        n = self.images
        center, scale = center.to(_F64), scale.to(_F64)
        total = self.feature_sum
        cross = torch.outer(total, center)
        covariance = self.gram - cross - cross.T + n * torch.outer(center, center)
        covariance = covariance / torch.outer(scale, scale)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        # The data's SVD has min(n, D) singular values; keep as many eigenpairs.
        kept = min(n, eigenvalues.shape[0])
        eigenvalues = eigenvalues[-kept:]
        # eigh resolves eigenvalues only to about eps * D * max; below that they are
        # zero (MNIST's constant borders make many exactly zero), and taking the
        # square root of their rounding noise would put 1e-5 where the SVD has 0.
        floor = eigenvalues[-1] * eigenvalues.shape[0] * torch.finfo(_F64).eps
        singular = torch.sqrt(torch.where(eigenvalues > floor, eigenvalues, 0.0))
        basis = eigenvectors[:, -kept:]
        return (basis * (n**0.5 / (singular + epsilon))) @ basis.T
