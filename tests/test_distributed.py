"""Several processes: disjoint shards per rank, whole-dataset statistics on every rank."""

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from kaug import ImageDataGenerator
from tests.conftest import MNIST_SAMPLE
from tests.helpers import script_env

FIT = dict(featurewise_center=True, zca_whitening=True, zca_epsilon=0.1, rescale=1 / 255)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_worker(rank, world_size, port, out):
    """One rank: serve a flow epoch (no seed: rank 0's is broadcast) and fit."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        with np.load(MNIST_SAMPLE) as data:
            x = data["x_train"][:3001, :, :, None]
        gen = ImageDataGenerator(rotation_range=10, **FIT, device="cpu")
        loader = gen.flow(x, np.arange(len(x)), batch_size=256)
        served = [torch.cat([y for _, y in loader.epoch()]).numpy() for _ in range(2)]
        gen.fit(x)  # every rank passes all the data; each sums its share
        np.savez(out / f"rank{rank}.npz", epoch0=served[0], epoch1=served[1], batches=len(loader),
                 mean=gen.mean, zca=gen.zca_whitening_matrix)  # fmt: skip
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_shard_and_share_statistics(tmp_path, mnist):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(rank_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for epoch in ("epoch0", "epoch1"):
        a, b = ranks[0][epoch], ranks[1][epoch]
        assert len(a) == len(b) == 1501  # 3001 samples: one repeated to even the ranks out
        assert len(set(a) & set(b)) <= 1 and set(a) | set(b) == set(range(3001))
    assert not np.array_equal(ranks[0]["epoch0"], ranks[0]["epoch1"])  # reshuffled
    assert ranks[0]["batches"] == ranks[1]["batches"] == 6
    single = ImageDataGenerator(**FIT, device="cpu")
    single.fit(mnist["x_train"][:3001, :, :, None])
    for rank in ranks:
        np.testing.assert_allclose(rank["mean"], single.mean, rtol=1e-6)
        scale = np.abs(single.zca_whitening_matrix).max()
        assert np.abs(rank["zca"] - single.zca_whitening_matrix).max() < 1e-6 * scale


def test_rank_and_world_size_by_hand(mnist):
    x = mnist["x_train"][:100, :, :, None]
    gen = ImageDataGenerator(device="cpu")
    shards = [
        torch.cat(
            [
                y
                for _, y in gen.flow(
                    x, np.arange(100), batch_size=16, seed=3, rank=r, world_size=3
                ).epoch()
            ]
        ).tolist()  # fmt: skip
        for r in range(3)
    ]
    assert [len(s) for s in shards] == [34, 34, 34]
    assert set().union(*shards) == set(range(100))
    with pytest.raises(ValueError, match="must be given when rank and world_size are set by hand"):
        gen.flow(x, rank=0, world_size=2)
    with pytest.raises(ValueError, match=r"Received: rank=2"):
        gen.flow(x, seed=0, rank=2, world_size=2)


@pytest.mark.slow
def test_the_torchrun_recipe_runs_on_two_cpu_processes(tmp_path):
    """The README's multi-GPU recipe, for real, with 2 CPU processes (gloo)."""
    import subprocess
    import sys

    mnist = MNIST_SAMPLE
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "distributed_mnist.py")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={free_port()}", script, "--epochs", "3", "--limit", "6000",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
        env=script_env(KAUG_MNIST=str(mnist), KERAS_BACKEND="torch", CUDA_VISIBLE_DEVICES=""),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"distributed_rank{r}.json").read_text()) for r in (0, 1)]
    for rank, report in enumerate(reports):
        assert report["rank"] == rank and report["world_size"] == 2
        assert [epoch["images"] for epoch in report["epochs"]] == [3000, 3000, 3000]
    assert reports[0]["accuracy"] > 0.9
