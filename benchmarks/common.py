"""What the benchmark scripts share: their data, the classic augmentation suite, a CNN.

Imported by the scripts as `common` (they run as `python benchmarks/NAME.py`, which
puts this folder on the path).
"""

import pathlib

import numpy as np

# The classic augmentation suite every throughput comparison runs.
SUITE = dict(rotation_range=90, width_shift_range=0.2, height_shift_range=0.2,
             horizontal_flip=True, vertical_flip=True)  # fmt: skip
SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def default_data():
    """The full MNIST beside the checkout (../shared/data) if there is one, else kaug's
    built-in sample (12,000 real digits): every script runs on a bare clone."""
    if SHARED_MNIST.exists():
        return str(SHARED_MNIST)
    from kaug.datasets import MNIST_SAMPLE

    return str(MNIST_SAMPLE)


def load_mnist(path, train=None, test=None):
    """(x_train, y_train, x_test, y_test) of a Keras-layout npz, uint8, images (N, 28, 28),
    cut to the first `train` and `test` examples."""
    with np.load(path) as data:
        return (data["x_train"][:train], data["y_train"][:train],
                data["x_test"][:test], data["y_test"][:test])  # fmt: skip


def small_cnn(filters=(32, 64), rescale=False, input_shape=(28, 28, 1)):
    """Keras's "simple MNIST convnet" without dropout; `rescale` adds a 1/255 layer."""
    import keras

    layers = [keras.Input(input_shape)]
    if rescale:
        layers.append(keras.layers.Rescaling(1 / 255))
    for count in filters:
        layers += [keras.layers.Conv2D(count, 3, activation="relu"), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    return keras.Sequential(layers)
