"""Batches from image files: CPU workers read and decode, the device augments.

Worker processes read files and decode them (see `decoding`: PIL as Keras's
`load_img`, kornia-rs where it is identical) into uint8 arrays, or pass a JPEG's
bytes on for the device to decode. The main process moves each batch to the
device, decodes the JPEGs there (torchvision.io, one call per batch), and runs
the batch engine. CUDA never runs in a worker.
"""

import os
import stat
import warnings
from typing import NamedTuple

import numpy as np
import torch

from kaug._checks import invalid
from kaug._tensors import from_nchw
from kaug.batch import Batch
from kaug.data import decoding
from kaug.data.loader import LoaderBase


class _ImageFiles(torch.utils.data.Dataset):
    """Decodes one file (and its mask) per index; a failure is returned, not raised."""

    def __init__(self, paths, decode, mask_paths=None, decode_mask=None):
        self.paths = paths
        self.decode = decode
        self.mask_paths = mask_paths
        self.decode_mask = decode_mask

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            image = self.decode(read_regular_file(self.paths[index]))
            mask = None
            if self.mask_paths is not None:
                mask = self.decode_mask(read_regular_file(self.mask_paths[index]))
                if mask.shape != self.decode.target_size:
                    raise ValueError(f"its mask is {mask.shape}, not {self.decode.target_size}")
            return index, image, mask, None
        except Exception as error:  # reported (or raised) by the loader, with the path
            return index, None, None, f"{type(error).__name__}: {error}"


def read_regular_file(path):
    """A file's bytes; a FIFO, socket or device fails at once instead of blocking."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
        return file.read()


class _Files(NamedTuple):
    """One batch of files as the workers hand it over."""

    order: torch.Tensor  # every readable file's index, in the sampler's order
    decoded: torch.Tensor  # their indices, for `images`
    images: torch.Tensor | None  # (B, H, W, C), decoded on the CPU
    encoded: list  # (index, JPEG bytes as a uint8 tensor) left to the device
    failed: list  # (index, error)
    masks: dict  # index -> (H, W) label array, for loaders with masks


def _collate(items):
    decoded = [(index, out) for index, out, _, _ in items if isinstance(out, np.ndarray)]
    return _Files(
        order=torch.tensor([index for index, _, _, error in items if error is None]),
        decoded=torch.tensor([index for index, _ in decoded], dtype=torch.int64),
        images=torch.from_numpy(np.stack([out for _, out in decoded])) if decoded else None,
        encoded=[(index, out) for index, out, _, _ in items if isinstance(out, torch.Tensor)],
        failed=[(index, error) for index, _, _, error in items if error is not None],
        masks={index: mask for index, _, mask, _ in items if mask is not None},
    )


def _in_order(order, parts):
    """One batch from (indices, images) parts, in the sampler's `order`."""
    indices = torch.cat([part_indices for part_indices, _ in parts])
    dtype = torch.promote_types(*(x.dtype for _, x in parts))
    x = torch.cat([part.to(dtype) for _, part in parts])
    ascending, where = indices.sort()
    order = order[torch.isin(order, indices)]  # less any file the device fallback lost
    permutation = where[torch.searchsorted(ascending, order)]
    return order, x.index_select(0, permutation.to(x.device, non_blocking=True))


def file_decoder(decoder, device, color_mode, target_size, interpolation, keep_aspect_ratio):
    """The `FileDecoder` a loader's workers run for `decoder` ("auto", "pil",
    "torchvision") on `device`."""
    on_device = decoder == "torchvision" or (decoder == "auto" and device.type == "cuda")
    if on_device and decoding.torchvision_io() is None:
        if decoder == "torchvision":
            raise invalid(
                "decoder",
                decoder,
                "needs torchvision.io, which is missing, broken, or would be imported after "
                "TensorFlow (Keras's tensorflow backend; that import aborts the process)",
            )
        on_device = False  # "auto": decode on the CPU instead
    return decoding.FileDecoder(
        color_mode, target_size, interpolation, keep_aspect_ratio,
        fast=decoder != "pil", jpeg_on_device=on_device,
    )  # fmt: skip


class _EpochOrder(torch.utils.data.Sampler):
    """A loader's sample indices, in this epoch's order, minus bad files."""

    def __init__(self, loader):
        self.loader = loader
        self.skip = set()

    def __len__(self):
        return self.loader.samples_per_rank

    def __iter__(self):
        return (int(i) for i in self.loader.epoch_order() if int(i) not in self.skip)


def default_workers(samples, batch_size, target_size, cpus=None):
    """Decoding processes that pay off: workers win when decoding an image outweighs
    handing batches between processes, and when cores are left for them beside the
    main process. Measured on 2 cores: 28x28 PNGs, 12,500 images/s decoded in the
    main process against 7,000/s with 2 workers; 224x224 JPEGs, 852/s with 2
    workers against 747/s without.
    """
    cpus = cpus or os.cpu_count() or 1
    if samples < 4 * batch_size or cpus < 2:
        return 0
    small = target_size[0] * target_size[1] < 64 * 64
    if small and cpus < 8:
        return 0
    return min(4, cpus)


def _host_copy(values):
    """`values` as a writable numpy array of their own: pandas 3 hands out read-only
    column arrays (copy on write), which torch warns about and must not share."""
    return np.array(values)


def _on_device(values, device):
    """Targets as a tensor on `device`; integers as int64 (one_hot and indexing want it)."""
    tensor = torch.as_tensor(_host_copy(values), device=device)
    if not tensor.is_floating_point() and tensor.dtype != torch.bool:
        tensor = tensor.long()
    return tensor


class FileLoader(LoaderBase):
    """Batches of image files, decoded by CPU workers, augmented on the device.

    Returned by `ImageDataGenerator.flow_from_directory` and `flow_from_dataframe`;
    yields `x`, `(x, y)` or `(x, y, sample_weight)` like Keras's iterators: numpy
    arrays when iterated (`output`, see `LoaderBase`), tensors on the generator's
    device from `epoch()` and to `model.fit`. Keras's attributes are here: `filenames`,
    `filepaths`, `classes`, `labels`, `class_indices`, `num_classes`, `samples`,
    `image_shape`, `sample_weight`.

    An unreadable file never stops an epoch by surprise: with `on_error="skip"`
    it is left out of its batch and of later epochs, and the epoch ends with one
    warning listing every such file; with `on_error="raise"` the first one raises
    a ValueError naming it.
    """

    def __init__(
        self,
        pipeline,
        filepaths,
        targets,
        class_mode,
        target_size,
        color_mode,
        batch_size,
        shuffle,
        seed,
        interpolation,
        keep_aspect_ratio,
        num_classes=0,
        sample_weight=None,
        mask_paths=None,
        writer=None,
        num_workers=None,
        on_error="skip",
        decoder="auto",
        augment=True,
        rank=None,
        world_size=None,
        image_data_generator=None,
    ):
        """`pipeline`: the `kaug.pipeline.Pipeline` that makes batches. `targets`:
        per-file class indices (int), multi-hot rows (float), raw values, or a list
        of arrays ("multi_output"); None for class_mode None or "input".
        `image_data_generator` is kept as an attribute, as Keras's iterators keep it."""
        self._setup(pipeline, seed, shuffle, augment, writer, rank, world_size,
                    image_data_generator, len(filepaths))  # fmt: skip
        device = self._device
        self.filepaths = list(filepaths)
        self.samples = self.n
        self._failed = []  # (index, error) of this epoch's unreadable files
        self.class_mode = class_mode
        self.num_classes = num_classes
        self.target_size = tuple(target_size)
        channels = decoding.COLOR_MODES[color_mode]
        self.image_shape = (
            (*self.target_size, channels)
            if pipeline.data_format == "channels_last"
            else (channels, *self.target_size)
        )
        self.on_error = on_error
        if isinstance(targets, list):
            self._targets = [_on_device(t, device) for t in targets]
        else:
            self._targets = None if targets is None else _on_device(targets, device)
        self._sample_weight = (
            None
            if sample_weight is None
            else torch.as_tensor(_host_copy(sample_weight), dtype=pipeline.dtype, device=device)
        )
        self._sampler = _EpochOrder(self)
        if num_workers is None:
            num_workers = default_workers(self.samples, batch_size, self.target_size)
        self._decode = file_decoder(
            decoder, device, color_mode, self.target_size, interpolation, keep_aspect_ratio
        )
        self._mask_paths = None if mask_paths is None else list(mask_paths)
        mask_decoder = decoding.MaskDecoder(self.target_size, keep_aspect_ratio)
        super().__init__(
            _ImageFiles(self.filepaths, self._decode, self._mask_paths, mask_decoder),
            batch_size=batch_size,
            sampler=self._sampler,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    @property
    def _has_labels(self):
        labelled = ("categorical", "binary", "sparse", "raw")
        return self._mask_paths is None and self.class_mode in labelled

    def epoch(self):
        """One epoch, its files read and decoded by the worker processes."""
        batches = torch.utils.data.DataLoader.__iter__(self)
        for indices, x, masks in self._decoded(batches, self._failed):
            yield self._batch(indices, x, masks)
        self.on_epoch_end()

    def _serve(self, indices):
        """One batch of files (`loader[i]`, `next()`), decoded in this process."""
        kept = [int(i) for i in indices if int(i) not in self._sampler.skip]
        files = _collate([self.dataset[i] for i in kept]) if kept else None
        parts = list(self._decoded([files], self._failed)) if kept else []
        if not parts:
            raise ValueError(
                "Every file of this batch is unreadable (see the warning listing them). "
                f"Received: files={[self.filepaths[int(i)] for i in indices]}"
            )
        return self._batch(*parts[0])

    def _end_epoch(self):
        super()._end_epoch()
        failed, self._failed = self._failed, []
        self._report(failed)

    def raw_batches(self):
        """This rank's images, decoded, unaugmented: (B, C, H, W) uint8 batches, for `fit`."""
        shard = list(range(self.samples))[self.rank :: self.world_size]
        files = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=shard,
            num_workers=self.num_workers, collate_fn=_collate,
        )  # fmt: skip
        failed = []
        for _, x, _ in self._decoded(files, failed):
            yield x
        self._report(failed)

    def _decoded(self, batches, failed):
        """(indices, (B, C, H, W) images on the device, {index: mask}) of each batch
        of files, in the sampler's order; unreadable files raise or are collected in
        `failed`."""
        for files in batches:
            errors = list(files.failed)
            parts = []  # (indices, images) decoded on the host, then on the device
            if files.images is not None:
                images = files.images.to(self._device, non_blocking=True)
                parts.append((files.decoded, images.permute(0, 3, 1, 2)))
            if files.encoded:
                parts.append(self._decode_on_device(files.encoded, errors))
            if errors and self.on_error == "raise":
                index, error = errors[0]
                raise ValueError(f"Could not read image {self.filepaths[index]}: {error}")
            failed.extend(errors)
            parts = [(indices, x) for indices, x in parts if len(indices)]
            if len(parts) == 1:
                yield (*parts[0], files.masks)
            elif parts:
                yield (*_in_order(files.order, parts), files.masks)

    def _decode_on_device(self, encoded, errors):
        """(indices, (N, C, H, W) images) of the JPEGs left to the device. A batch
        the device cannot decode is decoded file by file on the host by PIL, which
        names each unreadable file's error (appended to `errors`)."""
        decode = self._decode
        settings = (decode.color_mode, decode.target_size, decode.interpolation,
                    decode.keep_aspect_ratio)  # fmt: skip
        try:
            images = decoding.decode_jpegs([data for _, data in encoded], *settings, self._device)
        except Exception:  # some file in the batch is not a JPEG torchvision reads
            images = None
        if images is not None:
            return torch.tensor([index for index, _ in encoded], dtype=torch.int64), images
        kept, arrays = [], []
        for index, data in encoded:
            try:
                arrays.append(decoding.decode_pil(data.numpy().tobytes(), *settings))
                kept.append(index)
            except Exception as error:  # reported with its path, as a worker's failure
                errors.append((index, f"{type(error).__name__}: {error}"))
        images = torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, 1, 1, 1)
        return torch.tensor(kept, dtype=torch.int64), images.to(self._device).permute(0, 3, 1, 2)

    def _report(self, failed):
        if failed:
            self._sampler.skip.update(index for index, _ in failed)
            listing = "\n".join(f"  {self.filepaths[i]} ({error})" for i, error in failed)
            warnings.warn(
                f"Skipped {len(failed)} unreadable image file(s); they are left out from "
                f"now on (pass on_error='raise' to stop instead):\n{listing}",
                stacklevel=3,
            )

    def _masks(self, indices, masks):
        """The batch's masks as (B, 1, H, W) on the device, or None."""
        if self._mask_paths is None:
            return None
        stacked = torch.from_numpy(np.stack([masks[int(i)] for i in indices]))
        return stacked.to(self._device, non_blocking=True)[:, None]

    def _batch(self, indices, x, masks=None):
        pipeline = self._pipeline
        masks = self._masks(indices, masks)
        indices = indices.to(self._device, non_blocking=True)
        labels = outputs = None
        if isinstance(self._targets, list):  # "multi_output": served as they are
            outputs = [t.index_select(0, indices) for t in self._targets]
        elif self._targets is not None:
            labels = self._targets.index_select(0, indices)
            if self.class_mode == "categorical" and labels.ndim == 1:
                labels = torch.nn.functional.one_hot(labels, self.num_classes)
            if self.class_mode != "raw":
                labels = labels.to(pipeline.dtype)  # Keras's labels are floats
        weights = None if self._sample_weight is None else self._sample_weight[indices]
        batch = Batch(x, masks=masks, labels=labels, sample_weight=weights)
        batch = pipeline.serve(batch, self._generator, self._augment, self._writer, indices)
        x = batch.images
        if masks is not None:  # the targets, in their decoded dtype: every label exact
            y = from_nchw(batch.masks, pipeline.data_format)
            return (x, y) if batch.sample_weight is None else (x, y, batch.sample_weight)
        if self.class_mode is None:
            return x
        y = x.clone() if self.class_mode == "input" else outputs or batch.labels
        return (x, y) if batch.sample_weight is None else (x, y, batch.sample_weight)
