"""The small real datasets kaug ships, as sklearn ships its digits: 12,000 MNIST digits
and 4,000 Fashion-MNIST articles.

`load_mnist_sample()` and `load_fashion_mnist_sample()` return Keras's layout (uint8
(N, 28, 28) images, uint8 labels), the first examples of each class of the full
sets, in their original order:

- MNIST: 10,000 training and 2,000 test digits (1,000 and 200 per class). Enough
  to train a CNN to about 98 % on a laptop CPU in seconds, and to test against
  real digits on a machine that is offline. Yann LeCun and Corinna Cortes,
  http://yann.lecun.com/exdb/mnist/, CC BY-SA 3.0.
- Fashion-MNIST: 3,000 training and 1,000 test images (300 and 100 per class).
  Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research),
  https://github.com/zalandoresearch/fashion-mnist, MIT licence.

Each sample is built from the full Keras-layout npz by `build_sample`
(`python -m kaug.datasets FULL.npz --dataset mnist|fashion_mnist`); see
`kaug/_data/README.md`.
"""

import argparse
import dataclasses
import hashlib
import pathlib

import numpy as np

DATA = pathlib.Path(__file__).resolve().parent / "_data"


@dataclasses.dataclass(frozen=True)
class Sample:
    """A shipped sample: its file, how many examples of each class it keeps, and the
    sha256 of its arrays (`digest`), so the file is the one the builder made."""

    path: pathlib.Path
    train_per_class: int
    test_per_class: int
    sha256: str


SAMPLES = {
    "mnist": Sample(
        DATA / "mnist_sample.npz",
        1000,
        200,
        "3b6b55f14caec9fb6650f2a44b70bf521cbc2640553af3d1dc727577be481e6d",
    ),
    "fashion_mnist": Sample(
        DATA / "fashion_mnist_sample.npz",
        300,
        100,
        "7a5a3ea3acfdfc09b3415f983c1f221d9f50c3f6f038e84d0cb3487a8acd973f",
    ),
}
MNIST_SAMPLE = SAMPLES["mnist"].path
MNIST_SAMPLE_SHA256 = SAMPLES["mnist"].sha256
FASHION_MNIST_SAMPLE = SAMPLES["fashion_mnist"].path


def load_sample(name):
    """((x_train, y_train), (x_test, y_test)) of the shipped sample `name`."""
    with np.load(SAMPLES[name].path, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


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
    return load_sample("mnist")


def load_fashion_mnist_sample():
    """The built-in Fashion-MNIST sample, in Keras's `fashion_mnist.load_data()` layout.

    Returns:
        ((x_train, y_train), (x_test, y_test)): uint8 arrays, images (N, 28, 28),
        3,000 training and 1,000 test images (300 and 100 per class).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist_sample()
        >>> x_train.shape, x_test.shape
        ((3000, 28, 28), (1000, 28, 28))
    """
    return load_sample("fashion_mnist")


def sample_indices(labels, per_class):
    """Indices of the first `per_class` examples of each class, in their original order."""
    labels = np.asarray(labels)
    chosen = [np.flatnonzero(labels == label)[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def build_sample(source, destination, train_per_class, test_per_class):
    """Write the first examples of each class of the full `source` npz (Keras layout)
    to `destination`; returns the arrays' sha256 (`digest`)."""
    with np.load(source, allow_pickle=False) as full:
        train = sample_indices(full["y_train"], train_per_class)
        test = sample_indices(full["y_test"], test_per_class)
        arrays = {
            "x_train": full["x_train"][train], "y_train": full["y_train"][train],
            "x_test": full["x_test"][test], "y_test": full["y_test"][test],
        }  # fmt: skip
    with open(destination, "wb") as file:
        np.savez_compressed(file, **arrays)
    return digest(arrays)


def build_mnist_sample(source, destination=MNIST_SAMPLE):
    """Write the MNIST sample of the full MNIST `source` npz to `destination`."""
    sample = SAMPLES["mnist"]
    return build_sample(source, destination, sample.train_per_class, sample.test_per_class)


def digest(arrays):
    """sha256 over the arrays' shapes, dtypes and bytes, in key order."""
    hasher = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        hasher.update(f"{key}{array.shape}{array.dtype}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def main():
    parser = argparse.ArgumentParser(description="Build a kaug sample from the full npz.")
    parser.add_argument("source", help="the full dataset's npz (Keras layout)")
    parser.add_argument("--dataset", choices=sorted(SAMPLES), default="mnist")
    parser.add_argument("--out", help="where to write the sample (default: kaug's own file)")
    args = parser.parse_args()
    sample = SAMPLES[args.dataset]
    destination = args.out or sample.path
    print(build_sample(args.source, destination, sample.train_per_class, sample.test_per_class))


if __name__ == "__main__":
    main()
