"""What every kaug loader shares: Keras's iterator API, epoch order, seeding, sharding.

A loader is a `torch.utils.data.DataLoader` (and, where keras imports, a Keras
data adapter: see `keras_adapter`) whose batches its `Pipeline` makes on the
device. `LoaderBase` holds the parts that do not depend on where the images come
from (arrays or files).

Iteration, as Keras's iterators: `for batch in loader` and `next(loader)` never
end, epoch after epoch (the tutorials' `for ...: i += 1; if i > 10: break`);
`loader.epoch()` is one epoch, for PyTorch-style loops; `model.fit`, `evaluate`
and `predict` read `len(loader)` batches per epoch.

What user code gets (`augment`'s rule): `for batch in loader`, `next(loader)` and
`loader[i]` serve numpy arrays when the data came in as numpy (or from files), as
Keras's iterators served them, and device tensors when it came in as tensors
(`output` says which; `flow(..., output="torch")` chooses). `loader.epoch()` and
`model.fit` / `evaluate` / `predict` always take the device tensors, no copy.
"""

import math
import threading
import warnings

import numpy as np
import torch

from kaug import distributed
from kaug._checks import check_choice
from kaug.data.keras_adapter import keras_class
from kaug.sampling import make_generator, rank_seed

# What iterating a loader serves: Keras's numpy arrays, or the device's tensors.
OUTPUTS = ("numpy", "torch")


def host_batch(batch):
    """A served batch as C-contiguous numpy arrays (Keras's iterators' kind), its
    tuples and lists kept. A strided batch (channels-last view of a (B, C, H, W)
    tensor) is made contiguous where it is, on the GPU before the copy to the host;
    a contiguous CPU tensor is shared, not copied (each batch is fresh)."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(host_batch(item) for item in batch)
    return batch.detach().contiguous().cpu().numpy()


def epoch_order(count, shuffle, generator, rank=0, world_size=1):
    """One epoch's sample indices for this rank (a CPU tensor): shuffled with
    `generator` (the same draw on every rank) or in order, then sharded."""
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    return distributed.shard(order, rank, world_size)


class LoaderBase(torch.utils.data.DataLoader):
    """The loader half of Keras's iterators, for `ArrayLoader` and `FileLoader`.

    Keras's iterator API: `n`, `batch_size`, `batch_index`, `total_batches_seen`,
    `index_array` (this epoch's order), `loader[i]` (batch i of this epoch's
    order), `next()` (thread-safe), `reset()`, `on_epoch_end()` (a fresh order,
    and the epoch's bookkeeping: saved images written, unreadable files reported).

    Subclasses call `_setup` in their constructor, before DataLoader's, and
    define `_serve(indices)` (one batch of those samples, device tensors) and may
    override `epoch()` (one epoch of device tensors, e.g. streamed through worker
    processes). `output` decides what iteration, `next()` and `loader[i]` hand
    the user; `epoch()` and Keras's reads (`keras_adapter`) take the tensors.
    """

    _output = "torch"

    def __new__(cls, *args, **kwargs):
        return super().__new__(keras_class(cls))

    def _setup(self, pipeline, seed, shuffle, augment, writer, rank, world_size,
               image_data_generator, count):  # fmt: skip
        self.image_data_generator = image_data_generator
        self._pipeline = pipeline
        self._device = pipeline.device
        self.rank, self.world_size = distributed.process_group(rank, world_size)
        self.seed, self.shuffle = seed, shuffle
        self.n = count
        self._augment, self._writer = augment, writer
        # The order comes from the host, so it is the same whether the data sit on
        # the device or not, and on every rank; augmentations come from the device
        # and differ between ranks.
        shared = distributed.shared_seed(seed, self.world_size, shuffle)
        self._order_generator = make_generator(torch.device("cpu"), shared)
        self._generator = make_generator(self._device, rank_seed(shared, self.rank))
        self._order = None  # this epoch's order (CPU tensor), drawn when first needed
        self.batch_index = 0
        self.total_batches_seen = 0
        self._next_lock = threading.RLock()  # Keras's iterators lock `next` too
        self._warned_endless = False

    @property
    def output(self):
        """What `for batch in loader`, `next(loader)` and `loader[i]` serve: "numpy"
        (C-contiguous arrays on the host, Keras's kind: the default for numpy data
        and for files) or "torch" (the tensors on the generator's device: the
        default for tensor data). `loader.epoch()` and `model.fit` / `evaluate` /
        `predict` take the device tensors either way."""
        return self._output

    @output.setter
    def output(self, value):
        self._output = check_choice("output", value, OUTPUTS)

    def _served(self, batch):
        """A batch of device tensors as `output` serves it to user code."""
        return host_batch(batch) if self._output == "numpy" else batch

    @property
    def samples_per_rank(self):
        """Samples in each rank's shard of an epoch (the order is padded to share evenly)."""
        return math.ceil(self.n / self.world_size)

    def __len__(self):
        """Batches per epoch (of this rank's shard)."""
        return math.ceil(self.samples_per_rank / self.batch_size)

    @property
    def _has_labels(self):
        """Whether batches are `(x, y, ...)` tuples (for class weights)."""
        raise NotImplementedError

    def epoch_order(self):
        """This epoch's sample indices for this rank (a CPU tensor)."""
        with self._next_lock:
            if self._order is None:
                self._order = epoch_order(
                    self.n, self.shuffle, self._order_generator, self.rank, self.world_size
                )
            return self._order

    @property
    def index_array(self):
        """This epoch's sample indices, as Keras's iterators have them (numpy)."""
        return self.epoch_order().numpy()

    def _batch_indices(self, index):
        order = self.epoch_order()
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index):
        """Batch `index` of this epoch's order (Keras's `iterator[i]`), as `output`."""
        return self._served(self._batch_at(index))

    def _batch_at(self, index):
        """Batch `index` of this epoch's order, device tensors."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"`index` must be an int. Received: index={index!r}")
        if not 0 <= index < len(self):
            raise ValueError(
                f"Asked to retrieve element {index}, but the loader has length {len(self)}. "
                f"Received: index={index}"
            )
        return self._serve(self._batch_indices(int(index)))

    def _serve(self, indices):
        raise NotImplementedError

    def epoch(self):
        """One epoch: `len(loader)` batches in this epoch's order, as tensors on the
        device (whatever `output` says), then `on_epoch_end`."""
        for index in range(len(self)):
            yield self._batch_at(index)
        self.on_epoch_end()

    def endless(self):
        """Device tensors epoch after epoch, without end (what Keras reads when
        `steps_per_epoch` asks for more than one epoch); nothing from an empty loader."""
        while len(self):
            yield from self.epoch()

    def _check_not_empty(self):
        """Serving from a loader of no samples is an error (Keras served empty batches
        without end, and a `for` loop over them never ends)."""
        if not len(self):
            raise ValueError(
                "This loader holds no images (n=0): there is no batch to serve (the "
                "dataframe listed no readable image file?). Received: n=0"
            )

    def __iter__(self):
        """Batches epoch after epoch, without end, as Keras's iterators serve them (as
        `output`); for one epoch of device tensors, iterate `loader.epoch()`."""
        self._check_not_empty()
        for batch in self.epoch():
            yield self._served(batch)
        if not self._warned_endless:
            self._warned_endless = True
            warnings.warn(
                "Iterating a kaug loader never ends, as Keras's iterators: it has started "
                "a second epoch. Break out of the loop, or iterate `loader.epoch()` for "
                "one epoch.",
                stacklevel=2,
            )
        for batch in self.endless():
            yield self._served(batch)

    def __next__(self):
        """The next batch, starting a new epoch (a fresh order) after the last one.

        Thread-safe, as Keras's: threads sharing a loader get distinct batches.
        """
        self._check_not_empty()
        with self._next_lock:
            if self.batch_index == 0:
                self._order = None  # Keras draws each epoch's order at its first batch
            index = self.batch_index
            self.batch_index = (index + 1) % len(self)
            self.total_batches_seen += 1
            batch = self._batch_at(index)
            if self.batch_index == 0:
                self._end_epoch()
        return self._served(batch)

    next = __next__

    def reset(self):
        """Start over: the next `next()` begins a new epoch (Keras's `reset`)."""
        self.batch_index = 0

    def on_epoch_end(self):
        """A fresh order for the next epoch, and the epoch's bookkeeping."""
        with self._next_lock:
            self._order = None
        self._end_epoch()

    def _end_epoch(self):
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        """Wait until every image queued for `save_to_dir` is written; raise a write
        error. (Queued images are written before the process exits anyway.)"""
        if self._writer is not None:
            self._writer.close()
