"""Keras's iterator API on every loader: endless iteration, next(), reset(), loader[i],
n, batch_index, total_batches_seen, index_array, on_epoch_end(); compared with
Keras's legacy iterators."""

import os
import pathlib
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import torch
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator
from PIL import Image

from kaug import ImageDataGenerator


@pytest.fixture
def data(mnist):
    return mnist["x_train"][:10, :, :, None].astype("float32"), np.arange(10)


@pytest.fixture
def folder(mnist, tmp_path):
    root = tmp_path / "digits"
    pairs = zip(mnist["x_train"][:30], mnist["y_train"][:30], strict=True)
    for i, (image, label) in enumerate(pairs):
        (root / str(label % 3)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / str(label % 3) / f"{i:02d}.png")
    return root


def test_next_walks_epochs_like_keras(data):
    x, y = data
    ours = ImageDataGenerator(device="cpu").flow(x, y, batch_size=4, shuffle=False)
    theirs = KerasGenerator().flow(x, y, batch_size=4, shuffle=False)
    for _ in range(7):  # two epochs of 4 + 4 + 2, and one more batch
        (_, served), (_, expected) = next(ours), next(theirs)
        np.testing.assert_array_equal(served, expected)
        assert (ours.batch_index, ours.total_batches_seen) == (
            theirs.batch_index,
            theirs.total_batches_seen,
        )
    assert (ours.n, ours.batch_size, len(ours)) == (theirs.n, theirs.batch_size, len(theirs))


def test_reset_starts_a_new_epoch(data):
    x, y = data
    loader = ImageDataGenerator(device="cpu").flow(x, y, batch_size=4, shuffle=False)
    next(loader), next(loader)
    loader.reset()
    assert loader.batch_index == 0
    np.testing.assert_array_equal(next(loader)[1], y[:4])


def test_indexing_serves_batch_i_of_this_epochs_order(data):
    x, y = data
    loader = ImageDataGenerator(device="cpu").flow(x, y, batch_size=4, seed=3)
    order = loader.index_array
    assert sorted(order.tolist()) == list(range(10))
    for i in range(len(loader)):
        np.testing.assert_array_equal(loader[i][1], y[order[i * 4 : (i + 1) * 4]])
    fixed = ImageDataGenerator(device="cpu").flow(x, y, batch_size=4, augment=False)
    np.testing.assert_array_equal(fixed[1][0], fixed[1][0])  # deterministic without augmentation
    loader.on_epoch_end()
    assert not np.array_equal(loader.index_array, order)  # a fresh order
    with pytest.raises(ValueError, match="index=3"):
        loader[3]
    with pytest.raises(TypeError, match="index"):
        loader["0"]


def test_iteration_never_ends_and_epoch_is_one_epoch(data):
    x, y = data
    loader = ImageDataGenerator(device="cpu").flow(x, y, batch_size=4, seed=0)
    assert [len(b[1]) for b in loader.epoch()] == [4, 4, 2]
    served = []
    with pytest.warns(UserWarning, match="never ends"):
        for batch in loader:
            served.append(batch[1])
            if len(served) == 9:  # three epochs
                break
    assert [len(b) for b in served] == [4, 4, 2] * 3
    for epoch in range(3):
        assert sorted(np.concatenate(served[3 * epoch : 3 * epoch + 3])) == list(range(10))


def test_the_tutorial_loop_saves_eleven_images(data, tmp_path):
    """Keras's documentation loop, run as written (a script that then ends)."""
    np.save(tmp_path / "x.npy", data[0][:1])
    script = (
        "import numpy as np\n"
        "from kaug import ImageDataGenerator\n"
        "datagen = ImageDataGenerator(rotation_range=40, horizontal_flip=True)\n"
        "x = np.load('x.npy')\n"
        "i = 0\n"
        "for batch in datagen.flow(x, batch_size=1, save_to_dir='pics', save_prefix='7',\n"
        "                          save_format='jpeg'):\n"
        "    i += 1\n"
        "    if i > 10:\n"
        "        break\n"
    )
    (tmp_path / "pics").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(pathlib.Path.cwd())},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    saved = sorted(os.listdir(tmp_path / "pics"))
    assert len(saved) == 11 and all(name.startswith("7_0_") for name in saved)


def test_predict_rows_follow_classes_and_filenames_like_keras(folder):
    kwargs = dict(target_size=(28, 28), color_mode="grayscale", batch_size=7, shuffle=False)
    ours = ImageDataGenerator(rescale=1 / 255, device="cpu").flow_from_directory(
        folder, class_mode=None, num_workers=0, **kwargs
    )
    theirs = KerasGenerator(rescale=1 / 255).flow_from_directory(folder, class_mode=None, **kwargs)
    assert ours.filenames == theirs.filenames
    np.testing.assert_array_equal(ours.classes, theirs.classes)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.GlobalAveragePooling2D()])
    next(ours), next(ours)  # part way through an epoch: reset() starts over
    ours.reset()
    theirs.reset()
    np.testing.assert_allclose(
        model.predict(ours, verbose=0), model.predict(theirs, verbose=0), rtol=1e-6
    )


def test_file_loaders_speak_the_iterator_api(folder):
    loader = ImageDataGenerator(device="cpu").flow_from_directory(
        folder, target_size=(28, 28), class_mode="sparse", batch_size=8, seed=1, num_workers=0
    )
    order = loader.index_array
    for i in (2, 0):
        np.testing.assert_array_equal(loader[i][1], loader.classes[order[i * 8 :][:8]])
    assert [len(next(loader)[1]) for _ in range(5)] == [8, 8, 8, 6, 8]
    assert (loader.batch_index, loader.total_batches_seen) == (1, 5)


def test_class_weight_needs_labels_and_a_dict(data):
    x, y = data
    gen = ImageDataGenerator(device="cpu")
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile("sgd", "sparse_categorical_crossentropy")
    needs_labels = r"`class_weight` needs a loader that serves labels.*class_weight=\{0: 2.0\}"
    with pytest.raises(ValueError, match=needs_labels):
        model.fit(gen.flow(x, batch_size=4), class_weight={0: 2.0}, verbose=0)
    for bad in ({}, {0: -1.0}, {"a": 1.0}, [1.0, 2.0], {0: float("nan")}):
        with pytest.raises(ValueError, match="class_weight"):
            model.fit(gen.flow(x, y, batch_size=4), class_weight=bad, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # valid: no "ran out of data", no warning at all
        model.fit(gen.flow(x, y, batch_size=4), class_weight={3: 5.0}, verbose=0)


def test_keras_reads_the_device_tensors_with_no_host_copy(data, monkeypatch):
    """User code gets numpy for numpy data; model.fit / evaluate / predict (the Keras
    adapter) take the device tensors, including an endless `steps_per_epoch` read."""
    import kaug.data.loader

    x, y = data
    gen = ImageDataGenerator(device="cpu")
    train, images = gen.flow(x, y, batch_size=4), gen.flow(x, batch_size=4, shuffle=False)
    assert type(next(train)[0]) is np.ndarray and train.output == images.output == "numpy"

    def refuse(batch):
        raise AssertionError("a host copy on Keras's path")

    monkeypatch.setattr(kaug.data.loader, "host_batch", refuse)
    batches = list(train.get_torch_dataloader())
    assert all(isinstance(a, torch.Tensor) for batch in batches for a in batch)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(train, epochs=1, steps_per_epoch=len(train) + 2, verbose=0)  # past one epoch
    model.evaluate(train, verbose=0)
    assert model.predict(images, verbose=0).shape == (10, 10)
