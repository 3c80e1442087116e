"""Every example runs end to end on real MNIST and says what it did."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MNIST_SAMPLE
from tests.helpers import script_env

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
TOUR = sorted(EXAMPLES.glob("tour_*.py"))


def run_example(script, tmp_path, *args):
    mnist = MNIST_SAMPLE
    env = script_env(KAUG_MNIST=str(mnist), KERAS_BACKEND="torch")
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_tour_has_its_seven_sections():
    assert len(TOUR) == 7


@pytest.mark.parametrize("script", TOUR, ids=lambda p: p.stem)
def test_tour_example(script, tmp_path):
    run_example(script, tmp_path)
    with Image.open(tmp_path / f"{script.stem}.png") as image:
        grid = np.asarray(image)
    assert min(grid.shape[:2]) >= 3 * 28  # a grid of at least 3 x 3 digits
    assert len(np.unique(grid)) > 2  # digits drawn, not a blank or flat image


@pytest.mark.slow
def test_the_main_job_trains_on_the_built_in_digits(tmp_path):
    """The README's run command, as a fresh offline clone runs it: kaug's own digits."""
    env = script_env(KERAS_HOME=str(tmp_path / "no_keras_cache"))
    env.pop("KAUG_MNIST", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_mnist.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "train_mnist.json").read_text())
    assert report["train_images"] == 10000 and report["test_images"] == 2000
    assert report["accuracy"] >= 0.95  # 0.964 measured (5 epochs, 2-core CPU)
    assert len(report["seconds_per_epoch"]) == 5
    assert (tmp_path / "train_mnist_augmented.png").exists()


@pytest.mark.slow
def test_custom_augmentation_example(tmp_path):
    run_example(EXAMPLES / "custom_augmentation.py", tmp_path, "--epochs", "1", "--limit", "2000")
    report = json.loads((tmp_path / "custom_augmentation.json").read_text())
    assert report["train_images"] == 2000
    assert set(report["accuracy"]) == {"no extras", "erosion", "salt-and-pepper"}
    for scores in report["accuracy"].values():
        assert set(scores) == {"clean", "noisy", "eroded"}
        assert all(0.1 < value <= 1 for value in scores.values())  # chance is 0.1
    assert (tmp_path / "custom_augmentation_noisy.png").exists()
    assert (tmp_path / "custom_augmentation_eroded.png").exists()


# The full Fashion-MNIST beside the checkout when there is one; else kaug's own sample.
SHARED_FASHION_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared/data/fashion_mnist.npz"


@pytest.mark.slow
def test_fashion_mnist_trains_with_and_without_randaugment_mixup(tmp_path):
    args = ["--epochs", "3", "--limit", "2000"]
    if SHARED_FASHION_MNIST.exists():
        args += ["--data", str(SHARED_FASHION_MNIST)]
    run_example(EXAMPLES / "train_fashion_mnist.py", tmp_path, *args)
    report = json.loads((tmp_path / "train_fashion_mnist.json").read_text())
    assert report["train_images"] == 2000 and report["epochs"] == 3
    assert report["test_images"] == (10000 if SHARED_FASHION_MNIST.exists() else 1000)
    assert set(report["runs"]) == {"baseline", "randaugment_mixup"}
    for run in report["runs"].values():
        assert 0.5 < run["accuracy"] <= 1  # chance is 0.1
        assert len(run["seconds_per_epoch"]) == 3
    with Image.open(tmp_path / "train_fashion_mnist_augmented.png") as image:
        assert len(np.unique(np.asarray(image))) > 2
