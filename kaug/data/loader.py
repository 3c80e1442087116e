"""What every kaug loader shares: epoch order, seeding, sharding, the writer, `next()`.

A loader is a `torch.utils.data.DataLoader` that Keras's `model.fit` takes, whose
batches its `Pipeline` makes on the device. `LoaderBase` holds the parts that do
not depend on where the images come from (arrays or files).
"""

import threading

import torch

from kaug import distributed
from kaug.sampling import make_generator, rank_seed


def epoch_order(count, shuffle, generator, rank=0, world_size=1):
    """One epoch's sample indices for this rank (a CPU tensor): shuffled with
    `generator` (the same draw on every rank) or in order, then sharded."""
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    return distributed.shard(order, rank, world_size)


class LoaderBase(torch.utils.data.DataLoader):
    """The loader half of Keras's iterators, for `ArrayLoader` and `FileLoader`.

    Subclasses call `_setup` in their constructor, before DataLoader's, and then
    have: `rank`, `world_size`, `seed`, `shuffle`, `image_data_generator` (kept
    as Keras's iterators keep it; never called), `_pipeline`, `_device`,
    `_generator` (augmentation draws, distinct per rank), `_order_generator`
    (the epoch order, the same on every rank), `_writer`, `_augment`; and
    `next()` (thread-safe, endless, as Keras's) and `close()`.
    """

    def _setup(self, pipeline, seed, shuffle, augment, writer, rank, world_size,
               image_data_generator):  # fmt: skip
        self.image_data_generator = image_data_generator
        self._pipeline = pipeline
        self._device = pipeline.device
        self.rank, self.world_size = distributed.process_group(rank, world_size)
        self.seed, self.shuffle = seed, shuffle
        self._augment, self._writer = augment, writer
        # The order comes from the host, so it is the same whether the data sit on
        # the device or not, and on every rank; augmentations come from the device
        # and differ between ranks.
        shared = distributed.shared_seed(seed, self.world_size, shuffle)
        self._order_generator = make_generator(torch.device("cpu"), shared)
        self._generator = make_generator(self._device, rank_seed(shared, self.rank))
        self._iterator = None
        self._next_lock = threading.Lock()  # Keras's iterators lock `next` too

    def _epoch_order(self, count):
        """This rank's sample indices for the next epoch."""
        return epoch_order(count, self.shuffle, self._order_generator, self.rank, self.world_size)

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
