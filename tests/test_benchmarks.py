"""The benchmark scripts run (tiny sizes, a few batches), so they cannot rot."""

import json
import pathlib
import subprocess
import sys

from tests.conftest import MNIST_SAMPLE
from tests.helpers import script_env

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def smoke(script, tmp_path, *extra):
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", *extra,
         "--data", str(MNIST_SAMPLE), "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=script_env(KERAS_BACKEND="torch"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def test_throughput_smoke(tmp_path):
    report, stdout = smoke("throughput.py", tmp_path, "--device", "cpu")
    assert "failed" not in stdout, stdout  # every installed peer ran
    for row in report["results"]:
        rates = row["images_per_second"]
        assert set(rates) == {"kaug", "keras legacy", "keras layers", "kornia",
                              "torchvision v2", "albumentations"}  # fmt: skip
        assert all(rate and rate > 0 for rate in rates.values())
    assert report["versions"]["torch"] and report["machine"]["cpu_count"]


def test_fit_overhead_smoke(tmp_path):
    report, _ = smoke("fit_overhead.py", tmp_path, "--device", "cpu")
    assert set(report["epoch_seconds"]) == {"no augmentation", "kaug", "keras legacy"}
    assert all(seconds > 0 for seconds in report["epoch_seconds"].values())
    for timings in report["fit_seconds"].values():
        assert timings["kaug"] > 0 and timings["keras legacy"] > 0


def test_directory_throughput_smoke(tmp_path):
    report, _ = smoke("directory_throughput.py", tmp_path, "--device", "cpu")
    assert set(report["results"]) == {"png", "jpg"}
    for rates in report["results"].values():
        measured = [rate for rate in rates.values() if isinstance(rate, float)]
        assert len(measured) >= 4 and all(rate > 0 for rate in measured)
        assert any(name.startswith("kaug") for name in rates)


def test_training_parity_smoke(tmp_path):
    report, _ = smoke("training_parity.py", tmp_path)
    assert set(report["runs"]) == {"kaug", "keras legacy"}
    assert report["train_images"] == 500 and report["epochs"] == 1
    for run in report["runs"].values():
        assert (
            all(0 <= accuracy <= 1 for accuracy in run["accuracy"]) and run["seconds_per_epoch"] > 0
        )


def test_catalogue_throughput_smoke(tmp_path):
    report, stdout = smoke("catalogue_throughput.py", tmp_path, "--device", "cpu")
    assert "failed" not in stdout, stdout  # every peer ran the pipeline
    assert [row["pipeline"] for row in report["results"]] == ["randaugment", "colour", "geometric"]
    for row in report["results"]:
        rates = row["images_per_second"]
        assert set(rates) == {"kaug", "keras layers", "torchvision v2", "kornia"}
        assert all(rate > 0 for rate in rates.values())


def test_host_copy_smoke(tmp_path):
    report, _ = smoke("host_copy.py", tmp_path, "--device", "cpu")
    assert [row["batch_size"] for row in report["results"]] == [8, 8]
    for row in report["results"]:
        assert row["conversion_ms"] >= 0 and row["next_torch_ms"] > 0 and row["next_numpy_ms"] > 0
    mnist = report["results"][1]  # a contiguous CPU batch is shared, not copied
    assert mnist["served_contiguous"] and mnist["shared_not_copied"]
