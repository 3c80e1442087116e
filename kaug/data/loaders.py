"""Loaders: `torch.utils.data.DataLoader`s whose batches are made on the device.

Keras's `model.fit` takes any DataLoader; these ones upload the arrays once and
build each batch with a gather and the generator's batch engine, so the only
per-batch host work is a few kernel launches.
"""

import math
import threading

import torch

from kaug import distributed
from kaug._tensors import as_tensor, from_nchw, to_nchw
from kaug.data.io import to_uint8_images
from kaug.sampling import make_generator, rank_seed

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


class ArrayLoader(torch.utils.data.DataLoader):
    """Batches of in-memory arrays, augmented and standardized on the device.

    Returned by `ImageDataGenerator.flow`. Iterating yields `x`, `(x, y)` or
    `(x, y, sample_weight)` batches as tensors on the generator's device; each
    pass is an epoch with a fresh order and fresh augmentations. `next(loader)`
    serves batches forever, as Keras's iterators do.

    Arrays are uploaded to the device once, in their own dtype (uint8 stays
    uint8). Data too large for the device (or `resident=False`) stays in host
    memory; each batch is gathered into a pinned buffer and copied
    asynchronously.

    Args:
        image_data_generator: the ImageDataGenerator whose engine makes batches.
        x: (N, ...) images in the generator's data_format.
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
    """

    def __init__(
        self,
        image_data_generator,
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
    ):
        super().__init__(_Samples(len(x)), batch_size=batch_size)
        self.rank, self.world_size = distributed.process_group(rank, world_size)
        self.image_data_generator = image_data_generator
        self.n = len(x)
        self.shuffle = shuffle
        self.seed = seed
        self._augment = augment
        self._writer = writer
        self._y_is_mask = y_is_mask
        self._device = device = image_data_generator.device

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
            self._x = to_nchw(self._x, image_data_generator.data_format).contiguous()

        # The order comes from the host, so it is the same whether the data sit
        # on the device or not, and on every rank; augmentations come from the
        # device and differ between ranks.
        seed = distributed.shared_seed(seed, self.world_size, shuffle)
        self._order_generator = make_generator(torch.device("cpu"), seed)
        self._generator = make_generator(device, rank_seed(seed, self.rank))
        self._iterator = None
        self._next_lock = threading.Lock()  # Keras's iterators lock `next` too

    def _take_images(self, indices):
        """Images `indices`, (B, C, H, W) on the device, as stored (unaugmented)."""
        x = self._take(self._x, indices)
        return x if self.resident else to_nchw(x, self.image_data_generator.data_format)

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

    def __len__(self):
        return math.ceil(math.ceil(self.n / self.world_size) / self.batch_size)

    def __iter__(self):
        order = epoch_order(self.n, self.shuffle, self._order_generator, self.rank, self.world_size)
        if self.resident and self._device.type == "cuda":
            order = order.pin_memory().to(self._device, non_blocking=True)  # once per epoch
        elif self.resident:
            order = order.to(self._device)
        for indices in order.split(min(self.batch_size, self.n)):  # torch's split is int64
            yield self._batch(indices)
        if self._writer is not None:
            self._writer.flush()

    def raw_batches(self):
        """This rank's images as stored, unaugmented: (B, C, H, W) batches, for `fit`."""
        order = distributed.shard(torch.arange(self.n), self.rank, self.world_size, pad=False)
        if self.resident:
            order = order.to(self._device)
        for indices in order.split(min(self.batch_size, self.n)):
            yield self._take_images(indices)

    def __next__(self):
        """The next batch, starting a new epoch when one ends (Keras's iterator API).

        Thread-safe, as Keras's: threads sharing a loader get distinct batches.
        """
        with self._next_lock:
            if self._iterator is None:
                self._iterator = iter(self)
            try:
                return next(self._iterator)
            except StopIteration:
                self._iterator = iter(self)
                return next(self._iterator)

    next = __next__

    def close(self):
        """Wait until every image queued for `save_to_dir` is written; raise a write
        error. (Queued images are written before the process exits anyway.)"""
        if self._writer is not None:
            self._writer.close()

    def _batch(self, indices):
        engine = self.image_data_generator
        x = self._take_images(indices)
        y = None if self._y is None else self._take(self._y, indices)
        masks = self._masks_nchw(y, engine.data_format) if self._y_is_mask else None
        x, masks = serve(engine, x, self._generator, self._augment, self._writer, indices, masks)
        if masks is not None:
            y = from_nchw(masks, engine.data_format).reshape(y.shape)
        if self._extras:
            x = [x, *(self._take(extra, indices) for extra in self._extras)]
        if y is None:
            return x
        batch = (x, y)
        if self._sample_weight is not None:
            batch += (self._take(self._sample_weight, indices),)
        return batch


def epoch_order(count, shuffle, generator, rank=0, world_size=1):
    """One epoch's sample indices for this rank (a CPU tensor): shuffled with
    `generator` (the same draw on every rank) or in order, then sharded."""
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    return distributed.shard(order, rank, world_size)


def serve(engine, x, generator, augment, writer, indices, masks=None):
    """A gathered (B, C, H, W) batch as served: augmented, standardized, saved.

    Returns (x in the engine's data_format and dtype, masks or None).
    """
    if augment:
        x, masks = engine._augment_batch(x, generator, masks)
    x = engine._standardize_batch(x).to(engine._torch_dtype)
    if writer is not None:
        writer.submit(to_uint8_images(x), indices)
    x = from_nchw(x, engine.data_format)
    return (x.contiguous() if engine._contiguous_batches else x), masks
