"""MNIST for the examples: a local npz, Keras's cached download, or kaug's built-in sample.

Order: `--data PATH`, then `$KAUG_MNIST`, then Keras's cache of
`keras.datasets.mnist.load_data()` (~/.keras/datasets/mnist.npz) if an earlier
online run left one; else kaug's built-in sample of real digits (10,000 training
and 2,000 test), with a line saying so. Nothing is downloaded.
"""

import argparse
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

from kaug.datasets import load_mnist_sample  # noqa: E402


def keras_cache():
    """Where `keras.datasets.mnist.load_data()` keeps its download."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "datasets" / "mnist.npz"


# Grids show each image about this many pixels wide, as `kaug preview` draws them.
GRID_PIXELS = 96


def grid_scale(images):
    """The `preview(..., scale=)` that draws (N, H, W, ...) images about GRID_PIXELS wide."""
    return max(1, GRID_PIXELS // max(images.shape[1:3]))


def find_mnist(path=None):
    """((x_train, y_train), (x_test, y_test)) exactly as `keras.datasets.mnist.load_data()`
    returns them (uint8 (N, 28, 28) images, uint8 labels), from `path`, $KAUG_MNIST,
    Keras's cache or kaug's built-in sample, saying which."""
    path = (
        path or os.environ.get("KAUG_MNIST") or (keras_cache() if keras_cache().exists() else None)
    )
    if path:
        with np.load(path) as data:
            print(f"MNIST from {path}: {len(data['x_train'])} training digits")
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    print(
        "Training on kaug's built-in MNIST sample: 10,000 training and 2,000 test digits.\n"
        "For all 60,000: --data path/to/mnist.npz (or $KAUG_MNIST); an online "
        "keras.datasets.mnist.load_data() leaves one in ~/.keras/datasets."
    )
    return load_mnist_sample()


def load_mnist(path=None):
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28, 1), int labels."""
    (x_train, y_train), (x_test, y_test) = find_mnist(path)
    return keras_layout(x_train, y_train, x_test, y_test)


def keras_layout(x_train, y_train, x_test, y_test):
    """The examples' layout: images with a channel axis (N, 28, 28, 1), int64 labels."""
    return (x_train[..., None], y_train.astype("int64")), (
        x_test[..., None],
        y_test.astype("int64"),
    )


def parse_args(description, **extra):
    """The examples' common command line: --data, --out, plus `extra` options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data", help="local mnist.npz (default: $KAUG_MNIST, Keras's cache, kaug's sample)"
    )
    parser.add_argument("--out", default="out", help="folder for the PNG grids (default: out)")
    for name, (default, help_text) in extra.items():
        parser.add_argument(f"--{name}", type=type(default), default=default, help=help_text)
    args = parser.parse_args()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    return args
