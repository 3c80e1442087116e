"""Loaders: `torch.utils.data.DataLoader`s whose batches are made on the device.

Keras's `model.fit` takes any DataLoader; these ones gather each batch from the
caller's arrays (in place, or read from a file a batch at a time, see
`kaug.data.sources`) or from a copy uploaded to the GPU once, and run it through
the generator's batch engine.
"""

import functools

import torch

from kaug import distributed
from kaug._tensors import as_tensor, from_nchw, to_nchw
from kaug.batch import Batch
from kaug.data.loader import LoaderBase
from kaug.data.sources import READ_AHEAD, BatchReader, source_of

# Arrays larger than this share of the free device memory stay on the host.
DEVICE_MEMORY_SHARE = 0.5


class _Samples(torch.utils.data.Dataset):
    """The dataset DataLoader (and Keras's adapter) sees: its length, in samples."""

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        raise TypeError("kaug loaders make whole batches on the device: iterate the loader")


def fits_on_device(nbytes, device):
    """Whether `nbytes` of data may live on `device` (always on the CPU)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


class ArrayLoader(LoaderBase):
    """Batches of arrays, augmented and standardized on the device.

    Returned by `ImageDataGenerator.flow`. Iterating yields `x`, `(x, y)` or
    `(x, y, sample_weight)` batches: numpy arrays for data that came in as numpy (a
    memmap, an h5py dataset), tensors on the generator's device for tensor data
    (`output` chooses); `epoch()` and `model.fit` always get the device tensors.
    Each epoch has a fresh order and fresh augmentations. Iteration and `next(loader)`
    never end, as Keras's iterators; `loader.epoch()` is one epoch (see
    `LoaderBase` for Keras's iterator API).

    Where the images live (`resident`):

    - uploaded to a GPU once, in their own dtype (uint8 stays uint8), when they
      fit in half its free memory (read in chunks: host memory holds one);
    - otherwise each batch is gathered from `x` itself, never copied whole: a
      numpy array or tensor in memory in place, a memory-mapped `.npy`, an h5py
      dataset or any array with `__getitem__` and `shape` with one read per batch
      (indices sorted). Background threads read the next batches while the
      current one is augmented, so memory holds a few batches beyond `x`; on a GPU
      each batch goes through a pinned buffer, copied asynchronously.

    NaN and inf are refused (a ValueError naming the rows) when the batch holding
    them is gathered; the first batch's worth of rows is read once when the
    loader is made, so an unreadable source or bad first rows fail there.

    Args:
        pipeline: the `kaug.pipeline.Pipeline` that makes batches (the
            generator's: settings changed between epochs drive the next batch).
        x: (N, ...) images in the pipeline's data_format: an array, a tensor, a
            `kaug.data.sources.Source`, or anything with `shape`, `dtype` and
            `__getitem__` taking a sorted 1-D int array (as h5py datasets).
        y: optional (N, ...) targets (held in memory).
        sample_weight: optional (N,) weights.
        extras: arrays served unchanged beside x (Keras's `x=(images, misc)`).
        batch_size: images per batch; the last batch may be smaller.
        shuffle: reorder the samples every epoch.
        seed: makes a fresh loader serve the same batches in the same order.
        augment: False serves standardized, unaugmented batches.
        writer: an `ImageWriter` that saves every served image, or None.
        resident: True keeps x whole on the device (uploaded once; on the CPU an
            in-memory array is used where it is, and any other source is read
            into memory); False gathers every batch from x; None: True for
            arrays in memory on the CPU and for data that fit in half the free
            memory of a GPU, else False.
        y_is_mask: `y` holds segmentation masks ((N, H, W) or images of labels)
            that get each image's geometric augmentation.
        rank: this process's rank; default from an initialised torch.distributed
            process group, else 0. Each rank is served a disjoint shard of every
            epoch, in an order all ranks share (from `seed`, or rank 0's).
        world_size: the number of ranks (with `rank`).
        image_data_generator: the ImageDataGenerator, kept as Keras's iterators
            keep it (an attribute for users; the loader never calls it).
    """

    def __init__(
        self,
        pipeline,
        x,
        y=None,
        sample_weight=None,
        extras=(),
        batch_size=32,
        shuffle=True,
        seed=None,
        augment=True,
        writer=None,
        resident=None,
        y_is_mask=False,
        rank=None,
        world_size=None,
        image_data_generator=None,
    ):
        source = source_of(x)
        self._setup(pipeline, seed, shuffle, augment, writer, rank, world_size,
                    image_data_generator, len(source))  # fmt: skip
        super().__init__(_Samples(len(source)), batch_size=batch_size)
        self._device_order = None
        self._y_is_mask = y_is_mask
        device = self._device

        y, sample_weight, *extras = (
            None if a is None else as_tensor(a, "cpu") for a in (y, sample_weight, *extras)
        )
        small = [a for a in (y, sample_weight, *extras) if a is not None]
        nbytes = source.nbytes + sum(a.element_size() * a.nelement() for a in small)
        if resident is None:
            resident = source.in_memory if device.type == "cpu" else fits_on_device(nbytes, device)
        self.resident = bool(resident)
        self._source = source
        # Whole on the device: (N, C, H, W)-contiguous, the layout the warp reads fastest.
        loaded = self.resident and not (device.type == "cpu" and source.in_memory)
        self._x = source.load(device, pipeline.data_format) if loaded else None
        self._reader = None
        if self._x is None:
            self._reader = BatchReader(
                functools.partial(_read_batch, source, pipeline.data_format, device)
            )
            source.check_first_rows(
                min(len(source), self.batch_size),
                pipeline.data_format,
                "its first rows, read when the loader was made",
            )

        def place(tensor):
            return tensor.to(device) if self._x is not None else tensor

        self._y, self._sample_weight = (None if a is None else place(a) for a in (y, sample_weight))
        self._extras = [place(a) for a in extras]

    def _take_images(self, indices, where=None):
        """Images `indices`, (B, C, H, W) on the device, as stored (unaugmented)."""
        if self._x is not None:
            return self._x.index_select(0, indices)
        return self._reader.take(indices, where).to(self._device, non_blocking=True)

    def _take(self, source, indices):
        """Rows `indices` of `source` (y, sample_weight, an extra), on the device."""
        if self._x is not None or self._device.type == "cpu":
            return source.index_select(0, indices)
        staging = torch.empty(
            (len(indices), *source.shape[1:]), dtype=source.dtype, pin_memory=True
        )
        torch.index_select(source, 0, indices, out=staging)
        return staging.to(self._device, non_blocking=True)

    @staticmethod
    def _masks_nchw(masks, data_format):
        """Masks as (B, K, H, W): (B, H, W) label maps get one channel."""
        if masks.ndim == 3:
            return masks.unsqueeze(1)
        return to_nchw(masks, data_format)

    @property
    def _has_labels(self):
        return self._y is not None and not self._y_is_mask

    def _batch_indices(self, index):
        """Data on the device take the epoch's order from the device (one upload per
        epoch); the others start reading this batch and the next `READ_AHEAD` ones."""
        if self._x is None:
            coming = range(index, min(len(self), index + READ_AHEAD + 1))
            batches = [(LoaderBase._batch_indices(self, j), f"read for batch {j} of this epoch")
                       for j in coming]  # fmt: skip
            self._reader.expect(batches)
            return batches[0][0]
        order = self.epoch_order()
        cached = self._device_order
        if cached is None or cached[0] is not order:
            pinned = order.pin_memory() if self._device.type == "cuda" else order
            cached = self._device_order = (order, pinned.to(self._device, non_blocking=True))
        return cached[1][index * self.batch_size : (index + 1) * self.batch_size]

    def raw_batches(self):
        """This rank's images as stored, unaugmented: (B, C, H, W) batches, for `fit`."""
        order = distributed.shard(torch.arange(self.n), self.rank, self.world_size, pad=False)
        chunks = order.split(min(self.batch_size, self.n))
        if self._x is not None:
            for indices in chunks:
                yield self._x.index_select(0, indices.to(self._device))
            return
        batches = [(rows, f"read for batch {i} of fit's pass") for i, rows in enumerate(chunks)]
        for batch in self._reader.stream(batches):
            yield batch.to(self._device, non_blocking=True)

    def _serve(self, indices):
        pipeline = self._pipeline
        y = None if self._y is None else self._take(self._y, indices)
        batch = Batch(
            images=self._take_images(indices),
            masks=self._masks_nchw(y, pipeline.data_format) if self._y_is_mask else None,
            labels=None if self._y_is_mask else y,
            sample_weight=None if self._sample_weight is None
            else self._take(self._sample_weight, indices),
        )  # fmt: skip
        batch = pipeline.serve(batch, self._generator, self._augment, self._writer, indices)
        x = batch.images
        if self._y_is_mask:  # back to the layout they came in: (B, H, W) or per data_format
            masks = batch.masks
            y = masks[:, 0] if y.ndim == 3 else from_nchw(masks, pipeline.data_format)
        else:
            y = batch.labels
        if self._extras:
            x = [x, *(self._take(extra, indices) for extra in self._extras)]
        if y is None:
            return x
        return (x, y) if batch.sample_weight is None else (x, y, batch.sample_weight)


def _read_batch(source, data_format, device, indices, where):
    """One batch of `source` as a reader thread makes it: gathered, checked, and pinned
    for an asynchronous copy to a GPU."""
    batch = source.gather(indices, data_format, where)
    return batch.pin_memory() if device.type == "cuda" else batch
