"""`fit`: featurewise statistics and the ZCA matrix of sample data, on the device.

Sums are accumulated in float64 batch by batch (so the data never need to fit in
memory), all-reduced across ranks, and turned into one `FittedStatistics`
snapshot in Keras's shapes; no keras import except for the progress bar.
"""

import numpy as np
import torch

from kaug import distributed
from kaug._checks import check_int, check_rank, invalid
from kaug._tensors import from_nchw, to_numpy
from kaug.inputs import to_batch, warn_channels
from kaug.standardize import image_shape
from kaug.stats import (
    FittedStatistics,
    StatsAccumulator,
    check_statistic,
    free_memory,
    zca_memory_needed,
)

CHUNK = 4096  # images per upload from an array


def is_array(x):
    return isinstance(x, (np.ndarray, torch.Tensor, list))


def fit_statistics(pipeline, x, augment, rounds, generator, shard, rank, world_size):
    """The `FittedStatistics` of `x` under `pipeline`'s settings (see
    `ImageDataGenerator.fit` for the arguments); the pipeline is not changed."""
    check_int("rounds", rounds, minimum=1)
    rank, world_size = distributed.process_group(rank, world_size)
    if is_array(x):
        check_rank("x", x, 4, "a batch of images")
        data = x if isinstance(x, torch.Tensor) else np.asarray(x)
        if len(data) == 0:
            raise invalid(
                "x", f"empty array of shape {tuple(data.shape)}", "must hold at least one image"
            )
        if world_size > 1 and shard is not False:
            data = data[rank::world_size]
        passes = [data] * (rounds if augment else 1)
        steps = len(passes) * -(-len(data) // CHUNK)
    else:
        if isinstance(x, (str, bytes, dict)) or not hasattr(x, "__iter__"):
            raise invalid(
                "x", type(x).__name__, "must be an array of images or yield batches of them"
            )
        passes = [x] * (rounds if augment else 1)
        steps = len(passes) * len(x) if hasattr(x, "__len__") else None
    settings = pipeline.standardizer
    accumulator = None
    progress = _progress_bar(steps, rank)
    for source in passes:
        for batch in _batches(source, pipeline, copy=augment):
            if accumulator is None:
                accumulator = _accumulator(batch, settings, augment)
            elif tuple(batch.shape[1:]) != accumulator.shape:
                shape = image_shape(tuple(batch.shape[1:]), settings.data_format)
                raise invalid(
                    "x",
                    f"a batch of images of shape {shape}",
                    "must yield images of one shape; the first batch's were "
                    f"{image_shape(accumulator.shape, settings.data_format)}",
                )
            if augment:
                batch = batch.to(pipeline.compute_dtype)
                if settings.rescale:
                    batch = batch * settings.rescale
                batch, _ = pipeline.augment(batch, generator)
            flat = from_nchw(batch, settings.data_format).reshape(batch.shape[0], -1)
            accumulator.update(batch, flat if settings.zca_whitening else None)
            if progress is not None:
                progress.add(1)
    if accumulator is None:
        raise invalid("x", type(x).__name__, "must yield at least one batch of images")
    accumulator.all_reduce()
    return _statistics(accumulator, settings)


def _batches(source, pipeline, copy):
    """(B, C, H, W) tensors on the device, in chunks, from any kind of sample data."""
    device, data_format = pipeline.device, pipeline.data_format
    if is_array(source):
        for start in range(0, len(source), CHUNK):
            yield to_batch(source[start : start + CHUNK], device, data_format, copy=copy)
    elif hasattr(source, "raw_batches"):
        yield from source.raw_batches()
    else:
        for item in source:
            item = item[0] if isinstance(item, (tuple, list)) else item
            check_rank("x", item, 4, "batches of images")
            yield to_batch(item, device, data_format, copy=copy)


def _accumulator(batch, settings, augment):
    """Sums for batches like `batch`; without augmentation `rescale` is applied to the
    sums at the end (it is linear), so raw uint8 data are summed exactly."""
    channels, features = batch.shape[1], int(np.prod(batch.shape[1:]))
    if channels not in (1, 3, 4):
        warn_channels(from_nchw(batch, settings.data_format), settings.data_format, 5)
    device = settings.device
    if settings.zca_whitening and zca_memory_needed(features) > 0.8 * free_memory(device):
        raise invalid(
            "x",
            f"images of {features} features",
            f"are too large for ZCA whitening: its {features} x {features} matrices need "
            f"{zca_memory_needed(features) / 2**30:.1f} GiB on {device}; fit on "
            "smaller (resized) images, or use featurewise_std_normalization instead",
        )
    accumulator = StatsAccumulator(
        channels,
        features if settings.zca_whitening else None,
        device,
        scale=1.0 if augment else (settings.rescale or 1.0),
    )
    accumulator.shape = tuple(batch.shape[1:])
    return accumulator


def _progress_bar(steps, rank):
    """Keras's progress bar for long passes (20 chunks or more), on rank 0."""
    if steps is None or steps < 20 or rank != 0:
        return None
    from keras.utils import Progbar

    return Progbar(steps, unit_name="chunk")


def _statistics(accumulator, settings):
    """The fitted statistics as Keras keeps them (numpy, (1, 1, C) or (C, 1, 1)), in
    at least float32 (a float16 mean of large data would be inf)."""
    if not (torch.isfinite(accumulator.channel_sum).all() and
            torch.isfinite(accumulator.channel_sum_sq).all()):  # fmt: skip
        raise invalid(
            "x",
            "data with NaN or infinite values (or too large to square in float64)",
            "must hold finite values only to be fit",
        )
    data_format = settings.data_format
    chw = accumulator.shape
    shape = (chw[0], 1, 1) if data_format == "channels_first" else (1, 1, chw[0])
    mean, std = accumulator.mean(), accumulator.std()
    fitted = {
        "mean": to_numpy(mean).reshape(shape) if settings.featurewise_center else None,
        "std": to_numpy(std).reshape(shape) if settings.featurewise_std_normalization else None,
        "zca_whitening_matrix": None,
    }
    if settings.zca_whitening:

        def per_feature(values):  # (C,) -> (D,), in the data_format's flat order
            image = values.view(1, -1, 1, 1).expand(1, -1, chw[1], chw[2])
            return from_nchw(image, data_format).reshape(-1)

        center = mean if settings.featurewise_center else torch.zeros_like(mean)
        scale = std + 1e-6 if settings.featurewise_std_normalization else torch.ones_like(std)
        matrix = accumulator.zca_matrix(
            per_feature(center), per_feature(scale), settings.zca_epsilon,
            settings.zca_regularization,
        )
        fitted["zca_whitening_matrix"] = to_numpy(matrix)
    dtype = settings.statistics_dtype
    return FittedStatistics(
        **{name: check_statistic(name, value, dtype) for name, value in fitted.items()}
    )
