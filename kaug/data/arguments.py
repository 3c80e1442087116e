"""Keras's `flow*` arguments: the checks they share, and the validation split.

Keras reserves the first `validation_split` share of the data (of each class's
files, for folders) for `subset="validation"`; the rest is `"training"`.
"""

import warnings

import numpy as np
import torch

from kaug._checks import check_choice, check_int, check_rank, invalid, shape_of
from kaug.data.decoding import COLOR_MODES, DECODERS
from kaug.data.files import check_interpolation
from kaug.data.sources import source_of
from kaug.inputs import check_image_shape, per_image, spatial, warn_channels

SUBSETS = ("training", "validation")
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)


def check_subset(subset, validation_split):
    check_choice("subset", subset, SUBSETS)
    if not validation_split:
        raise invalid(
            "subset", subset, "needs an ImageDataGenerator created with `validation_split`"
        )


def split_arrays(arrays, y, subset, validation_split, ignore_class_split):
    """`arrays` (a tuple; None entries stay None) cut to `subset`; `y` (the labels,
    or None) must hold the same classes on both sides unless `ignore_class_split`."""
    if subset is None:
        if validation_split:
            warnings.warn(
                "This ImageDataGenerator has a `validation_split` but `flow` was called "
                "without `subset`: it serves all the data, validation part included.",
                stacklevel=4,
            )
        return arrays
    check_subset(subset, validation_split)
    split = int(len(arrays[0]) * validation_split)
    if y is not None and not ignore_class_split:
        labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if not np.array_equal(np.unique(labels[:split]), np.unique(labels[split:])):
            raise ValueError(
                "Training and validation subsets have different number of classes after "
                "the split. If your numpy arrays are sorted by the label, you might want "
                "to shuffle them (or pass ignore_class_split=True). "
                f"Received: subset={subset!r}, validation_split={validation_split}"
            )
    part = slice(None, split) if subset == "validation" else slice(split, None)
    return tuple(None if a is None else a[part] for a in arrays)


def file_split(subset, validation_split):
    """Keras's (start, stop) fractions of each class's files for `subset`, or None."""
    if subset is None:
        return None
    check_subset(subset, validation_split)
    return (0, validation_split) if subset == "validation" else (validation_split, 1)


def check_file_arguments(color_mode, on_error, interpolation, target_size, batch_size,
                         num_workers, decoder):  # fmt: skip
    """The checks `flow_from_directory` and `flow_from_dataframe` share."""
    check_choice("color_mode", color_mode, tuple(COLOR_MODES))
    check_choice("on_error", on_error, ("skip", "raise"))
    check_choice("decoder", decoder, DECODERS)
    check_interpolation(interpolation)
    if (
        not isinstance(target_size, (tuple, list))
        or len(target_size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in target_size)
    ):
        raise invalid("target_size", target_size, "must be a (height, width) pair of positive ints")
    check_int("batch_size", batch_size, minimum=1)
    check_int("num_workers", num_workers, allow_none=True)


def exact_labels(masks):
    """Masks in a dtype torch holds exactly. uint64 (which torch would widen to
    float64, rounding labels above 2**53) becomes int64, every label below 2**63
    kept; a label of 2**63 or more is refused. (uint16 and uint32 widen exactly.)"""
    uint64 = getattr(torch, "uint64", None)
    if isinstance(masks, torch.Tensor) and masks.dtype == uint64:
        masks = masks.cpu().numpy()
    if not isinstance(masks, np.ndarray) or masks.dtype != np.uint64:
        return masks
    if masks.size and masks.max() >= 2**63:
        raise invalid(
            "masks", f"uint64 labels up to {masks.max()}", "must hold labels below 2**63"
        )
    return masks.astype(np.int64)


def flow_arrays(x, y, sample_weight, masks, subset, validation_split, ignore_class_split,
                data_format):  # fmt: skip
    """`flow`'s arrays checked and cut to `subset`: (x, y, sample_weight, extras), `x` a
    `Source` (never read here: its shape and dtype are checked, its rows are read a batch
    at a time by the loader), the others CPU tensors; `y` the masks when `masks` is given,
    extras Keras's `x=(images, misc)`. O(1) in the size of `x`."""
    if masks is not None:
        if y is not None:
            raise invalid("masks", "an array", "replaces `y`: pass one or the other")
        y = masks = exact_labels(masks)
        masks_shape, x_shape = shape_of(masks), shape_of(x)
        if (
            masks_shape is None
            or len(masks_shape) not in (3, 4)
            or masks_shape[:1] != (x_shape or ())[:1]
        ):
            raise ValueError(
                "`masks` must be (N, H, W) or (N, H, W, K) arrays, one per image. "
                f"Received: masks.shape={masks_shape}"
            )
    extras = ()
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            kind = f"{type(x).__name__} of length {len(x)}"
            raise invalid("x", kind, "must be an array or a tuple (images, misc)")
        x, misc = x
        extras = tuple(misc) if isinstance(misc, list) else (misc,)
    check_rank("x", x, 4, "a batch of images")
    x = source_of(x, "x")
    y, sample_weight, *extras = (
        per_image(name, value, len(x))
        for name, value in [
            ("masks" if masks is not None else "y", y),
            ("sample_weight", sample_weight),
            *[(f"x[1][{i}]", e) for i, e in enumerate(extras)],
        ]
    )
    labels = None if masks is not None else y  # masks are no classes to balance
    x, y, sample_weight, *extras = split_arrays(
        (x, y, sample_weight, *extras), labels, subset, validation_split, ignore_class_split
    )
    if len(x) == 0:
        part = "" if subset is None else f" (its {subset!r} subset is empty)"
        raise invalid("x", f"array of shape {tuple(x.shape)}{part}", "must hold an image")
    check_image_shape(x.shape, data_format)
    if sample_weight is not None and not bool(torch.isfinite(sample_weight).all()):
        raise invalid("sample_weight", "weights with NaN or inf", "must be finite")
    warn_channels(x, data_format)
    if masks is not None and spatial(y, data_format) != spatial(x, data_format):
        raise ValueError(
            "`masks` must have the height and width of the images. "
            f"Received: masks.shape={tuple(y.shape)}, x.shape={tuple(x.shape)}"
        )
    return x, y, sample_weight, tuple(extras)
