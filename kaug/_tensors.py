"""The API boundary: device choice and numpy/torch, NHWC/NCHW conversion.

Inside kaug every batch is a (B, C, H, W) tensor on the generator's device; users
see their own array kind and data format. Conversions never copy more than the
device transfer needs and never write to the caller's array.
"""

import numpy as np
import torch

from kaug._checks import invalid


def resolve_device(device=None):
    """`device` as a torch.device; None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise invalid(
            "device", device, "must name a torch device such as 'cpu' or 'cuda'"
        ) from error


def as_tensor(x, device):
    """A tensor view of `x` (numpy array, tensor or nested lists) on `device`."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    array = np.asarray(x)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise invalid("x", type(x).__name__, "must be a numeric array")
    if array.dtype.byteorder == ">" or not array.flags.writeable:
        array = array.astype(array.dtype.newbyteorder("="), copy=True)
    return torch.as_tensor(array, device=device)


def to_nchw(x, data_format):
    """(B, H, W, C) -> (B, C, H, W) as a view (channels_last memory format)."""
    return x.permute(0, 3, 1, 2) if data_format == "channels_last" else x


def from_nchw(x, data_format):
    return x.permute(0, 2, 3, 1) if data_format == "channels_last" else x


def to_numpy(x):
    return np.ascontiguousarray(x.detach().cpu().numpy())
