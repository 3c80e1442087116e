"""The small real dataset kaug ships: 12,000 MNIST digits, as sklearn ships its digits.

`load_mnist_sample()` returns Keras's MNIST layout (uint8 (N, 28, 28) images, uint8
labels), 10,000 training and 2,000 test digits: the first 1,000 training and the
first 200 test digits of each class, in their original order. Enough to train a
CNN to about 98 % on a laptop CPU in seconds, and to test against real digits on
a machine that is offline.

MNIST: Yann LeCun and Corinna Cortes, http://yann.lecun.com/exdb/mnist/, under
the Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0). The
sample is built from the full `mnist.npz` by `build_mnist_sample` (the script is
`python -m kaug.datasets FULL.npz`); see `kaug/_data/README.md`.
"""

import argparse
import hashlib
import pathlib

import numpy as np

MNIST_SAMPLE = pathlib.Path(__file__).resolve().parent / "_data" / "mnist_sample.npz"
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
# sha256 of the four arrays' bytes, in key order: the shipped file is the one built.
MNIST_SAMPLE_SHA256 = "3b6b55f14caec9fb6650f2a44b70bf521cbc2640553af3d1dc727577be481e6d"


def load_mnist_sample():
    """The built-in MNIST sample, in Keras's `mnist.load_data()` layout.

    Returns:
        ((x_train, y_train), (x_test, y_test)): uint8 arrays, images (N, 28, 28),
        10,000 training and 2,000 test digits (1,000 and 200 per class).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist_sample()
        >>> x_train.shape, x_test.shape
        ((10000, 28, 28), (2000, 28, 28))
    """
    with np.load(MNIST_SAMPLE, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def sample_indices(labels, per_class):
    """Indices of the first `per_class` examples of each class, in their original order."""
    labels = np.asarray(labels)
    chosen = [np.flatnonzero(labels == label)[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def build_mnist_sample(source, destination=MNIST_SAMPLE):
    """Write the sample of the full MNIST `source` npz (Keras layout) to `destination`."""
    with np.load(source, allow_pickle=False) as full:
        train = sample_indices(full["y_train"], TRAIN_PER_CLASS)
        test = sample_indices(full["y_test"], TEST_PER_CLASS)
        arrays = {
            "x_train": full["x_train"][train], "y_train": full["y_train"][train],
            "x_test": full["x_test"][test], "y_test": full["y_test"][test],
        }  # fmt: skip
    with open(destination, "wb") as file:
        np.savez_compressed(file, **arrays)
    return digest(arrays)


def digest(arrays):
    """sha256 over the arrays' shapes, dtypes and bytes, in key order."""
    hasher = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        hasher.update(f"{key}{array.shape}{array.dtype}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def main():
    parser = argparse.ArgumentParser(description="Build kaug's MNIST sample from the full npz.")
    parser.add_argument("source", help="the full MNIST npz (Keras layout)")
    parser.add_argument("--out", default=str(MNIST_SAMPLE), help="where to write the sample")
    args = parser.parse_args()
    print(build_mnist_sample(args.source, args.out))


if __name__ == "__main__":
    main()
