"""MNIST for the examples: a local npz, Keras's download, or an offline stand-in.

Order: `--data PATH`, then `$KAUG_MNIST`, then `keras.datasets.mnist.load_data()`;
when none can be had (offline), scikit-learn's bundled 8x8 handwritten digits,
scaled up to 28x28, with a printed notice.
"""

import argparse
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402


def load_mnist(path=None):
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28, 1), int labels."""
    path = path or os.environ.get("KAUG_MNIST")
    if path:
        with np.load(path) as data:
            print(f"MNIST from {path}")
            return _shaped(data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        print("MNIST from keras.datasets")
        return _shaped(x_train, y_train, x_test, y_test)
    except Exception as error:  # offline: any download failure
        print(f"Could not load MNIST ({type(error).__name__}); using scikit-learn's bundled")
        print("8x8 digits instead, scaled up to 28x28 (1,797 images: expect lower accuracy).")
    return _sklearn_digits()


def _shaped(x_train, y_train, x_test, y_test):
    return (x_train[..., None], y_train.astype("int64")), (
        x_test[..., None],
        y_test.astype("int64"),
    )


def _sklearn_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # 8x8 -> 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))) * (255 / 16)
    x, y = images.round().astype("uint8")[..., None], digits.target.astype("int64")
    split = int(0.8 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def parse_args(description, **extra):
    """The examples' common command line: --data, --out, plus `extra` options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", help="local mnist.npz (default: $KAUG_MNIST, then Keras)")
    parser.add_argument("--out", default="out", help="folder for the PNG grids (default: out)")
    for name, (default, help_text) in extra.items():
        parser.add_argument(f"--{name}", type=type(default), default=default, help=help_text)
    args = parser.parse_args()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    return args
