"""User arrays in and out: the checks every entry point shares, copies, layout.

Images enter as (B, C, H, W) tensors on the device, copied, so nothing kaug or a
user function does can reach the caller's array; they leave in the caller's
layout and kind (numpy in, numpy out; tensors stay on the device).
"""

import warnings

import numpy as np
import torch

from kaug._checks import check_rank, invalid, shape_of
from kaug._tensors import as_tensor, from_nchw, to_nchw, to_numpy


def channel_axis(data_format):
    """The channel axis of a batch (rank 4) in `data_format`."""
    return 1 if data_format == "channels_first" else 3


def to_batch(x, device, data_format, rank=4, what="a batch of images", copy=True):
    """A user array (one image for rank 3) as a checked (B, C, H, W) tensor on `device`;
    a copy unless `copy=False` (only where nothing runs on it in place)."""
    check_rank("x", x, rank, what)
    tensor = as_tensor(x, device, copy=copy)
    batch = to_nchw(tensor[None] if rank == 3 else tensor, data_format)
    check_images(batch, x, data_format)
    return batch


def check_images(batch, x, data_format, name="x"):
    """Images need a pixel and a channel, and finite values (NaN would spread to every
    statistic and through the warp)."""
    check_image_shape(tuple(x.shape), data_format, name)
    check_finite(batch, name)


def check_image_shape(shape, data_format, name="x"):
    """A batch of images of `shape` needs at least one channel, row and column."""
    if min(shape[1:]) < 1:
        raise ValueError(
            f"`{name}` must hold images of at least one channel, row and column "
            f"({data_format}). Received: {name}.shape={tuple(shape)}"
        )


# The rows a non-finite error names at most.
NAMED_ROWS = 10


def check_finite(batch, name="x", rows=None, where=None):
    """Refuse a floating batch with NaN or inf, counting them; `rows` (the batch's row
    numbers in `name`) and `where` (e.g. "read for batch 3 of this epoch") say where."""
    if not batch.is_floating_point() or bool(torch.isfinite(batch).all()):
        return
    nan = int(torch.isnan(batch).sum())
    inf = int(torch.isinf(batch).sum())
    found = f"data with {nan} NaN and {inf} infinite values"
    if rows is not None:
        bad = (~torch.isfinite(batch.reshape(len(batch), -1)).all(1)).nonzero()[:, 0]
        named = [int(rows[i]) for i in bad[:NAMED_ROWS]]
        more = f" and {len(bad) - NAMED_ROWS} more" if len(bad) > NAMED_ROWS else ""
        found += f" in rows {named}{more} of {name}"
    if where:
        found += f", {where}"
    raise invalid(name, found, "must hold finite values only")


def from_batch(batch, like, data_format, dtype, rank=4):
    """A (B, C, H, W) result in the caller's layout, rank and kind (numpy for numpy)."""
    out = from_nchw(batch, data_format).to(dtype)
    out = out[0] if rank == 3 else out
    return out if isinstance(like, torch.Tensor) else to_numpy(out)


def per_image(name, value, count):
    """`value` as a CPU tensor with one entry per image (None stays None)."""
    if value is None:
        return None
    shape = shape_of(value)
    if not shape or shape[0] != count:
        raise ValueError(
            f"`{name}` must be an array with one entry per image in `x`. "
            f"Received: {name}.shape={shape}, len(x)={count}"
        )
    return as_tensor(value, "cpu", name)


def spatial(array, data_format):
    """(height, width) of a batch of images, or of (N, H, W) masks."""
    if np.ndim(array) == 3:
        return tuple(array.shape[1:3])
    axis = channel_axis(data_format)
    return tuple(array.shape[2:4]) if axis == 1 else tuple(array.shape[1:3])


def warn_channels(x, data_format, stacklevel=4):
    """Keras's warning for a batch whose channel axis does not hold 1, 3 or 4 channels."""
    axis = channel_axis(data_format)
    channels = x.shape[axis]
    if channels not in (1, 3, 4):
        warnings.warn(
            "Expected input to be images (as Numpy array) following the data format "
            f'convention "{data_format}" (channels on axis {axis}), '
            f"i.e. expected either 1, 3 or 4 channels on axis {axis}. "
            f"However, it was passed an array with shape {tuple(x.shape)} "
            f"({channels} channels).",
            stacklevel=stacklevel,
        )
