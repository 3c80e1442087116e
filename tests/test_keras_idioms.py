"""Every kind of loader through model.fit, evaluate and predict, under each backend.

Keras picks its backend once per process, so each backend runs
tests/backends/keras_idioms.py in its own subprocess (small data: seconds each).
"""

import importlib.util
import json
import math
import pathlib

import pytest

from tests.conftest import MNIST_SAMPLE
from tests.helpers import run_under_backend

SCRIPT = pathlib.Path(__file__).parent / "backends" / "keras_idioms.py"
KINDS = [
    "flow x", "flow x y", "flow x y w",
    *(f"directory {mode}" for mode in ("categorical", "binary", "sparse", "input", None)),
    *(f"dataframe {mode}" for mode in ("categorical", "binary", "sparse", "raw", "input", None)),
]  # fmt: skip


@pytest.fixture(scope="module", params=["torch", "jax", "tensorflow"])
def report(request, tmp_path_factory):
    backend = request.param
    if importlib.util.find_spec(backend) is None:
        pytest.fail(f"{backend} is not installed: pip install -e '.[backends]'")
    tmp = tmp_path_factory.mktemp(backend)
    run_under_backend(backend, SCRIPT, MNIST_SAMPLE, tmp / "digits", tmp / "report.json")
    report = json.loads((tmp / "report.json").read_text())
    assert report["backend"] == backend
    return report


@pytest.mark.slow
def test_every_loader_kind_fits_evaluates_and_predicts(report):
    assert sorted(report["cases"]) == sorted(KINDS)
    for name, case in report["cases"].items():
        assert case["batches"] == 7, name  # 64 images in batches of 10
        assert case["predict"][0] == 64, name  # one row per image, none split or lost
        if "fit" in case:
            assert len(case["fit"]) == 2 and all(map(math.isfinite, case["fit"])), name
            assert math.isfinite(case["evaluate"]), name
        assert not any("ran out of data" in w for w in case["warnings"]), name
    assert report["cases"]["directory input"]["predict"] == [64, 28, 28, 1]


@pytest.mark.slow
def test_fit_class_weight_equals_the_same_sample_weights(report):
    assert report["class_weight_loss"] == pytest.approx(report["sample_weight_loss"], rel=1e-5)


@pytest.mark.slow
def test_steps_per_epoch_beyond_an_epoch_keeps_going(report):
    long = report["long_epochs"]
    assert long["epochs"] == 2
    assert not any("ran out of data" in w for w in long["warnings"])
