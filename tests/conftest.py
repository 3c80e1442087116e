"""Shared fixtures: the Keras backend, real MNIST digits, small RGB images.

The digits are kaug's built-in MNIST sample (10,000 training and 2,000 test
digits), so a bare clone runs every test on real data, offline.
"""

import collections
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:  # before anything imports TensorFlow: the other order aborts (kaug.data.decoding)
    import torchvision.io  # noqa: E402, F401
except Exception:  # missing or broken: kaug's tests of it skip
    pass

from kaug.datasets import MNIST_SAMPLE  # noqa: E402  (a Keras-layout npz, for scripts)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Each device a test runs on: the CPU, and CUDA where there is one (skipped here)."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device(request.param)


@pytest.fixture(scope="session")
def mnist():
    """kaug's MNIST sample as Keras's arrays (uint8): x_train (10000, 28, 28), y_train,
    x_test (2000, 28, 28), y_test."""
    with np.load(MNIST_SAMPLE) as data:
        return {key: data[key] for key in data.files}


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


class Census:
    """Cases the adversarial suite tried, and how many broke a promise, per category.

    A broken promise fails its test at once; with KAUG_CENSUS=1 it is only
    counted instead (to measure a version of kaug, not to test it), and the run
    still ends failed when any promise broke: the census mode cannot turn a
    failing suite green.
    """

    counting_only = os.environ.get("KAUG_CENSUS") == "1"

    def __init__(self):
        self.tried = collections.Counter()
        self.failed = collections.Counter()
        self.examples = {}
        self.kinds = collections.Counter()  # (category, the message's start): how often
        self._failed_cases = set()

    def fail(self, category, message):
        """Record a broken promise of the category's current case (counted once per case)."""
        case = (category, self.tried[category])
        if case not in self._failed_cases:
            self._failed_cases.add(case)
            self.failed[category] += 1
        self.examples.setdefault(category, message)
        self.kinds[category, message[:90]] += 1
        if not self.counting_only:
            raise AssertionError(f"{category}: {message}")


CENSUS = Census()


@pytest.fixture(scope="session")
def census():
    return CENSUS


def pytest_sessionfinish(session, exitstatus):
    """A census run with broken promises fails, though each test passed."""
    if CENSUS.counting_only and sum(CENSUS.failed.values()) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not CENSUS.tried:
        return
    write = terminalreporter.write_line
    write("")
    write("kaug adversarial suite: cases tried, and broken promises, by category")
    for category in sorted(CENSUS.tried):
        tried, failed = CENSUS.tried[category], CENSUS.failed[category]
        write(f"  {category:<40} {tried:>6} tried {failed:>5} failed")
    write(
        f"  {'total':<40} {sum(CENSUS.tried.values()):>6} tried "
        f"{sum(CENSUS.failed.values()):>5} failed"
    )
    for category, message in sorted(CENSUS.examples.items()):
        write(f"  first failure in {category}: {message[:300]}")
    if CENSUS.counting_only:
        for (category, start), count in CENSUS.kinds.most_common(40):
            write(f"  {count:>5} x {category}: {start}")
