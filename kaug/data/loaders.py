"""Loaders: `torch.utils.data.DataLoader`s whose batches are made on the device.

Keras's `model.fit` takes any DataLoader; these ones upload the arrays once and
build each batch with a gather and the generator's batch engine, so the only
per-batch host work is a few kernel launches.
"""

import torch

from kaug import distributed
from kaug._tensors import as_tensor, from_nchw, to_nchw
from kaug.batch import Batch
from kaug.data.loader import LoaderBase

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
    """Batches of in-memory arrays, augmented and standardized on the device.

    Returned by `ImageDataGenerator.flow`. Iterating yields `x`, `(x, y)` or
    `(x, y, sample_weight)` batches as tensors on the generator's device; each
    epoch has a fresh order and fresh augmentations. Iteration and `next(loader)`
    never end, as Keras's iterators; `loader.epoch()` is one epoch (see
    `LoaderBase` for Keras's iterator API).

    Arrays are uploaded to the device once, in their own dtype (uint8 stays
    uint8). Data too large for the device (or `resident=False`) stays in host
    memory; each batch is gathered into a pinned buffer and copied
    asynchronously.

    Args:
        pipeline: the `kaug.pipeline.Pipeline` that makes batches (the
            generator's: settings changed between epochs drive the next batch).
        x: (N, ...) images in the pipeline's data_format.
        y: optional (N, ...) targets.
        sample_weight: optional (N,) weights.
        extras: arrays served unchanged beside x (Keras's `x=(images, misc)`).
        batch_size: images per batch; the last batch may be smaller.
        shuffle: reorder the samples every epoch.
        seed: makes a fresh loader serve the same batches in the same order.
        augment: False serves standardized, unaugmented batches.
        writer: an `ImageWriter` that saves every served image, or None.
        resident: True/False forces the arrays onto/off the device; None decides
            from their size.
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
        self._setup(pipeline, seed, shuffle, augment, writer, rank, world_size,
                    image_data_generator, len(x))  # fmt: skip
        super().__init__(_Samples(len(x)), batch_size=batch_size)
        self._device_order = None
        self._y_is_mask = y_is_mask
        device = self._device

        x, y, sample_weight, *extras = (
            None if a is None else as_tensor(a, "cpu") for a in (x, y, sample_weight, *extras)
        )
        arrays = [a for a in (x, y, sample_weight, *extras) if a is not None]
        nbytes = sum(a.element_size() * a.nelement() for a in arrays)
        self.resident = fits_on_device(nbytes, device) if resident is None else bool(resident)

        def place(tensor):
            return tensor.to(device) if self.resident else tensor

        self._y, self._sample_weight = (None if a is None else place(a) for a in (y, sample_weight))
        self._extras = [place(a) for a in extras]
        # Resident images are stored (B, C, H, W)-contiguous once, the layout the warp
        # reads fastest; host-resident ones keep the caller's layout (no second copy).
        self._x = place(x)
        if self.resident:
            self._x = to_nchw(self._x, pipeline.data_format).contiguous()

    def _take_images(self, indices):
        """Images `indices`, (B, C, H, W) on the device, as stored (unaugmented)."""
        x = self._take(self._x, indices)
        return x if self.resident else to_nchw(x, self._pipeline.data_format)

    def _take(self, source, indices):
        """Rows `indices` of `source`, on the device."""
        if self.resident:
            return source.index_select(0, indices)
        staging = torch.empty(
            (len(indices), *source.shape[1:]),
            dtype=source.dtype,
            pin_memory=self._device.type == "cuda",
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
        """Resident data take the epoch's order from the device: one upload per epoch."""
        if not self.resident:
            return super()._batch_indices(index)
        order = self.epoch_order()
        cached = self._device_order
        if cached is None or cached[0] is not order:
            pinned = order.pin_memory() if self._device.type == "cuda" else order
            cached = self._device_order = (order, pinned.to(self._device, non_blocking=True))
        return cached[1][index * self.batch_size : (index + 1) * self.batch_size]

    def raw_batches(self):
        """This rank's images as stored, unaugmented: (B, C, H, W) batches, for `fit`."""
        order = distributed.shard(torch.arange(self.n), self.rank, self.world_size, pad=False)
        if self.resident:
            order = order.to(self._device)
        for indices in order.split(min(self.batch_size, self.n)):
            yield self._take_images(indices)

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
