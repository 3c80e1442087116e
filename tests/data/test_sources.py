"""flow() over data it never copies whole: arrays in place, memmapped .npy files, h5py
datasets and any array with `shape`, `dtype` and `__getitem__`, read a batch at a time."""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaug import ImageDataGenerator
from kaug.data import sources
from kaug.data.sources import READ_AHEAD
from kaug.transforms import BatchTransform


class Rows:
    """The least an array needs to be flowed: `shape`, `dtype`, `x[indices]`. Records
    every key it is indexed with, and returns views of its data where numpy does."""

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype = data.shape, data.dtype
        self.keys = []

    def __getitem__(self, key):
        self.keys.append(key)
        return self.data[key]

    def rows_read(self):
        return [np.arange(len(self.data))[key] for key in self.keys]


class ZeroInPlace(BatchTransform):
    """A careless user transform that writes into the batch it is given."""

    def apply(self, x, params):
        return x.zero_()


def h5py_or_skip():
    return pytest.importorskip("h5py")


def as_kind(kind, x, tmp_path):
    """`x` held as `kind`: a numpy array, a tensor, a memmapped .npy, an h5py dataset,
    or a `Rows`."""
    if kind == "numpy":
        return x
    if kind == "torch":  # torch takes native byte order only
        return torch.from_numpy(np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")))
    if kind == "memmap":
        path = tmp_path / f"x{len(os.listdir(tmp_path))}.npy"
        np.save(path, x)
        return np.load(path, mmap_mode="r")
    if kind == "h5py":
        h5py = h5py_or_skip()
        handle = h5py.File(tmp_path / f"x{len(os.listdir(tmp_path))}.h5", "w")
        handle["x"] = x
        return handle["x"]
    return Rows(x)


KINDS = ["numpy", "torch", "memmap", "h5py", "rows"]


@pytest.fixture(scope="module")
def digits(mnist):
    return np.ascontiguousarray(mnist["x_train"][:150, :, :, None])


def epochs(loader, count=2):
    return [batch for _ in range(count) for batch in loader.epoch()]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", KINDS[1:])
def test_the_same_seed_serves_the_same_batches_from_every_kind_of_array(digits, kind, tmp_path):
    gen = ImageDataGenerator(rotation_range=30, zoom_range=0.2, horizontal_flip=True,
                             rescale=1 / 255, device="cpu")  # fmt: skip
    y, weights = np.arange(150) % 10, np.linspace(0.5, 1.5, 150, dtype="float32")
    expected = epochs(gen.flow(digits, y, sample_weight=weights, batch_size=32, seed=4))
    source = as_kind(kind, digits, tmp_path)
    served = epochs(gen.flow(source, y, sample_weight=weights, batch_size=32, seed=4))
    assert_same_batches(served, expected)
    # Keras's iterator API reads through the same path: batch i of the epoch, next().
    loader = gen.flow(source, y, batch_size=32, seed=4, shuffle=False, augment=False)
    np.testing.assert_array_equal(np.asarray(loader[3][1]), y[96:128])  # numpy out
    assert [len(next(loader)[0]) for _ in range(6)] == [32, 32, 32, 32, 22, 32]


@pytest.mark.parametrize("shuffle", [True, False])  # unshuffled batches are slices: views
@pytest.mark.parametrize("kind", KINDS)
def test_nothing_a_batch_goes_through_reaches_the_callers_array(digits, kind, shuffle, tmp_path):
    images = digits.astype("float32")
    for data_format, x in [("channels_last", images),
                           ("channels_first", images.transpose(0, 3, 1, 2).copy())]:  # fmt: skip
        before = x.copy()
        source = as_kind(kind, x, tmp_path)
        gen = ImageDataGenerator(transforms=[ZeroInPlace()], data_format=data_format,
                                 device="cpu")  # fmt: skip
        for batch in gen.flow(source, batch_size=40, shuffle=shuffle).epoch():
            assert not batch.any()
        np.testing.assert_array_equal(np.asarray(source[np.arange(len(x))]), before)
        np.testing.assert_array_equal(x, before)


def test_an_in_memory_array_is_used_in_place_not_copied(digits):
    x = digits.copy()
    loader = ImageDataGenerator(device="cpu").flow(x, batch_size=16)
    held = loader._source.array
    assert np.shares_memory(held, x) and not held.flags.writeable  # a read-only view
    assert x.flags.writeable  # the caller's array is left as it was
    assert loader.resident
    t = torch.from_numpy(x)
    assert ImageDataGenerator(device="cpu").flow(t)._source.array.data_ptr() == t.data_ptr()


def test_each_batch_is_one_read_of_sorted_unique_rows(digits):
    source = Rows(digits)
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow(source, np.arange(150), batch_size=32, seed=0)
    (probe,) = source.rows_read()  # the first batch's worth of rows, read up front
    np.testing.assert_array_equal(probe, np.arange(32))
    served = [y.numpy() for _, y in loader.epoch()]
    reads = source.rows_read()[1:]  # in the order the reading threads made them
    assert len(reads) == len(served) == 5  # one read per batch, no more
    assert all(np.all(np.diff(rows) > 0) for rows in reads)  # sorted and unique
    assert sorted(map(tuple, reads)) == sorted(tuple(np.sort(labels)) for labels in served)
    # Consecutive rows (an unshuffled epoch) are one slice.
    source.keys.clear()
    list(gen.flow(source, batch_size=50, shuffle=False).epoch())
    assert source.keys[0] == slice(0, 50)
    assert sorted(key.start for key in source.keys[1:]) == [0, 50, 100]
    assert all(key.stop == key.start + 50 for key in source.keys)


def test_reading_ahead_holds_a_few_batches_at_most(digits):
    source = Rows(digits)
    batch_size = 8
    loader = ImageDataGenerator(device="cpu").flow(source, batch_size=batch_size, seed=1)
    for index, _ in enumerate(loader.epoch()):
        read = sum(len(rows) for rows in source.rows_read()[1:])
        # Batches up to this one, and READ_AHEAD more, have been asked for; no others.
        assert read <= (index + 1 + READ_AHEAD) * batch_size
        assert loader._reader.queued <= READ_AHEAD
    # Jumping around (Keras's loader[i]) leaves no more than the reader's capacity queued.
    for index in [0, 10, 3, 17, 5, 11, 2, 18, 7]:
        loader[index]
    assert loader._reader.queued <= loader._reader._capacity


def test_a_memmapped_file_is_read_without_mapping_its_pages(tmp_path):
    smaps = "/proc/self/smaps"
    if not os.path.exists(smaps):
        pytest.skip("needs Linux's /proc/self/smaps")
    path = tmp_path / "big.npy"
    x = np.lib.format.open_memmap(path, mode="w+", dtype="uint8", shape=(2000, 32, 32, 3))
    x[:] = np.arange(2000, dtype="uint8")[:, None, None, None]
    x.flush()
    del x
    mapped = np.load(path, mmap_mode="r")  # 6 MB, read whole twice below
    gen = ImageDataGenerator(horizontal_flip=True, device="cpu")
    for _ in range(2):
        for batch in gen.flow(mapped, batch_size=100).epoch():
            assert len(batch)

    def resident_kb():
        total, inside = 0, False
        with open(smaps) as lines:
            for line in lines:
                if "-" in line.split()[0]:  # a mapping's header line
                    inside = line.rstrip().endswith(str(path))
                elif inside and line.startswith("Rss:"):
                    total += int(line.split()[1])
        return total

    # The file's pages never come through the mapping (one check of its first row
    # maps a few); reading it through the mapping would leave all 6 MB resident.
    assert resident_kb() <= 256
    np.asarray(mapped[::1].copy())  # the control: a read through the mapping shows up
    assert resident_kb() > 5000


@pytest.mark.parametrize(
    ("view", "read_from_file"),
    [(lambda m: m[::2], True), (lambda m: m[10:], True), (lambda m: m[::-1], True),
     (lambda m: np.asarray(m)[5:], True), (lambda m: m[:, ::2], False)],
)  # fmt: skip
def test_views_of_a_memmap_serve_what_the_view_holds(digits, tmp_path, view, read_from_file):
    np.save(tmp_path / "x.npy", digits)
    mapped = view(np.load(tmp_path / "x.npy", mmap_mode="r"))
    expected = np.ascontiguousarray(view(digits))
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow(mapped, batch_size=16, shuffle=False)
    # Rows whole in the file are read from it; a view that splits them, through the mapping.
    assert isinstance(loader._source, sources.FileSource) == read_from_file
    served = torch.cat(list(loader.epoch()))
    np.testing.assert_array_equal(served.numpy(), expected.astype("float32"))


def test_copy_on_write_and_fortran_memmaps_are_read_through_the_mapping(digits, tmp_path):
    np.save(tmp_path / "x.npy", digits)
    private = np.load(tmp_path / "x.npy", mmap_mode="c")
    private[5] = 7  # in this process only: the file still holds the digit
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(digits))
    gen = ImageDataGenerator(device="cpu")
    for mapped, expected in [(private, private), (np.load(fortran, mmap_mode="r"), digits)]:
        loader = gen.flow(mapped, batch_size=64, shuffle=False)
        assert isinstance(loader._source, sources.IndexedSource)
        served = torch.cat(list(loader.epoch())).numpy()
        np.testing.assert_array_equal(served, np.asarray(expected, dtype="float32"))


@pytest.mark.parametrize("kind", KINDS)
def test_nan_is_refused_with_the_batch_that_holds_it(digits, kind, tmp_path):
    x = digits.astype("float32")
    x[123, 4, 5, 0] = np.nan
    x[140, 0, 0, 0] = np.inf
    source = as_kind(kind, x, tmp_path)
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow(source, batch_size=10, shuffle=False)  # flow() itself reads 10 rows
    served = []
    with pytest.raises(ValueError) as error:
        for batch in loader.epoch():
            served.append(batch)
    assert len(served) == 12  # batches 0..11 are clean
    message = str(error.value)
    assert message.startswith("`x` must hold finite values only. Received: x=")
    assert "data with 1 NaN and 0 infinite values in rows [123] of x" in message
    assert "batch 12 of this epoch" in message
    # In the first batch's rows, flow() refuses it at once.
    with pytest.raises(ValueError, match=r"1 NaN and 1 infinite values in rows \[123, 140\]"):
        gen.flow(source, batch_size=150)


def test_resident_true_reads_a_file_into_memory_in_chunks(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "LOAD_BYTES", 5000)  # several chunks of 6 digits
    np.save(tmp_path / "x.npy", digits)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    gen = ImageDataGenerator(rotation_range=20, device="cpu")
    streamed = gen.flow(mapped, np.arange(150), batch_size=32, seed=2)
    loaded = gen.flow(mapped, np.arange(150), batch_size=32, seed=2, resident=True)
    assert loaded.resident and not streamed.resident and loaded._x is not None
    assert_same_batches(epochs(loaded), epochs(streamed))
    bad = digits.astype("float32")
    bad[100, 0, 0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"in rows \[100\] of x, checked as x was loaded"):
        gen.flow(np.load(tmp_path / "bad.npy", mmap_mode="r"), resident=True)


@pytest.mark.parametrize("kind", ["memmap", "h5py", "rows"])
def test_subsets_read_only_their_rows(digits, kind, tmp_path):
    y = np.arange(150)
    gen = ImageDataGenerator(validation_split=0.2, device="cpu")
    source = as_kind(kind, digits, tmp_path)
    for subset, rows in [("validation", np.arange(30)), ("training", np.arange(30, 150))]:
        loader = gen.flow(source, y, subset=subset, batch_size=16, ignore_class_split=True)
        x_served, y_served = map(torch.cat, zip(*loader.epoch(), strict=True))
        np.testing.assert_array_equal(np.sort(y_served.numpy()), rows)
        np.testing.assert_array_equal(x_served.numpy(), digits[y_served.numpy()])
    if kind == "rows":
        read = np.concatenate(source.rows_read())
        assert set(read[read < 30]) == set(range(30)) and len(read) == 150 + 16 + 16


def test_fit_and_model_fit_read_a_file_a_batch_at_a_time(digits, mnist, tmp_path):
    keras = pytest.importorskip("keras")
    h5py = h5py_or_skip()
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        handle["x"] = digits
    x = digits.astype("float32")
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                             device="cpu")  # fmt: skip
    reference = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                                   device="cpu")  # fmt: skip
    reference.fit(x)
    with h5py.File(tmp_path / "x.h5", "r") as handle:
        gen.fit(gen.flow(handle["x"], batch_size=40, augment=False))
        np.testing.assert_allclose(gen.mean, reference.mean, rtol=1e-6)
        np.testing.assert_allclose(gen.std, reference.std, rtol=1e-6)
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])  # fmt: skip
        model.compile("adam", "sparse_categorical_crossentropy")
        history = model.fit(gen.flow(handle["x"], mnist["y_train"][:150], batch_size=50),
                            epochs=1, verbose=0)  # fmt: skip
        assert np.isfinite(history.history["loss"][0])


def test_sources_that_cannot_be_read_are_refused_up_front(digits):
    class IntsOnly(Rows):
        def __getitem__(self, key):
            if not isinstance(key, int):
                raise TypeError("indices must be integers")
            return self.data[key]

    class WrongRows(Rows):
        def __getitem__(self, key):
            return self.data[key][:, :10]

    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match=r"must return its rows for x\[indices\].*Received: x="):
        gen.flow(IntsOnly(digits))
    with pytest.raises(ValueError, match=r"must return 32 rows of shape \(28, 28, 1\).*Received"):
        gen.flow(WrongRows(digits))
    text = Rows(np.full((4, 2, 2, 1), "a"))
    with pytest.raises(ValueError, match="must be a real numeric array. Received: x="):
        gen.flow(text)
    with pytest.raises(ValueError, match=r"Received: x.shape=\(150, 28, 28\)"):
        gen.flow(Rows(digits[..., 0]))


# --- property: any source, dtype and layout serves what its dense copy serves ----------

LAYOUTS = {
    "dense": lambda x: x,
    "flipped batch": lambda x: x[::-1],
    "every other row": lambda x: x[:, ::2],
    "flipped columns": lambda x: x[:, :, ::-1],
    "fortran order": np.asfortranarray,
    "big-endian": lambda x: x.astype(x.dtype.newbyteorder(">")),
}


PROPERTY = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from(["uint8", "float32"]),
    layout=st.sampled_from(sorted(LAYOUTS)),
    count=st.integers(1, 40),
    batch_size=st.integers(1, 16),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32),
    nan_at=st.one_of(st.none(), st.integers(0, 39)),
)
def test_any_source_serves_what_its_dense_copy_serves(
    census, tmp_path, kind, dtype, layout, count, batch_size, shuffle, seed, nan_at
):
    census.tried["flow sources (property)"] += 1
    if kind == "h5py":
        h5py_or_skip()
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 255, (count, 6, 5, 3)).astype(dtype)
    nan_at = None if nan_at is None or dtype == "uint8" else nan_at % count
    if nan_at is not None:
        dense[nan_at, 0, 0, 0] = np.nan  # a pixel every layout keeps
    x = LAYOUTS[layout](dense)
    expected_x = np.ascontiguousarray(x, dtype=dtype)  # what x holds, in native order
    if nan_at is not None:  # the row of x that holds it, after the layout's reordering
        (nan_at,) = np.flatnonzero(np.isnan(expected_x).reshape(count, -1).any(1))
    source = as_kind(kind, x, tmp_path)
    gen = ImageDataGenerator(device="cpu")
    arguments = dict(batch_size=batch_size, shuffle=shuffle, seed=seed % 1000)
    y = np.arange(count)
    if nan_at is not None and nan_at < batch_size:  # among the rows flow() checks
        with pytest.raises(ValueError, match=rf"in rows \[{nan_at}\] of x"):
            gen.flow(source, y, **arguments)
        return
    loader = gen.flow(source, y, **arguments)
    reference = gen.flow(expected_x, y, **arguments)
    served = []
    try:
        for (bx, by), (rx, ry) in zip(loader.epoch(), reference.epoch(), strict=True):
            served.append(by)
            assert torch.equal(by, ry) and torch.equal(bx, rx)
            np.testing.assert_array_equal(bx.numpy(), expected_x[by.numpy()].astype("float32"))
    except ValueError as error:
        assert nan_at is not None, error
        assert f"in rows [{nan_at}] of x, read for batch {len(served)} of this epoch" in str(error)
        assert nan_at in loader.index_array[len(served) * batch_size :][:batch_size]
        return
    assert nan_at is None
    assert sorted(np.concatenate(served)) == list(range(count))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_loading_a_source_whole_gives_what_its_batches_give(digits, kind, data_format, tmp_path,
                                                            monkeypatch):  # fmt: skip
    """What a GPU gets when the data fit (here onto the CPU): every source read in chunks
    into one (N, C, H, W)-contiguous tensor, wider dtypes converted as batches are."""
    monkeypatch.setattr(sources, "LOAD_BYTES", 4000)  # several chunks of 5 digits
    x = digits.astype("uint16") * 200  # widened to int32, as batches are
    x = x if data_format == "channels_last" else x.transpose(0, 3, 1, 2).copy()
    source = sources.source_of(as_kind(kind, x, tmp_path))
    whole = source.load(torch.device("cpu"), data_format)
    batch = source.gather(np.arange(len(x)), data_format)
    assert whole.dtype == batch.dtype == torch.int32 and whole.is_contiguous()
    assert whole.shape == (150, 1, 28, 28) and torch.equal(whole, batch)
    assert torch.equal(source[20:50].load(torch.device("cpu"), data_format), whole[20:50])
