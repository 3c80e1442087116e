"""model.fit from flow and flow_from_directory under each Keras backend.

Keras picks its backend once per process (KERAS_BACKEND), so each backend runs
tests/backends/train_with_backend.py in its own subprocess.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import MNIST_SAMPLE

SCRIPT = pathlib.Path(__file__).parent / "backends" / "train_with_backend.py"


@pytest.mark.parametrize("backend", ["torch", "jax", "tensorflow"])
def test_training_under_each_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.fail(f"{backend} is not installed: pip install -e '.[backends]'")
    mnist = MNIST_SAMPLE
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(mnist), str(tmp_path / "digits"),
         str(tmp_path / "report.json")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == backend
    assert report["accuracy"] > 0.7  # 3 short epochs; chance is 0.1
    assert report["x_shape"] == [8, 28, 28, 1] and report["x_dtype"] == "torch.float32"
    if backend != "torch":
        assert report["x_contiguous"]  # the numpy hand-off is then a single copy
    # importing torchvision after TensorFlow aborts the process: kaug refuses instead
    assert report["tensorflow_imported"] or backend != "tensorflow"
    expected = "refused" if report["tensorflow_imported"] else "ok"
    assert report["torchvision_decoder"] == expected
