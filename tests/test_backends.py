"""model.fit from flow and flow_from_directory under each Keras backend.

Keras picks its backend once per process (KERAS_BACKEND), so each backend runs
tests/backends/train_with_backend.py in its own subprocess.
"""

import importlib.util
import json
import pathlib

import pytest

from tests.conftest import MNIST_SAMPLE
from tests.helpers import run_under_backend

SCRIPT = pathlib.Path(__file__).parent / "backends" / "train_with_backend.py"


@pytest.mark.parametrize("backend", ["torch", "jax", "tensorflow"])
def test_training_under_each_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.fail(f"{backend} is not installed: pip install -e '.[backends]'")
    mnist = MNIST_SAMPLE
    run_under_backend(backend, SCRIPT, mnist, tmp_path / "digits", tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == backend
    assert report["accuracy"] > 0.7  # 3 short epochs; chance is 0.1
    assert report["x_shape"] == [8, 28, 28, 1] and report["x_dtype"] == "torch.float32"
    assert report["served_to_user"] == "numpy"  # numpy data: numpy batches, any backend
    if backend != "torch":
        assert report["x_contiguous"]  # the numpy hand-off is then a single copy
    # importing torchvision after TensorFlow aborts the process: kaug refuses instead
    assert report["tensorflow_imported"] or backend != "tensorflow"
    expected = "refused" if report["tensorflow_imported"] else "ok"
    assert report["torchvision_decoder"] == expected
