"""The API boundary: device choice and numpy/torch, NHWC/NCHW conversion.

Inside kaug every batch is a (B, C, H, W) tensor on the generator's device; users
see their own array kind and data format. Conversions never copy more than the
device transfer needs and never write to the caller's array.
"""

import numpy as np
import torch

from kaug._checks import invalid

DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
# numpy dtypes most torch kernels lack, and the torch-friendly dtype that holds them.
_WIDENED = {
    np.dtype("uint16"): np.int32,
    np.dtype("uint32"): np.int64,
    np.dtype("uint64"): np.float64,
}


def resolve_device(device=None):
    """`device` as a usable torch.device; None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = "must name an available torch device such as 'cpu' or 'cuda'"
    if not isinstance(device, (str, torch.device)):
        raise invalid("device", device, expected)
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise invalid("device", device, expected) from error
    if resolved.type not in DEVICE_TYPES:
        raise invalid("device", device, expected)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise invalid("device", device, "names CUDA, which is not available on this machine")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise invalid(
            "device", device, f"names a GPU this machine lacks ({torch.cuda.device_count()} found)"
        )
    try:
        torch.empty(1, device=resolved)
    except (RuntimeError, AssertionError) as error:
        raise invalid("device", device, f"{expected} ({error})") from error
    return resolved


_TORCH_WIDENED = {
    getattr(torch, name): wide
    for name, wide in (("uint16", torch.int32), ("uint32", torch.int64), ("uint64", torch.float64))
    if hasattr(torch, name)
}
_TORCH_REAL = (
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    *_TORCH_WIDENED,
)


def _refuse_dtype(name, x, dtype):
    raise invalid(name, f"{type(x).__name__} of dtype {dtype}", "must be a real numeric array")


def check_dtype(name, x, dtype):
    """`dtype` (numpy's or torch's) if it is a real numeric one; else the Keras-worded error."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _TORCH_REAL:
            _refuse_dtype(name, x, dtype)
        return dtype
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        _refuse_dtype(name, x, dtype)
    if dtype.kind not in "biuf":
        _refuse_dtype(name, x, dtype)
    return dtype


def host_dtype(dtype):
    """The numpy dtype batches of numpy `dtype` are converted to: native byte order,
    unsigned types torch lacks widened."""
    return np.dtype(_WIDENED.get(dtype, dtype.newbyteorder("=")))


def served_dtype(dtype):
    """The torch dtype kaug serves data of `dtype` (numpy's or torch's) in."""
    if isinstance(dtype, torch.dtype):
        return _TORCH_WIDENED.get(dtype, dtype)
    return torch.from_numpy(np.empty(0, host_dtype(dtype))).dtype


def as_tensor(x, device, name="x", copy=False):
    """`x` (numpy array, tensor or nested lists) as a tensor on `device`.

    Shares memory with `x` where it can, unless `copy`: then the result never
    aliases `x`, so nothing done to it can reach the caller's array. Negative
    strides, foreign byte order, read-only arrays and dtypes torch lacks are
    copied into a form torch takes.
    """
    if isinstance(x, torch.Tensor):
        if x.dtype not in _TORCH_REAL:
            _refuse_dtype(name, x, x.dtype)
        tensor = x.to(device, dtype=_TORCH_WIDENED.get(x.dtype, x.dtype))
        if copy and tensor.device == x.device and tensor.data_ptr() == x.data_ptr():
            tensor = tensor.clone()
        return tensor
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:  # ragged nested lists and the like
        raise invalid(name, type(x).__name__, "must be a numeric array") from error
    if array.dtype.kind not in "biuf":
        _refuse_dtype(name, x, array.dtype)
    copied = (
        array.dtype in _WIDENED
        or array.dtype.byteorder == ">"
        or not array.flags.writeable
        or any(stride < 0 for stride in array.strides)
    )
    if copied:
        dtype = _WIDENED.get(array.dtype, array.dtype.newbyteorder("="))
        array = np.array(array, dtype=dtype, order="C")
    tensor = torch.as_tensor(array, device=device)
    if copy and not copied and tensor.device.type == "cpu":
        tensor = tensor.clone()
    return tensor


def to_nchw(x, data_format):
    """(B, H, W, C) -> (B, C, H, W) as a view (channels_last memory format)."""
    return x.permute(0, 3, 1, 2) if data_format == "channels_last" else x


def from_nchw(x, data_format):
    return x.permute(0, 2, 3, 1) if data_format == "channels_last" else x


def to_numpy(x):
    return np.ascontiguousarray(x.detach().cpu().numpy())
