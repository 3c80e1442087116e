"""The built-in MNIST sample: its content, its layout, and the rule that built it."""

import numpy as np

from kaug import datasets


def test_the_sample_has_keras_layout_and_balanced_classes():
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    assert x_train.shape == (10000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype("uint8")}
    assert np.bincount(y_train).tolist() == [1000] * 10
    assert np.bincount(y_test).tolist() == [200] * 10
    # Real digits: dark background, bright strokes, MNIST's mean ink (33.3 over the full set).
    assert x_train[:, 0, :].max() == 0 and x_train.max() == 255
    assert 30 < x_train.mean() < 37


def test_the_shipped_file_is_the_one_the_builder_made():
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    assert datasets.digest(arrays) == datasets.MNIST_SAMPLE_SHA256


def test_the_builder_takes_the_first_examples_of_each_class_in_order(tmp_path):
    rng = np.random.default_rng(0)
    labels = {name: rng.integers(0, 10, size).astype("uint8")
              for name, size in (("train", 12000), ("test", 2500))}  # fmt: skip
    full = {
        "x_train": np.arange(12000 * 4, dtype=np.int64).reshape(12000, 2, 2) % 256,
        "y_train": labels["train"],
        "x_test": np.arange(2500 * 4, dtype=np.int64).reshape(2500, 2, 2) % 256,
        "y_test": labels["test"],
    }
    np.savez(tmp_path / "full.npz", **full)
    datasets.build_mnist_sample(tmp_path / "full.npz", tmp_path / "sample.npz")
    with np.load(tmp_path / "sample.npz") as sample:
        for part, per_class in (("train", 1000), ("test", 200)):
            y = full[f"y_{part}"]
            expected = sorted(i for c in range(10) for i in np.flatnonzero(y == c)[:per_class])
            np.testing.assert_array_equal(sample[f"y_{part}"], y[expected])
            np.testing.assert_array_equal(sample[f"x_{part}"], full[f"x_{part}"][expected])


def test_the_fashion_sample_has_keras_layout_and_balanced_classes():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist_sample()
    assert x_train.shape == (3000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype("uint8")}
    assert np.bincount(y_train).tolist() == [300] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    # Real articles: Fashion-MNIST's mean level is 72.9 over the full set, far above MNIST's.
    assert 65 < x_train.mean() < 80 and x_train.max() == 255


def test_the_shipped_fashion_file_is_the_one_the_builder_made():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist_sample()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    assert datasets.digest(arrays) == datasets.SAMPLES["fashion_mnist"].sha256
