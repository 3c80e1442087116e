"""Shared fixtures: the Keras backend, real MNIST digits, small RGB images."""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:  # before anything imports TensorFlow: the other order aborts (kaug.data.decoding)
    import torchvision.io  # noqa: E402, F401
except Exception:  # missing or broken: kaug's tests of it skip
    pass

DATA_DIR = pathlib.Path(
    os.environ.get("KAUG_DATA_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
)


def load_npz(name):
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set KAUG_DATA_DIR)")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def mnist():
    """The Keras MNIST arrays (uint8), from ../shared/data/mnist.npz."""
    return load_npz("mnist.npz")


@pytest.fixture(scope="session")
def digits(mnist):
    """64 real training digits as float32, (64, 28, 28, 1), values 0..255."""
    return mnist["x_train"][:64, :, :, None].astype("float32")


@pytest.fixture(scope="session")
def rgb_images(mnist):
    """16 3-channel 32x32 images built from real digits: distinct content per channel."""
    x = mnist["x_train"][64:112].astype("float32")
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    rgb = np.stack([x[0::3], x[1::3].T.transpose(2, 0, 1), 255 - x[2::3]], axis=-1)
    return np.ascontiguousarray(rgb)
