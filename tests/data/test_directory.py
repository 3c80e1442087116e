"""flow_from_directory on a class-per-folder tree of real MNIST digits, against Keras."""

import os
import warnings

import numpy as np
import pytest
import torch
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator
from PIL import Image

from kaug import ImageDataGenerator
from tests.helpers import small_cnn


@pytest.fixture(scope="module")
def tree(mnist, tmp_path_factory):
    """Classes 0, 1, 2 (+ an empty 9): PNG grayscale, JPEG RGB, a nested folder,
    a symlink, a text file, and (in class 2) one corrupt PNG."""
    root = tmp_path_factory.mktemp("digits")
    x, y = mnist["x_train"], mnist["y_train"]
    for label in (0, 1, 2):
        folder = root / str(label)
        (folder / "nested").mkdir(parents=True)
        images = x[y == label][:14]
        for i, image in enumerate(images[:8]):
            Image.fromarray(image, "L").save(folder / f"png_{i}.png")
        for i, image in enumerate(images[8:12]):
            Image.fromarray(np.stack([image, 255 - image, image // 2], -1), "RGB").save(
                folder / f"jpg_{i}.JPG", quality=95
            )
        for i, image in enumerate(images[12:]):
            Image.fromarray(image, "L").resize((40, 30)).save(folder / "nested" / f"wide_{i}.png")
        (folder / "notes.txt").write_text("not an image")
    os.symlink(root / "1" / "png_0.png", root / "1" / "link.png")
    (root / "9").mkdir()
    return root


@pytest.fixture(scope="module")
def corrupt_tree(tree, tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    for label in ("0", "1"):
        os.symlink(tree / label, root / label)
    bad = root / "broken"
    bad.mkdir()
    (bad / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(bad / "good.png")
    return root


def both(tree, generator_kwargs=None, decoder="auto", **kwargs):
    generator_kwargs = generator_kwargs or {}
    keras = KerasGenerator(**generator_kwargs).flow_from_directory(str(tree), **kwargs)
    kaug = ImageDataGenerator(**generator_kwargs, device="cpu").flow_from_directory(
        tree, num_workers=0, decoder=decoder, **kwargs
    )
    return keras, kaug


def torchvision_decoder():
    from kaug.data.decoding import torchvision_io

    if torchvision_io() is None:
        pytest.skip("torchvision.io does not import here")
    return "torchvision"


def test_listing_matches_keras(tree):
    keras, kaug = both(tree, target_size=(28, 28))
    assert kaug.class_indices == keras.class_indices == {"0": 0, "1": 1, "2": 2, "9": 3}
    assert kaug.filenames == keras.filenames
    assert kaug.filepaths == keras.filepaths
    np.testing.assert_array_equal(kaug.classes, keras.classes)
    np.testing.assert_array_equal(kaug.labels, keras.labels)
    assert kaug.samples == keras.samples == 43 and kaug.num_classes == 4
    assert kaug.image_shape == keras.image_shape == (28, 28, 3)
    assert any("nested" in name for name in kaug.filenames)
    assert "1/link.png" in kaug.filenames and not any(n.endswith(".txt") for n in kaug.filenames)


@pytest.mark.parametrize("decoder", ["auto", "pil", "torchvision"])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
@pytest.mark.parametrize("class_mode", ["categorical", "binary", "sparse", "input", None])
def test_batches_match_keras(tree, color_mode, class_mode, decoder):
    """Every decoder serves Keras's pixels: kornia-rs for the files at 28x28
    ("auto"), torchvision.io for the JPEGs, PIL for the rest (mixed batches)."""
    if decoder == "torchvision":
        torchvision_decoder()
    kwargs = dict(target_size=(28, 28), color_mode=color_mode, class_mode=class_mode,
                  batch_size=43, shuffle=False, interpolation="bilinear")  # fmt: skip
    keras, kaug = both(tree, {"rescale": 1 / 255}, decoder, **kwargs)
    expected, served = keras[0], next(iter(kaug))
    if class_mode is None:
        expected, served = (expected,), (served,)
    for ref, out in zip(expected, served, strict=True):  # numpy, as Keras served them
        assert type(out) is np.ndarray and out.dtype == np.float32 and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-6)


def test_resize_crop_and_channels_first_match_keras(tree):
    kwargs = dict(target_size=(20, 30), keep_aspect_ratio=True, batch_size=43, shuffle=False,
                  interpolation="bicubic", class_mode="sparse")  # fmt: skip
    keras, kaug = both(tree, {"data_format": "channels_first"}, **kwargs)
    out, labels = next(iter(kaug))
    assert out.shape == (43, 3, 20, 30)
    np.testing.assert_array_equal(out, keras[0][0])
    np.testing.assert_array_equal(labels, keras[0][1])


def test_subsets_split_each_class_like_keras(tree):
    for subset in ("training", "validation"):
        keras, kaug = both(tree, {"validation_split": 0.25}, target_size=(28, 28), subset=subset)
        assert kaug.filenames == keras.filenames
        np.testing.assert_array_equal(kaug.classes, keras.classes)


def test_augmentation_runs_on_the_batch(tree):
    gen = ImageDataGenerator(horizontal_flip=True, device="cpu")
    kwargs = dict(target_size=(28, 28), batch_size=43, shuffle=False, num_workers=0)
    plain = next(iter(gen.flow_from_directory(tree, augment=False, **kwargs)))[0]
    flipped = next(iter(gen.flow_from_directory(tree, seed=0, **kwargs)))[0]
    same = (flipped == plain).all(axis=(1, 2, 3))
    mirrored = (flipped == plain[:, :, ::-1]).all(axis=(1, 2, 3))
    assert np.all(same | mirrored) and 5 < int(mirrored.sum()) < 38


def test_worker_processes_serve_every_file_once_per_epoch(tree):
    loader = ImageDataGenerator(device="cpu").flow_from_directory(
        tree, target_size=(28, 28), class_mode="sparse", batch_size=4, num_workers=2, seed=1
    )
    for _ in range(2):
        labels = torch.cat([y for _, y in loader.epoch()])
        assert sorted(labels.tolist()) == sorted(loader.classes.astype(float).tolist())


def test_corrupt_files_are_skipped_with_one_warning_or_raise(corrupt_tree):
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow_from_directory(
        corrupt_tree, target_size=(28, 28), batch_size=8, num_workers=0
    )
    with pytest.warns(
        UserWarning, match=r"(?s)Skipped 1 unreadable image file.*broken/bad.png"
    ) as record:
        served = sum(len(x) for x, _ in loader.epoch())
    assert served == loader.samples - 1 and len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the next epoch leaves it out silently
        assert sum(len(x) for x, _ in loader.epoch()) == loader.samples - 1
    strict = gen.flow_from_directory(corrupt_tree, target_size=(28, 28), num_workers=0,
                                     on_error="raise")  # fmt: skip
    with pytest.raises(ValueError, match=r"Could not read image .*broken/bad.png"):
        list(strict.epoch())


def test_jpegs_decoded_on_the_device_keep_order_and_report_corrupt_files(tree, tmp_path):
    decoder = torchvision_decoder()
    for label in ("0", "1"):
        os.symlink(tree / label, tmp_path / label)
    bad = tmp_path / "broken"
    bad.mkdir()
    data = (tree / "0" / "jpg_0.JPG").read_bytes()
    (bad / "cut.jpg").write_bytes(data[: len(data) // 2])  # a JPEG header, half the pixels
    Image.fromarray(np.full((28, 28, 3), 7, np.uint8)).save(bad / "fine.jpg")
    gen = ImageDataGenerator(device="cpu")
    kwargs = dict(target_size=(28, 28), class_mode="sparse", batch_size=64, shuffle=False)
    loader = gen.flow_from_directory(tmp_path, decoder=decoder, num_workers=0, **kwargs)
    reference = gen.flow_from_directory(tmp_path, decoder="pil", num_workers=0, **kwargs)
    with pytest.warns(UserWarning, match=r"(?s)Skipped 1 unreadable image file.*broken/cut.jpg"):
        ((x, y),) = list(loader.epoch())
    with pytest.warns(UserWarning, match="broken/cut.jpg"):
        ((expected_x, expected_y),) = list(reference.epoch())
    assert len(x) == loader.samples - 1
    torch.testing.assert_close(x, expected_x, rtol=0, atol=0)
    torch.testing.assert_close(y, expected_y)
    strict = gen.flow_from_directory(
        tmp_path, decoder=decoder, num_workers=0, on_error="raise", **kwargs
    )
    with pytest.raises(ValueError, match=r"Could not read image .*broken/cut.jpg"):
        list(strict.epoch())


def test_decoder_choice_is_checked(tree, monkeypatch):
    from kaug.data import decoding

    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match="Received: decoder='gpu'"):
        gen.flow_from_directory(tree, decoder="gpu")
    monkeypatch.setattr(decoding, "torchvision_io", lambda: None)  # a broken torchvision
    with pytest.raises(ValueError, match="needs torchvision.io.*Received: decoder='torchvision'"):
        gen.flow_from_directory(tree, decoder="torchvision")
    assert len(next(iter(gen.flow_from_directory(tree, num_workers=0)))[0]) == 32  # "auto"


def test_bad_arguments_fail_up_front(tree, tmp_path):
    gen = ImageDataGenerator(device="cpu")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    for kwargs, message in [
        (dict(directory=tmp_path / "missing"), "must be an existing folder"),
        (dict(directory=tmp_path / "empty"), "holds no images"),
        (dict(directory=tree, classes=["0", "7"]), r"folders missing from .*\['7'\]"),
        (dict(directory=tree, target_size=(28,)), r"Received: target_size=\(28,\)"),
        (dict(directory=tree, target_size=(0, 28)), r"Received: target_size=\(0, 28\)"),
        (dict(directory=tree, color_mode="cmyk"), "Received: color_mode='cmyk'"),
        (dict(directory=tree, class_mode="raw"), "Received: class_mode='raw'"),
        (dict(directory=tree, interpolation="cubic"), "Received: interpolation='cubic'"),
        (dict(directory=tree, subset="training"), "needs an ImageDataGenerator"),
    ]:
        with pytest.raises(ValueError, match=message):
            gen.flow_from_directory(**kwargs)


def test_a_cnn_trains_from_flow_from_directory(mnist, tmp_path):
    import keras

    x, y = mnist["x_train"], mnist["y_train"]
    for split, part in (("train", slice(0, 200)), ("test", slice(200, 300))):
        for label in (3, 5, 8):
            folder = tmp_path / split / str(label)
            folder.mkdir(parents=True)
            for i, image in enumerate(x[y == label][part]):
                Image.fromarray(image, "L").save(folder / f"{i}.png")
    keras.utils.set_random_seed(0)
    gen = ImageDataGenerator(rotation_range=10, rescale=1 / 255)
    kwargs = dict(target_size=(28, 28), color_mode="grayscale", batch_size=32)
    train = gen.flow_from_directory(tmp_path / "train", seed=0, **kwargs)
    test = gen.flow_from_directory(tmp_path / "test", augment=False, shuffle=False, **kwargs)
    model = small_cnn(classes=3)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=4, verbose=0)
    _, accuracy = model.evaluate(test, verbose=0)
    assert accuracy > 0.85  # three classes: chance is 0.33


@pytest.fixture(scope="module")
def frame(tree):
    pandas = pytest.importorskip("pandas")
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    rows = [n for n in names if not n.endswith(".txt")] + ["0/missing.png", "1/notes.txt"]
    labels = [name.split("/")[0] for name in rows]
    return pandas.DataFrame({
        "filename": rows,
        "class": labels,
        "tags": [[label, "even" if int(label) % 2 == 0 else "odd"] for label in labels],
        "value": np.arange(len(rows), dtype="float32") / 10,
        "weight": np.linspace(0.5, 1.5, len(rows)),
    })  # fmt: skip


def both_frames(tree, frame, generator_kwargs=None, **kwargs):
    kwargs = dict(directory=str(tree), target_size=(28, 28), shuffle=False, batch_size=64, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about the two invalid rows
        keras = KerasGenerator(**(generator_kwargs or {})).flow_from_dataframe(frame, **kwargs)
        kaug = ImageDataGenerator(**(generator_kwargs or {}), device="cpu").flow_from_dataframe(
            frame, num_workers=0, **kwargs
        )
    return keras, kaug


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(class_mode="categorical"),
        dict(class_mode="sparse", classes=["2", "0"]),
        dict(class_mode="categorical", y_col="tags"),
        dict(class_mode="raw", y_col="value", weight_col="weight"),
        dict(class_mode="multi_output", y_col=["value", "weight"]),
        dict(class_mode=None),
    ],
    ids=["categorical", "sparse-classes", "multi-label", "raw-weights", "multi_output", "none"],
)
def test_dataframe_matches_keras(tree, frame, kwargs):
    keras, kaug = both_frames(tree, frame, {"rescale": 1 / 255}, **kwargs)
    assert kaug.filenames == keras.filenames and kaug.samples == keras.samples
    if kwargs["class_mode"] not in ("raw", "multi_output", None):
        assert kaug.class_indices == keras.class_indices and kaug.classes == keras.classes
    expected, served = keras[0], next(iter(kaug))
    expected = expected if isinstance(expected, tuple) else (expected,)
    served = served if isinstance(served, tuple) else (served,)
    assert len(served) == len(expected)
    for ref, out in zip(expected, served, strict=True):
        for r, o in zip(
            ref if isinstance(ref, list) else [ref],
            out if isinstance(out, list) else [out],
            strict=True,
        ):
            assert type(o) is np.ndarray
            np.testing.assert_allclose(o, r, atol=1e-6)


def test_dataframe_validation_subset_and_errors(tree, frame):
    with pytest.warns(UserWarning, match="Found 2 invalid image filename"):
        ImageDataGenerator(device="cpu").flow_from_dataframe(frame, tree, target_size=(28, 28))
    keras, kaug = both_frames(tree, frame, {"validation_split": 0.3}, subset="validation")
    assert kaug.filenames == keras.filenames
    gen = ImageDataGenerator(device="cpu")
    # Keras's exception types and words first (code catches and matches them), then kaug's.
    for kwargs, error, message in [
        (dict(x_col="path"), ValueError, "Received: column='path'"),
        (dict(class_mode="binary"), ValueError,
         r'If class_mode="binary" there must be 2 classes\. Found 3 classes\. Received:'),
        (dict(class_mode="sparse", y_col="value"), TypeError,
         r'If class_mode="sparse", y_col="value" column values must be strings\. Received:'),
        (dict(class_mode="categorical", y_col="value"), TypeError,
         "column values must be type string, list or tuple"),
        (dict(class_mode="multi_output", y_col="value"), TypeError,
         r'If class_mode="multi_output", y_col must be a list\. Received str\. '
         r"Received: y_col='value'"),
        (dict(class_mode="raw", y_col="value", weight_col="class"), TypeError,
         r"Column weight_col=class must be numeric\. Received: weight_col='class'"),
        (dict(x_col="value"), TypeError, "All values in column x_col=value must be strings"),
    ]:  # fmt: skip
        with pytest.raises(error, match=message):
            gen.flow_from_dataframe(frame, tree, target_size=(28, 28), **kwargs)


def test_default_worker_count():
    from kaug.data.directory import default_workers

    assert default_workers(4000, 64, (28, 28), cpus=2) == 0  # small images, few cores
    assert default_workers(4000, 64, (28, 28), cpus=16) == 4
    assert default_workers(4000, 32, (224, 224), cpus=2) == 2
    assert default_workers(100, 64, (224, 224), cpus=16) == 0  # under 4 batches of files


@pytest.mark.filterwarnings("ignore:Found 2 invalid image filename")
def test_keras_deprecated_dataframe_arguments_warn_like_keras(tree, frame):
    """Keras 3's legacy class takes them with a DeprecationWarning; "other" is "raw"."""
    gen = ImageDataGenerator(device="cpu")
    kwargs = dict(directory=tree, target_size=(28, 28), num_workers=0)
    for name, value, message in [
        ("has_ext", True, "has_ext is deprecated, filenames in the dataframe have to match"),
        ("has_ext", False, "has_ext is deprecated"),
        ("sort", False, "sort is deprecated, batches will be created in the"),
        ("drop_duplicates", True, "drop_duplicates is deprecated, you can drop duplicates"),
    ]:
        with pytest.warns(DeprecationWarning, match=message) as record:
            loader = gen.flow_from_dataframe(frame, **kwargs, **{name: value})
        assert record[0].filename == __file__  # it points at the call
        assert loader.samples == len(frame) - 2
    with pytest.warns(DeprecationWarning, match='`class_mode="other"` is deprecated, please use'):
        other = gen.flow_from_dataframe(frame, y_col="value", class_mode="other", **kwargs)
    raw = gen.flow_from_dataframe(frame, y_col="value", class_mode="raw", **kwargs)
    assert other.class_mode == "raw"
    np.testing.assert_array_equal(other.labels, raw.labels)
    with pytest.raises(TypeError, match="unexpected keyword argument 'hsa_ext'"):
        gen.flow_from_dataframe(frame, hsa_ext=True, **kwargs)  # a typo is not ignored


def test_a_dataframe_of_missing_files_gives_an_empty_loader_like_keras(tmp_path):
    """Keras's test: class_indices follow `classes` even when no file exists."""
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame([["data/A.jpg", "A"], ["data/B.jpg", "B"]],
                             columns=["filename", "class"])  # fmt: skip
    gen = ImageDataGenerator(device="cpu")
    with pytest.warns(UserWarning, match="Found 2 invalid image filename"):
        forward = gen.flow_from_dataframe(frame, directory=tmp_path, classes=["A", "B"])
    with pytest.warns(UserWarning, match="Found 2 invalid image filename"):
        backward = gen.flow_from_dataframe(frame, directory=tmp_path, classes=["B", "A"])
    assert forward.class_indices == {"A": 0, "B": 1} and backward.class_indices == {"B": 0, "A": 1}
    assert forward.n == forward.samples == len(forward) == 0
    assert forward.filenames == [] and len(forward.classes) == 0
    assert list(forward.epoch()) == []
    for serve in (lambda: next(forward), lambda: next(iter(forward))):
        with pytest.raises(ValueError, match="holds no images.*Received: n=0"):
            serve()  # Keras served empty batches without end: a `for` loop never ended
    with pytest.raises(ValueError, match="index=0"):
        forward[0]


@pytest.mark.filterwarnings("ignore:Found 2 invalid image filename")
def test_dataframe_batches_are_numpy_unless_asked(tree, frame):
    gen = ImageDataGenerator(device="cpu")
    kwargs = dict(directory=tree, target_size=(28, 28), num_workers=0, batch_size=4)
    x, y, w = next(gen.flow_from_dataframe(frame, y_col="value", weight_col="weight",
                                           class_mode="raw", **kwargs))  # fmt: skip
    assert [type(a) for a in (x, y, w)] == [np.ndarray] * 3
    x, y = next(gen.flow_from_dataframe(frame, output="torch", **kwargs))
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    with pytest.raises(ValueError, match="Received: output='tf'"):
        gen.flow_from_directory(tree, output="tf")


def test_pandas_read_only_columns_raise_no_torch_warning(tree, frame, tmp_path):
    """pandas 3's columns are read-only arrays; torch warns (once a process) when
    handed one. A fresh process, warnings as errors."""
    import subprocess
    import sys

    from tests.helpers import script_env

    frame.to_pickle(tmp_path / "frame.pkl")
    script = (
        "import warnings, pandas\n"
        "from kaug import ImageDataGenerator\n"
        "frame = pandas.read_pickle('frame.pkl')\n"
        "warnings.filterwarnings('error', message='.*not writable')\n"
        "warnings.filterwarnings('ignore', message='Found 2 invalid')\n"
        f"loader = ImageDataGenerator(device='cpu').flow_from_dataframe(frame, {str(tree)!r},\n"
        "    y_col='value', weight_col='weight', class_mode='raw', target_size=(28, 28),\n"
        "    num_workers=0)\n"
        "x, y, w = next(loader)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, env=script_env(KERAS_BACKEND="torch"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
