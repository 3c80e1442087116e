"""Where `flow`'s images come from: the caller's `x`, read a batch at a time, never whole.

A `Source` is `x` (or rows [start, stop) of it, for `subset`); `source_of(x)`
picks the kind:

- `ArraySource`: numpy arrays in memory and torch tensors, gathered in place
  in the epoch's order (numpy through a read-only view, tensors with
  `index_select`): nothing is copied up front.
- `FileSource`: a memory-mapped numpy array (`np.load(path, mmap_mode="r")`,
  `np.memmap`) whose rows lie whole in its file, read with `os.preadv` rather
  than through the mapping, so no page of the file is mapped into the process
  (through the mapping, every page read would count in its RSS).
- `IndexedSource`: anything else with `shape`, `__getitem__` and a real dtype
  (h5py datasets, zarr arrays, a class of the user's, and memmaps whose rows
  are not whole in the file): one `x[indices]` per batch.

File and indexed sources read each batch's indices sorted and unique (what h5py
requires, and what keeps a disk read in file order), then put the rows back in
the epoch's order. Every batch comes out a (B, C, H, W)-contiguous CPU tensor
that owns its memory (so nothing done to it reaches `x`), in a dtype torch
takes, and is refused when floating with NaN or inf, naming its rows: the
check costs one pass over the batch, never one over `x`.

`BatchReader` reads the next batches in background threads while the current
one is augmented; it holds a few batches at most.
"""

import collections
import concurrent.futures
import copy
import mmap
import os
import threading
import weakref

import numpy as np
import torch

from kaug._checks import invalid
from kaug._tensors import check_dtype, host_dtype, served_dtype
from kaug.inputs import check_finite

# Rows per read when a whole source is loaded (to the GPU, or to memory on request).
LOAD_BYTES = 64 * 2**20
# Batches a loader reads ahead, and the threads that read them.
READ_AHEAD = 2
READ_THREADS = 2


def source_of(x, name="x"):
    """`x` (rank already checked) as a `Source`; its dtype is checked here, up front."""
    if isinstance(x, Source):
        return x
    if isinstance(x, torch.Tensor):
        return ArraySource(x, check_dtype(name, x, x.dtype))
    if not isinstance(x, np.ndarray) and hasattr(x, "__getitem__") and hasattr(x, "shape"):
        return IndexedSource(x, name)
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)  # nested lists and the like: small by nature
        except (ValueError, TypeError) as error:
            raise invalid(name, type(x).__name__, "must be a numeric array") from error
    dtype = check_dtype(name, x, x.dtype)
    mapped = _mapping_owner(x)
    if mapped is None:
        return ArraySource(x, dtype)
    return FileSource.of(x, mapped, dtype) or IndexedSource(x, name)


class Source:
    """Rows [start, stop) of an array `x`: `len`, `shape` and slicing as an array's,
    and `gather(indices)`, a batch of those rows.

    Attributes:
        dtype: the dtype of `x` (numpy's, or torch's for tensors).
        in_memory: whether `x` is an in-memory array (gathered in place).
    """

    in_memory = False

    def __init__(self, array, dtype):
        self.array, self.dtype = array, dtype
        self.start, self.stop = 0, int(array.shape[0])

    @property
    def shape(self):
        return (self.stop - self.start, *self.array.shape[1:])

    @property
    def ndim(self):
        return len(self.array.shape)

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, part):
        """Rows `part` (a slice of step 1: how `subset` cuts `x`) as a Source; O(1)."""
        if not isinstance(part, slice) or part.step not in (None, 1):
            raise TypeError(f"a Source takes slices of step 1. Received: {part!r}")
        start, stop, _ = part.indices(len(self))
        rows = copy.copy(self)
        rows.start, rows.stop = self.start + start, self.start + max(start, stop)
        return rows

    @property
    def served_dtype(self):
        """The torch dtype of the gathered batches."""
        return served_dtype(self.dtype)

    @property
    def nbytes(self):
        """Bytes of the whole source once gathered (in `served_dtype`)."""
        features = int(np.prod(self.shape[1:]))
        return len(self) * features * self.served_dtype.itemsize

    def gather(self, indices, data_format, where=None, check=True):
        """Rows `indices` (of this source: 0 is its first row) in that order, as a
        (B, C, H, W)-contiguous CPU tensor owning its memory; refused when not finite
        (with `check`), naming the rows and `where` (what they were read for)."""
        indices = np.asarray(indices, dtype=np.int64)
        batch = self._gather(indices, data_format)
        if check:
            check_finite(batch, "x", indices + self.start, where)
        return batch

    def check_first_rows(self, count, data_format, where):
        """Read rows [0, count) once, as a batch would be read, and refuse them (naming
        the rows) if they are not finite: what a loader does when it is made."""
        first = self._first_rows(count)
        if isinstance(first, torch.Tensor):
            finite = not first.is_floating_point() or bool(torch.isfinite(first).all())
        else:
            finite = first.dtype.kind != "f" or bool(np.isfinite(first).all())
        if not finite:
            self.gather(np.arange(count), data_format, where)  # raises, naming them

    def _first_rows(self, count):
        return self._read(np.arange(self.start, self.start + count))[0]

    def _load_chunk(self, start, stop, data_format, device):
        """Rows [start, stop) on `device`, (B, C, H, W) (a view will do), for `load`."""
        return self.gather(np.arange(start, stop), data_format, check=False).to(device)

    def _gather(self, indices, data_format):
        """Read, sorted and unique, then put back in the order asked."""
        unique, inverse = np.unique(indices, return_inverse=True)
        rows, own = self._read(unique + self.start)
        if len(unique) != len(indices) or not np.array_equal(unique, indices):
            rows, own = np.take(rows, inverse, axis=0), True
        return as_batch(rows, data_format, host_dtype(self.dtype), own)

    def _read(self, rows):
        """Rows `rows` of `x` (sorted, unique, absolute): (array, whether kaug owns it)."""
        raise NotImplementedError

    def load(self, device, data_format):
        """The whole source as one (N, C, H, W)-contiguous tensor on `device`, read
        `LOAD_BYTES` at a time (host memory holds one chunk), checked finite once."""
        count, shape = len(self), self.shape[1:]
        if data_format == "channels_last":
            shape = (shape[2], shape[0], shape[1])
        whole = torch.empty((count, *shape), dtype=self.served_dtype, device=device)
        row_bytes = int(np.prod(shape)) * self.served_dtype.itemsize
        step = max(1, LOAD_BYTES // max(1, row_bytes))
        for start in range(0, count, step):
            stop = min(count, start + step)
            whole[start:stop] = self._load_chunk(start, stop, data_format, device)
        check_finite(whole, "x", np.arange(self.start, self.stop), "checked as x was loaded")
        return whole


class ArraySource(Source):
    """A numpy array in memory or a torch tensor, gathered in place in the asked order."""

    in_memory = True

    def __init__(self, array, dtype):
        if isinstance(array, np.ndarray):
            array = array.view()
            array.flags.writeable = False  # kaug reads it; nothing may write through it
        else:
            array = array.detach()
        super().__init__(array, dtype)

    def _first_rows(self, count):
        return self.array[self.start : self.start + count]  # a view: nothing is copied

    def _load_chunk(self, start, stop, data_format, device):
        if not isinstance(self.array, torch.Tensor):
            return super()._load_chunk(start, stop, data_format, device)
        rows = self.array[self.start + start : self.start + stop].to(device)  # never via numpy
        return rows.permute(0, 3, 1, 2) if data_format == "channels_last" else rows

    def _gather(self, indices, data_format):
        rows = indices + self.start
        if isinstance(self.array, torch.Tensor):
            taken = self.array.index_select(0, torch.from_numpy(rows).to(self.array.device))
            return tensor_batch(taken.cpu(), data_format)
        taken = np.take(self.array, rows, axis=0)
        return as_batch(taken, data_format, host_dtype(self.dtype), own=True)


class IndexedSource(Source):
    """Anything with `shape`, `__getitem__` and a real dtype: `x[rows]` per batch, rows
    a sorted 1-D int64 numpy array (a slice when they are consecutive), as numpy,
    h5py and zarr take them."""

    def __init__(self, array, name="x"):
        dtype = getattr(array, "dtype", None)
        if isinstance(dtype, torch.dtype):  # a wrapper of tensors: its rows come as numpy
            dtype = check_dtype(name, array, dtype)
            try:
                dtype = torch.empty(0, dtype=dtype).numpy().dtype
            except TypeError as error:
                kind = f"{type(array).__name__} of dtype {dtype}"
                raise invalid(name, kind, "must have a dtype numpy has") from error
        if dtype is None and array.shape[0]:  # learn it from one row
            dtype = np.asarray(array[np.arange(1)]).dtype
        self.name = name
        super().__init__(array, check_dtype(name, array, np.float32 if dtype is None else dtype))

    def _read(self, rows):
        consecutive = len(rows) and rows[-1] - rows[0] + 1 == len(rows)
        key = slice(int(rows[0]), int(rows[-1]) + 1) if consecutive else rows
        try:
            taken = np.asarray(self.array[key])
        except (TypeError, IndexError, KeyError) as error:
            raise invalid(
                self.name,
                f"{type(self.array).__name__} that raised {type(error).__name__}: {error}",
                "must return its rows for x[indices], indices a sorted 1-D numpy int array "
                "(as numpy arrays and h5py datasets do)",
            ) from error
        expected = (len(rows), *self.array.shape[1:])
        if taken.shape != expected or taken.dtype != self.dtype:
            raise invalid(
                self.name,
                f"{type(self.array).__name__} whose x[indices] gave {taken.dtype} rows of "
                f"shape {taken.shape} for {len(rows)} indices",
                f"must return {len(rows)} rows of shape {expected[1:]} and dtype {self.dtype} "
                "for as many indices",
            )
        return taken, False  # may be a view of the caller's data: copied before use


class FileSource(Source):
    """A memory-mapped array whose rows each lie whole in its file, read with
    `os.preadv` (consecutive rows in one call): the file's pages are never mapped."""

    @classmethod
    def of(cls, array, owner, dtype):
        """A FileSource for `array`, a view of the np.memmap `owner`; None when its rows
        are not whole in the file, the mapping is copy-on-write (its changes are not in
        the file) or the file is not the one mapped."""
        if (
            not isinstance(owner, np.memmap)
            or owner.mode == "c"
            or not owner.filename
            or not hasattr(os, "preadv")  # not on Windows
        ):
            return None
        if len(array) and not array[0].flags.c_contiguous:
            return None  # a row is scattered in the file: read through the mapping
        offset = owner.offset + _address(array) - _address(owner)
        try:
            source = cls(array, dtype, owner.filename, offset)
            first_row_matches = not len(array) or (
                source._read(np.arange(1))[0].tobytes() == np.ascontiguousarray(array[:1]).tobytes()
            )
        except (OSError, ValueError):
            return None
        return source if first_row_matches else None

    def __init__(self, array, dtype, path, offset):
        super().__init__(array, dtype)
        self.path, self.offset = path, offset
        self.row_bytes = int(np.prod(array.shape[1:])) * array.dtype.itemsize
        self.stride = array.strides[0] if len(array) > 1 else self.row_bytes
        self._file = _File(path)

    def _read(self, rows):
        raw = np.empty(len(rows) * self.row_bytes, np.uint8)
        if self.stride == self.row_bytes:  # adjacent rows: one call per run of them
            starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
            stops = np.append(starts[1:], len(rows))
        else:
            starts = np.arange(len(rows))
            stops = starts + 1
        fd = self._file.fd
        for first, last in zip(starts.tolist(), stops.tolist(), strict=True):
            view = memoryview(raw)[first * self.row_bytes : last * self.row_bytes]
            position = self.offset + int(rows[first]) * self.stride
            while len(view):
                done = os.preadv(fd, [view], position)
                if done == 0:
                    raise invalid("x", self.path, "must be a file that holds all its rows")
                view, position = view[done:], position + done
        return raw.view(self.array.dtype).reshape(len(rows), *self.array.shape[1:]), True


class _File:
    """A read-only file descriptor, shared by a FileSource's slices, closed with them."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)


def _address(array):
    return array.__array_interface__["data"][0]


def _mapping_owner(array):
    """The array (an np.memmap, normally) that owns the file mapping `array` views, or
    None for an array in memory."""
    while isinstance(array, np.ndarray):
        if isinstance(array.base, mmap.mmap):
            return array
        array = array.base
    return None


def as_batch(rows, data_format, dtype, own):
    """Rows (numpy, in the caller's layout) as a (B, C, H, W)-contiguous CPU tensor of
    numpy `dtype`, copied unless kaug `own`s `rows` and they already are that."""
    view = rows.transpose(0, 3, 1, 2) if data_format == "channels_last" else rows
    if not own or view.dtype != dtype or not view.flags.c_contiguous or not view.flags.writeable:
        out = np.empty(view.shape, dtype)
        np.copyto(out, view, casting="unsafe")  # widening and byte order only
        view = out
    return torch.from_numpy(view)


def tensor_batch(rows, data_format):
    """Rows gathered from a tensor (a new tensor) as a (B, C, H, W)-contiguous batch."""
    rows = rows.to(served_dtype(rows.dtype))
    if data_format != "channels_last":
        return rows.contiguous()
    try:  # numpy's transposing copy is several times faster than torch's on the CPU
        return torch.from_numpy(np.ascontiguousarray(rows.numpy().transpose(0, 3, 1, 2)))
    except TypeError:  # a dtype numpy lacks (bfloat16)
        return rows.permute(0, 3, 1, 2).contiguous()


class BatchReader:
    """Gathers batches with `read(indices, where)` in background threads, ahead of use.

    `expect` queues reads of the batches coming next; `take` returns a queued batch
    (waiting for its read) or reads one now. At most `capacity` batches are queued;
    the oldest unclaimed ones are dropped first.
    """

    def __init__(self, read, threads=READ_THREADS, capacity=2 * (READ_AHEAD + 1)):
        self._read = read
        self._threads, self._capacity = threads, capacity
        self._queued = collections.OrderedDict()  # indices' bytes -> Future
        self._lock = threading.Lock()
        self._pool = None

    def expect(self, batches):
        """Start reading `batches`, (indices, where) pairs, in the background."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self._threads, thread_name_prefix="kaug-reader"
                )
            for indices, where in batches:
                key = _key(indices)
                if key not in self._queued:
                    self._queued[key] = self._pool.submit(self._read, indices, where)
            while len(self._queued) > self._capacity:
                self._queued.popitem(last=False)[1].cancel()

    def take(self, indices, where=None):
        """Batch `indices`: its queued read's result, or read now."""
        with self._lock:
            future = self._queued.pop(_key(indices), None)
        return self._read(indices, where) if future is None else future.result()

    def stream(self, batches):
        """Each of `batches` ((indices, where) pairs) in turn, read `READ_AHEAD` ahead."""
        batches = list(batches)
        for position, (indices, where) in enumerate(batches):
            self.expect(batches[position : position + READ_AHEAD + 1])
            yield self.take(indices, where)

    @property
    def queued(self):
        """How many batches are queued (read or being read) and not yet taken."""
        return len(self._queued)


def _key(indices):
    return np.asarray(indices, dtype=np.int64).tobytes()
