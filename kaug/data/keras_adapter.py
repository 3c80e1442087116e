"""How `model.fit`, `evaluate` and `predict` read a kaug loader, on every backend.

Keras takes any object that is its own `DataAdapter` as it is ("a custom data
adapter"), so every loader is one as well as a `torch.utils.data.DataLoader`
(the class is made on first use: `import kaug` never imports keras). Keras then
reads one epoch of `len(loader)` batches through `get_*_iterator`, always as
tuples (`(x,)` for images alone: Keras's own DataLoader adapter would split a
bare batch into rows on jax and tensorflow), and never reorders the batches.

Keras does not hand an adapter `fit`'s `class_weight` or `steps_per_epoch`: the
loader reads them from Keras's `EpochIterator` while it is being built (see
`epoch_iterator_arguments`), so that `class_weight` is applied (never silently
dropped) and a `steps_per_epoch` beyond one epoch just keeps going.
"""

import functools
import sys

import numpy as np
import torch

from kaug._checks import invalid, is_number, scalar


def epoch_iterator_arguments(depth=4):
    """(steps_per_epoch, class_weight) of the Keras `EpochIterator` whose constructor
    is asking for `num_batches`, or None when the caller is not one (any other read,
    including the EpochIterator's own `reset`)."""
    frame = sys._getframe(1)
    for _ in range(depth):
        frame = frame.f_back
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "__init__" and type(owner).__name__.endswith("EpochIterator"):
            return frame.f_locals.get("steps_per_epoch"), frame.f_locals.get("class_weight")
    return None


def class_weight_table(class_weight):
    """A checked `class_weight` dict as a (K + 1,) tensor, K = the largest class + 1:
    entry k is class k's weight (1.0 for the classes the dict leaves out), and the last
    entry, 1.0, serves every class outside [0, K)."""
    table = torch.ones(max(class_weight) + 2, dtype=torch.float64)
    for index, weight in class_weight.items():
        table[index] = weight
    return table


def class_weights(labels, table):
    """Keras's per-sample weights from a `class_weight_table`: the class is a sparse
    label, the argmax of a one-hot row, or the rounded value of a (B, 1) column."""
    labels = labels.detach()
    if labels.ndim > 1:
        labels = labels.argmax(-1) if labels.shape[-1] != 1 else labels[..., 0]
    classes = torch.round(labels.to(torch.float64)).long()
    outside = len(table) - 1
    known = (classes >= 0) & (classes < outside)
    return table.to(classes.device)[torch.where(known, classes, outside)]


def check_class_weight(class_weight):
    """A `class_weight` dict: int class index -> finite, non-negative weight."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict) or not class_weight:
        expected = "must be a non-empty dict {class index: weight}"
        raise invalid("class_weight", class_weight, expected)
    checked = {}
    for index, weight in class_weight.items():
        index, weight = scalar(index), scalar(weight)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or index < 0:
            expected = "must have class indices (ints >= 0) as keys"
            raise invalid("class_weight", class_weight, expected)
        if not is_number(weight) or not np.isfinite(weight) or weight < 0:
            raise invalid("class_weight", class_weight, "must have finite weights >= 0 as values")
        checked[int(index)] = float(weight)
    return checked


def weighted(batch, table, dtype):
    """`(x, y[, w])` with the class weights of `y` (a `class_weight_table` on y's
    device) folded into `w` (multiplied, as `sample_weight * class_weight`)."""
    x, y, *rest = batch
    weights = class_weights(y, table).to(dtype)
    if rest:
        weights = rest[0] * weights
    return x, y, weights


def _to_numpy(batch):
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_numpy(item) for item in batch)
    return np.asarray(batch.detach().cpu())


def _sliced(batch):
    if isinstance(batch, (tuple, list)):
        return type(batch)(_sliced(item) for item in batch)
    return batch[:0]


class KerasAdapter:
    """The Keras `DataAdapter` half of a loader (mixed in by `keras_class`)."""

    _is_keras_adapter = True
    _keras_class_weight = None
    _keras_endless = False

    # DataLoader's attribute, not DataAdapter's abstract property.
    batch_size = property(
        lambda self: self.__dict__["batch_size"],
        lambda self, value: self.__dict__.__setitem__("batch_size", value),
    )

    @property
    def num_batches(self):
        arguments = epoch_iterator_arguments()
        if arguments is not None:  # a new fit / evaluate / predict starts reading
            steps_per_epoch, class_weight = arguments
            self._keras_class_weight = self._check_keras_class_weight(class_weight)
            self._keras_endless = bool(steps_per_epoch) and steps_per_epoch > len(self)
        return None if self._keras_endless else len(self)

    def _check_keras_class_weight(self, class_weight):
        class_weight = check_class_weight(class_weight)
        if class_weight is not None and not self._has_labels:
            raise invalid("class_weight", class_weight, "needs a loader that serves labels (x, y)")
        return class_weight

    @property
    def has_partial_batch(self):
        return self.partial_batch_size is not None

    @property
    def partial_batch_size(self):
        return (self.samples_per_rank % self.batch_size) or None

    def _keras_batches(self):
        """One epoch as Keras reads it: the device tensors (never `output`'s host
        copies), as tuples, class weights folded in; endless when `steps_per_epoch`
        asks for more than an epoch."""
        batches = self.endless() if self._keras_endless else self.epoch()
        table = None
        if self._keras_class_weight is not None:  # on the device once, not per batch
            table = class_weight_table(self._keras_class_weight).to(self._device)
        for batch in batches:
            batch = batch if isinstance(batch, tuple) else (batch,)
            if table is not None:
                batch = weighted(batch, table, self._pipeline.dtype)
            yield batch

    def get_torch_dataloader(self):
        return self._keras_batches()

    def get_numpy_iterator(self):
        return (_to_numpy(batch) for batch in self._keras_batches())

    def get_jax_iterator(self):
        return self.get_numpy_iterator()

    def get_tf_dataset(self):
        import tensorflow as tf
        from keras.src.trainers.data_adapters import data_adapter_utils

        first = next(self.get_numpy_iterator())
        empty = _sliced(first)  # a batch of none: the batch size is left open
        spec = data_adapter_utils.get_tensor_spec([first, empty])
        return tf.data.Dataset.from_generator(self.get_numpy_iterator, output_signature=spec)

    def on_epoch_begin(self):
        pass


@functools.cache
def keras_class(cls):
    """`cls` made a Keras `DataAdapter` too; `cls` itself where keras does not import."""
    if getattr(cls, "_is_keras_adapter", False):
        return cls
    try:
        from keras.src.trainers.data_adapters.data_adapter import DataAdapter
    except ImportError:
        return cls
    return type(
        cls.__name__,
        (KerasAdapter, cls, DataAdapter),
        {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__},
    )
