"""The adversarial suite's census mode counts broken promises instead of stopping at the
first, and still fails the run: KAUG_CENSUS=1 cannot turn a failing suite green."""

import os
import subprocess
import sys

import pytest

PROBE = os.environ.get("KAUG_CENSUS_PROBE") == "1"


@pytest.mark.skipif(not PROBE, reason="run by test_a_census_with_broken_promises_fails only")
def test_probe_breaks_a_promise(census):
    census.tried["probe"] += 1
    census.fail("probe", "a promise broken on purpose")


@pytest.mark.parametrize("census_mode", ["1", "0"])
def test_a_census_with_broken_promises_fails(census_mode):
    env = {**os.environ, "KAUG_CENSUS": census_mode, "KAUG_CENSUS_PROBE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "probe_breaks"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout[-2000:]
