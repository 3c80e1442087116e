"""Every example runs end to end on real MNIST and says what it did."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import DATA_DIR

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
TOUR = sorted(EXAMPLES.glob("tour_*.py"))


def run_example(script, tmp_path, *args):
    mnist = DATA_DIR / "mnist.npz"
    if not mnist.exists():
        pytest.skip(f"real data not found at {mnist}")
    env = {**os.environ, "KAUG_MNIST": str(mnist), "KERAS_BACKEND": "torch"}
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
    stdout = run_example(script, tmp_path)
    assert "grid: " in stdout
    assert (tmp_path / f"{script.stem}.png").stat().st_size > 0


def test_train_mnist_example(tmp_path):
    stdout = run_example(EXAMPLES / "train_mnist.py", tmp_path, "--epochs", "3", "--limit", "5000")
    accuracy = float(stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.9  # 0.943 measured: three epochs on 5,000 digits
    assert "seconds per epoch" in stdout
    assert (tmp_path / "train_mnist_augmented.png").exists()


def test_custom_augmentation_example(tmp_path):
    stdout = run_example(
        EXAMPLES / "custom_augmentation.py", tmp_path, "--epochs", "1", "--limit", "2000"
    )
    rows = [
        line.split()
        for line in stdout.splitlines()
        if line.startswith(("no extras", "erosion", "salt-and"))
    ]
    assert len(rows) == 3 and all(0.1 < float(value) <= 1 for row in rows for value in row[-4:-1])
    assert (tmp_path / "custom_augmentation_noisy.png").exists()
    assert (tmp_path / "custom_augmentation_eroded.png").exists()
