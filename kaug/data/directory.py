"""Batches from image files: CPU workers decode, the device augments.

Worker processes read and decode files with PIL (Keras's `load_img`: the same
conversion, resize and crop) into uint8 arrays; the main process moves each
uint8 batch to the device and runs the batch engine there. CUDA never runs in
a worker.
"""

import os
import warnings

import numpy as np
import torch

from kaug import distributed
from kaug.data.files import load_image
from kaug.data.loaders import epoch_order, serve
from kaug.sampling import make_generator


class _ImageFiles(torch.utils.data.Dataset):
    """Decodes one file per index; a failure is returned, not raised, with its path."""

    def __init__(self, paths, decode):
        self.paths = paths
        self.decode = decode

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            return index, load_image(self.paths[index], **self.decode), None
        except Exception as error:  # reported (or raised) by the loader, with the path
            return index, None, f"{type(error).__name__}: {error}"


def _collate(items):
    """(indices, (B, H, W, C) images or None, [(index, error), ...]) for a batch."""
    good = [(index, image) for index, image, error in items if error is None]
    failed = [(index, error) for index, _, error in items if error is not None]
    indices = torch.tensor([index for index, _ in good], dtype=torch.int64)
    images = torch.from_numpy(np.stack([image for _, image in good])) if good else None
    return indices, images, failed


class _EpochOrder(torch.utils.data.Sampler):
    """This rank's sample indices, in a fresh seeded order each epoch, minus bad files."""

    def __init__(self, count, shuffle, seed, rank=0, world_size=1):
        self.count = count
        self.shuffle = shuffle
        self.generator = make_generator(torch.device("cpu"), seed)
        self.rank, self.world_size = rank, world_size
        self.skip = set()

    def __len__(self):
        return -(-self.count // self.world_size)

    def __iter__(self):
        order = epoch_order(self.count, self.shuffle, self.generator, self.rank, self.world_size)
        return (int(i) for i in order if int(i) not in self.skip)


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


def _on_device(values, device):
    """Targets as a tensor on `device`; integers as int64 (one_hot and indexing want it)."""
    tensor = torch.as_tensor(np.asarray(values), device=device)
    if not tensor.is_floating_point() and tensor.dtype != torch.bool:
        tensor = tensor.long()
    return tensor


class FileLoader(torch.utils.data.DataLoader):
    """Batches of image files, decoded by CPU workers, augmented on the device.

    Returned by `ImageDataGenerator.flow_from_directory` and `flow_from_dataframe`;
    yields `x`, `(x, y)` or `(x, y, sample_weight)` like Keras's iterators, as
    tensors on the generator's device. Keras's attributes are here: `filenames`,
    `filepaths`, `classes`, `labels`, `class_indices`, `num_classes`, `samples`,
    `image_shape`, `sample_weight`.

    An unreadable file never stops an epoch by surprise: with `on_error="skip"`
    it is left out of its batch and of later epochs, and the epoch ends with one
    warning listing every such file; with `on_error="raise"` the first one raises
    a ValueError naming it.
    """

    def __init__(
        self,
        image_data_generator,
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
        writer=None,
        num_workers=None,
        on_error="skip",
        augment=True,
        rank=None,
        world_size=None,
    ):
        """`targets`: per-file class indices (int), multi-hot rows (float), raw
        values, or a list of arrays ("multi_output"); None for class_mode None
        or "input"."""
        self.image_data_generator = engine = image_data_generator
        self.filepaths = list(filepaths)
        self.samples = self.n = len(self.filepaths)
        self.class_mode = class_mode
        self.num_classes = num_classes
        self.target_size = tuple(target_size)
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
        self.image_shape = (
            (*self.target_size, channels)
            if engine.data_format == "channels_last"
            else (channels, *self.target_size)
        )
        self.on_error = on_error
        self._augment = augment
        self._writer = writer
        self._device = device = engine.device
        self.rank, self.world_size = distributed.process_group(rank, world_size)
        seed = distributed.shared_seed(seed, self.world_size, shuffle)
        self._generator = make_generator(
            device, None if seed is None else seed + self.rank * 1_000_003
        )
        if isinstance(targets, list):
            self._targets = [_on_device(t, device) for t in targets]
        else:
            self._targets = None if targets is None else _on_device(targets, device)
        self._sample_weight = (
            None
            if sample_weight is None
            else torch.as_tensor(
                np.asarray(sample_weight), dtype=engine._torch_dtype, device=device
            )
        )
        self._order = _EpochOrder(self.samples, shuffle, seed, self.rank, self.world_size)
        if num_workers is None:
            num_workers = default_workers(self.samples, batch_size, self.target_size)
        decode = dict(color_mode=color_mode, target_size=self.target_size,
                      interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio)  # fmt: skip
        super().__init__(
            _ImageFiles(self.filepaths, decode),
            batch_size=batch_size,
            sampler=self._order,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def __iter__(self):
        failed = []
        for indices, images in self._decoded(super().__iter__(), failed):
            yield self._batch(indices, images)
        if self._writer is not None:
            self._writer.flush()
        self._report(failed)

    def raw_batches(self):
        """This rank's images, decoded, unaugmented: (B, C, H, W) uint8 batches, for `fit`."""
        shard = list(range(self.samples))[self.rank :: self.world_size]
        files = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=shard,
            num_workers=self.num_workers, collate_fn=_collate,
        )  # fmt: skip
        failed = []
        for _, images in self._decoded(files, failed):
            yield images.to(self._device).permute(0, 3, 1, 2)
        self._report(failed)

    def _decoded(self, batches, failed):
        """(indices, images) of decoded batches; failures raise or are collected."""
        for indices, images, errors in batches:
            if errors and self.on_error == "raise":
                index, error = errors[0]
                raise ValueError(f"Could not read image {self.filepaths[index]}: {error}")
            failed.extend(errors)
            if images is not None:
                yield indices, images

    def _report(self, failed):
        if failed:
            self._order.skip.update(index for index, _ in failed)
            listing = "\n".join(f"  {self.filepaths[i]} ({error})" for i, error in failed)
            warnings.warn(
                f"Skipped {len(failed)} unreadable image file(s); they are left out from "
                f"now on (pass on_error='raise' to stop instead):\n{listing}",
                stacklevel=3,
            )

    def _batch(self, indices, images):
        engine = self.image_data_generator
        indices = indices.to(self._device, non_blocking=True)
        x = images.to(self._device, non_blocking=True).permute(0, 3, 1, 2)
        x, _ = serve(engine, x, self._generator, self._augment, self._writer, indices)
        if self.class_mode is None:
            return x
        if self.class_mode == "input":
            y = x.clone()
        elif isinstance(self._targets, list):  # "multi_output"
            y = [t.index_select(0, indices) for t in self._targets]
        else:
            y = self._targets.index_select(0, indices)
            if self.class_mode == "categorical" and y.ndim == 1:
                y = torch.nn.functional.one_hot(y, self.num_classes)
            if self.class_mode != "raw":
                y = y.to(engine._torch_dtype)  # Keras's labels are floats
        if self._sample_weight is None:
            return x, y
        return x, y, self._sample_weight.index_select(0, indices)
