"""benchmarks/memory.py runs (tiny sizes, a few batches), so it cannot rot."""

import json
import os
import pathlib
import subprocess
import sys

BENCHMARK = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "memory.py"


def test_memory_benchmark_smoke(tmp_path):
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--smoke", "--dir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "torch"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    cases = json.loads(out.read_text())["results"]["this"]
    assert set(cases) == {"memory", "mmap"}
    for case in cases.values():
        assert case["fit_batches"] == 4 and case["batches_per_second"] > 0
        assert case["max_rss_mib"] >= case["rss_mib_after_imports"] > 0
        assert 0 < case["flow_ms_first"] and case["data_gb"] > 0
    assert not list(tmp_path.glob("*.npy"))  # the memory-mapped file is removed
