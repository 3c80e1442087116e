"""Blur and noise kernels with a parameter per image."""

import torch


def gaussian_kernels(kernel_size, sigma):
    """(B, k) float64 1-D Gaussian kernels, one per sigma (torchvision's sampling: the
    pdf at the integer offsets, normalised)."""
    half = (kernel_size - 1) * 0.5
    # float64, and sigma at least 1e-30: a sigma of 1e-50 (0 once drawn in float32)
    # would make 0 / 0 at the centre; this way the kernel is the identity it should be.
    sigma = sigma.to(torch.float64).clamp(min=1e-30)
    offsets = torch.linspace(-half, half, kernel_size, dtype=sigma.dtype, device=sigma.device)
    pdf = torch.exp(-0.5 * (offsets / sigma.view(-1, 1)) ** 2)
    return pdf / pdf.sum(1, keepdim=True)


def gaussian_blur(x, kernel_size, sigma):
    """Blur each image with its own sigma ((B,) tensor), as torchvision's `gaussian_blur`
    (reflect padding, an odd square kernel), in two separable passes for the batch.
    A kernel wider than reflect padding allows (2 * the shorter side - 1) is cut to
    that width."""
    batch, channels, height, width = x.shape
    if batch == 0:
        return x
    kernel_size = min(kernel_size, 2 * min(height, width) - 1)
    kernels = gaussian_kernels(kernel_size, sigma.to(x.device)).to(x.dtype)
    weights = kernels.repeat_interleave(channels, 0)  # (B * C, k)
    pad = kernel_size // 2
    flat = x.reshape(1, batch * channels, height, width)
    flat = torch.nn.functional.pad(flat, (pad, pad, pad, pad), mode="reflect")
    groups = batch * channels
    flat = torch.nn.functional.conv2d(flat, weights.view(groups, 1, 1, -1), groups=groups)
    flat = torch.nn.functional.conv2d(flat, weights.view(groups, 1, -1, 1), groups=groups)
    return flat.view(batch, channels, height, width)


def erase(x, top, left, height, width, value):
    """Fill one rectangle per image ((B,) top, left, height, width; a value per image)."""
    rows = torch.arange(x.shape[2], device=x.device).view(1, -1, 1)
    cols = torch.arange(x.shape[3], device=x.device).view(1, 1, -1)
    inside = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + height).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + width).view(-1, 1, 1))
    )
    return torch.where(inside.unsqueeze(1), value.to(x.dtype).view(-1, 1, 1, 1), x)
