"""flow(): the DataLoader, its batches, epochs, seeds, subsets and save_to_dir."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from kaug import ImageDataGenerator
from kaug.data import ArrayLoader


@pytest.fixture(scope="module")
def data(mnist):
    x = mnist["x_train"][:100, :, :, None]
    return x, mnist["y_train"][:100]


def labels_served(loader):
    """The y of every batch of one epoch, concatenated."""
    return torch.cat([batch[1] for batch in loader.epoch()]).numpy()


def test_flow_returns_a_dataloader_with_keras_batches(data):
    x, y = data
    gen = ImageDataGenerator(rotation_range=10, rescale=1 / 255, device="cpu")
    loader = gen.flow(x, y, batch_size=32)
    assert isinstance(loader, torch.utils.data.DataLoader) and isinstance(loader, ArrayLoader)
    assert len(loader) == 4 and loader.batch_size == 32 and len(loader.dataset) == 100
    batches = list(loader.epoch())
    assert [len(b[0]) for b in batches] == [32, 32, 32, 4]  # partial last batch
    bx, by = batches[0]  # epoch(): the device tensors
    assert bx.shape == (32, 28, 28, 1) and bx.dtype == torch.float32 and bx.device.type == "cpu"
    assert by.dtype == torch.uint8 and 0 <= bx.min() and bx.max() <= 1 + 1e-5
    assert sorted(labels_served(loader)) == sorted(y)


def test_output_structures_follow_keras(data):
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    only_x = next(iter(gen.flow(x, batch_size=8)))
    assert type(only_x) is np.ndarray and only_x.shape == (8, 28, 28, 1)
    weights = np.arange(100, dtype="float32")
    bx, by, bw = next(iter(gen.flow(x, y, sample_weight=weights, batch_size=8)))
    assert bw.dtype == np.float32 and len(bw) == 8
    misc = np.arange(100) * 2
    (images, served_misc), labels = next(iter(gen.flow((x, misc), y, batch_size=8, shuffle=False)))
    np.testing.assert_array_equal(served_misc, misc[:8])
    np.testing.assert_array_equal(images, x[:8].astype("float32"))
    # Keras's NumpyArrayIterator: x alone with misc inputs is a list [images, misc]
    served = next(gen.flow((x, [misc, misc + 1]), batch_size=3, shuffle=False))
    assert type(served) is list and [type(a) for a in served] == [np.ndarray] * 3
    np.testing.assert_array_equal(served[2], misc[:3] + 1)


KERAS_HABITS = {  # what Keras's own tests and tutorials do with a served batch
    "np.mean(batch)": lambda b: np.mean(b),
    "np.mean(batch, axis=0)": lambda b: np.mean(b, axis=0),
    "batch.astype": lambda b: b.astype("float64"),
    "batch[i].reshape(28, 28)": lambda b: b[0].reshape(28, 28),
    "np.std(batch)": lambda b: np.std(b),
}


@pytest.mark.parametrize("habit", KERAS_HABITS, ids=list(KERAS_HABITS))
def test_numpy_data_is_served_as_numpy_arrays(data, habit):
    """Keras served numpy: `next`, `for` and `loader[i]` give C-contiguous arrays."""
    x, y = data
    loader = ImageDataGenerator(rotation_range=10, device="cpu").flow(x, y, batch_size=9)
    assert loader.output == "numpy"
    for bx, by in (next(loader), next(iter(loader)), loader[0]):
        assert type(bx) is np.ndarray and type(by) is np.ndarray
        assert bx.flags.c_contiguous and bx.dtype == np.float32 and by.dtype == y.dtype
        KERAS_HABITS[habit](bx)


def test_tensor_data_stays_on_the_device_and_output_chooses(data):
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    tensors = gen.flow(torch.from_numpy(x), torch.from_numpy(y), batch_size=8)
    assert tensors.output == "torch"
    assert all(isinstance(a, torch.Tensor) for a in next(tensors))
    chosen = gen.flow(x, y, batch_size=8, output="torch")
    assert all(isinstance(a, torch.Tensor) for a in (*next(chosen), *chosen[1]))
    as_numpy = gen.flow(torch.from_numpy(x), batch_size=8, output="numpy")
    assert type(next(as_numpy)) is np.ndarray
    # one epoch for PyTorch-style loops: the device tensors, whatever `output` says
    assert all(isinstance(b[0], torch.Tensor) for b in gen.flow(x, y, batch_size=40).epoch())
    with pytest.raises(ValueError, match="Received: output='jax'"):
        gen.flow(x, output="jax")


def test_served_arrays_are_the_callers_to_change(data):
    """Keras's batches were fresh arrays: changing one reaches nothing else."""
    x, y = data
    loader = ImageDataGenerator(device="cpu").flow(x, y, batch_size=10, shuffle=False)
    first, labels = loader[0]
    first += 1000
    labels[:] = 0
    again, labels_again = loader[0]
    np.testing.assert_array_equal(again, x[:10])
    np.testing.assert_array_equal(labels_again, y[:10])
    np.testing.assert_array_equal(x, data[0])


def test_keras_length_errors_keep_keras_words(data):
    """Keras's own tests match these texts; kaug's detail follows them."""
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match=r"^All of the arrays in `x` should have the same "
                                         r"length\. .*len\(x\[\?\]\) = 101.*Received: "):
        gen.flow((x, np.zeros(101)), y)
    with pytest.raises(ValueError, match=r"^`x` \(images tensor\) and `y` \(labels\) should "
                                         r"have the same length\. .*Received: y.shape=\(99,\)"):
        gen.flow(x, y[:99])
    with pytest.raises(ValueError, match=r"^`x` \(images tensor\) and `sample_weight` should "
                                         r"have the same length.*Received: sample_weight"):
        gen.flow(x, y, sample_weight=np.ones(3))


def test_batches_keep_images_labels_and_weights_aligned(data):
    x, y = data
    gen = ImageDataGenerator(horizontal_flip=True, rescale=2.0, device="cpu")
    weights = np.arange(100, dtype="float32")
    originals = x.astype("float32") * 2.0
    for bx, by, bw in gen.flow(x, y, sample_weight=weights, batch_size=16, seed=1).epoch():
        for image, label, weight in zip(bx.numpy(), by.numpy(), bw.numpy(), strict=True):
            source = originals[int(weight)]
            assert label == y[int(weight)]
            assert np.array_equal(image, source) or np.array_equal(image, source[:, ::-1])


def test_every_epoch_reshuffles_and_redraws(data):
    x, y = data
    gen = ImageDataGenerator(rotation_range=30, device="cpu")
    loader = gen.flow(x, np.arange(100), batch_size=25, seed=0)
    first, second = labels_served(loader), labels_served(loader)
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    ordered = gen.flow(x, batch_size=100, shuffle=False)
    epoch1, epoch2 = next(iter(ordered)), next(iter(ordered))
    assert not np.array_equal(epoch1, epoch2)  # same images, new augmentations


def test_seed_makes_a_fresh_loader_repeat_itself(data):
    x, y = data
    gen = ImageDataGenerator(rotation_range=30, width_shift_range=0.1, device="cpu")

    def two_epochs(loader):
        return [b[0] for _ in range(2) for b in loader.epoch()]

    a = two_epochs(gen.flow(x, y, batch_size=40, seed=7))
    b = two_epochs(gen.flow(x, y, batch_size=40, seed=7))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    c = two_epochs(gen.flow(x, y, batch_size=40, seed=8))
    assert not torch.equal(a[0], c[0])


def test_host_resident_data_gives_the_same_batches(data):
    x, y = data
    gen = ImageDataGenerator(rotation_range=30, zoom_range=0.2, device="cpu")
    on_device = gen.flow(x, y, batch_size=30, seed=3, resident=True)
    on_host = gen.flow(x, y, batch_size=30, seed=3, resident=False)
    assert on_device.resident and not on_host.resident
    for (dx, dy), (hx, hy) in zip(on_device.epoch(), on_host.epoch(), strict=True):
        assert torch.equal(dy, hy)
        torch.testing.assert_close(dx, hx)


def test_augment_false_serves_standardized_data(data):
    x, y = data
    gen = ImageDataGenerator(
        rotation_range=90, samplewise_center=True, rescale=1 / 255, device="cpu"
    )
    bx, _ = next(iter(gen.flow(x, y, batch_size=100, shuffle=False, augment=False)))
    np.testing.assert_allclose(bx, gen.standardize(x), atol=1e-6)


def test_channels_first(data):
    x, y = data
    gen = ImageDataGenerator(data_format="channels_first", rotation_range=10, device="cpu")
    bx, _ = next(iter(gen.flow(x.transpose(0, 3, 1, 2), y, batch_size=8)))
    assert bx.shape == (8, 1, 28, 28)


def test_next_serves_batches_forever_like_keras(data):
    x, _ = data
    loader = ImageDataGenerator(device="cpu").flow(x, batch_size=40)
    sizes = [len(next(loader)) for _ in range(7)]
    assert sizes == [40, 40, 20, 40, 40, 20, 40]


def test_validation_subsets_split_like_keras(mnist):
    x, y = mnist["x_train"][:200, :, :, None], mnist["y_train"][:200]
    gen = ImageDataGenerator(validation_split=0.25, device="cpu")
    val = gen.flow(x, np.arange(200), batch_size=200, subset="validation", ignore_class_split=True)
    train = gen.flow(x, np.arange(200), batch_size=200, subset="training", ignore_class_split=True)
    np.testing.assert_array_equal(np.sort(labels_served(val)), np.arange(50))  # first 25 %
    np.testing.assert_array_equal(np.sort(labels_served(train)), np.arange(50, 200))
    gen.flow(x, y, subset="training")  # same classes on both sides: fine
    sorted_labels = np.sort(y)
    with pytest.raises(ValueError, match="different number of classes"):
        gen.flow(x, sorted_labels, subset="validation")
    gen.flow(x, sorted_labels, subset="validation", ignore_class_split=True)
    with pytest.warns(UserWarning, match="without `subset`"):
        gen.flow(x, y)


def test_bad_flow_arguments_fail_before_any_work(data, tmp_path):
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    cases = [
        (dict(x=x[0]), r"Received: x.shape=\(28, 28, 1\)"),
        (dict(x=x, y=y[:10]), r"Received: y.shape=\(10,\), len\(x\)=100"),
        (dict(x=x, sample_weight=np.ones(3)), r"Received: sample_weight.shape=\(3,\)"),
        (dict(x=x, subset="testing"), "Received: subset='testing'"),
        (
            dict(x=x, subset="training"),
            "needs an ImageDataGenerator created with `validation_split`",
        ),
        (dict(x=x, batch_size=0), "Received: batch_size=0"),
        (dict(x=x, save_to_dir=tmp_path, save_format="nope"), "Received: save_format='nope'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            gen.flow(**kwargs)
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with pytest.raises(ValueError, match="must be a writable folder"):
        gen.flow(x, save_to_dir=blocked / "inside")


@pytest.mark.parametrize("save_format", ["png", "jpeg"])
def test_save_to_dir_writes_every_served_image(data, tmp_path, save_format):
    x, y = data
    gen = ImageDataGenerator(rotation_range=20, device="cpu")
    loader = gen.flow(x[:50], y[:50], batch_size=16, save_to_dir=tmp_path, save_prefix="aug",
                      save_format=save_format)  # fmt: skip
    served = list(loader.epoch())  # the epoch's end waits for the writer
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 50 and sum(len(b[0]) for b in served) == 50
    indices = sorted(int(name.split("_")[1]) for name in names)
    assert indices == list(range(50))
    for name in names:
        assert name.startswith("aug_") and name.endswith("." + save_format)
        with Image.open(tmp_path / name) as image:
            assert image.size == (28, 28) and image.mode == "L"
            # Each image is min-max scaled, as Keras saves them (JPEG is lossy).
            assert np.asarray(image).max() >= (255 if save_format == "png" else 230)


def test_writer_errors_surface_in_the_training_loop(tmp_path):
    rgba = np.random.default_rng(0).uniform(0, 255, (20, 8, 8, 4)).astype("float32")
    loader = ImageDataGenerator(device="cpu").flow(
        rgba,
        batch_size=5,
        save_to_dir=tmp_path,
        save_format="jpeg",  # JPEG has no alpha
    )
    with pytest.raises(OSError, match="could not save an augmented image"):
        list(loader.epoch())


def test_preview_grid(data, tmp_path):
    x, _ = data
    gen = ImageDataGenerator(rotation_range=45, device="cpu")
    path = tmp_path / "grid.png"
    grid = gen.preview(x, n=9, path=path, seed=0)
    assert grid.shape == (3 * 30 + 2, 3 * 30 + 2, 1) and grid.dtype == np.uint8
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), grid[..., 0])
    np.testing.assert_array_equal(grid, gen.preview(x, n=9, seed=0))
    assert gen.preview(x, n=4).shape == (2 * 30 + 2, 2 * 30 + 2, 1)


def test_an_empty_flow_is_refused_instead_of_serving_an_empty_batch(data):
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match=r"`x` must hold an image"):
        gen.flow(x[:0], y[:0])
    split = ImageDataGenerator(validation_split=0.2, device="cpu")
    with pytest.raises(ValueError, match="'validation' subset is empty"):
        split.flow(x[:3], subset="validation")
    # Every served batch holds images, however the sizes divide.
    for count in (1, 5, 32, 33):
        sizes = [len(b) for b in gen.flow(x[:count], batch_size=8).epoch()]
        assert 0 not in sizes and sum(sizes) == count


def test_next_is_thread_safe_like_keras(data):
    """Keras's iterators lock `next`; threads sharing a loader get whole, distinct batches."""
    import threading

    x, y = data
    loader = ImageDataGenerator(device="cpu").flow(x, np.arange(100), batch_size=10, seed=0)
    served, errors = [], []

    def take():
        try:
            for _ in range(10):
                served.append(next(loader)[1])
        except Exception as error:  # "generator already executing" before the lock
            errors.append(error)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    labels = np.concatenate(served)
    assert len(served) == 40 and len(labels) == 400
    assert all(np.bincount(labels, minlength=100) == 4)  # four whole epochs, none repeated
