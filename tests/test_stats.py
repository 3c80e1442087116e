"""Fitted statistics: checked on every path (fit, hand-set, load), swapped whole."""

import threading

import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator
from kaug.stats import FittedStatistics, StatsAccumulator, check_statistic


def test_accumulator_matches_numpy_in_float64():
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 255, (n, 3, 4, 5)) for n in (3, 7, 1)]
    accumulator = StatsAccumulator(3, 60, torch.device("cpu"), scale=0.5)
    for batch in batches:
        tensor = torch.from_numpy(batch)
        accumulator.update(tensor, tensor.reshape(len(batch), -1))
    data = np.concatenate(batches) * 0.5
    np.testing.assert_allclose(accumulator.mean().numpy(), data.mean((0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(accumulator.std().numpy(), data.std((0, 2, 3)), rtol=1e-12)
    flat = data.reshape(len(data), -1)
    np.testing.assert_allclose(accumulator.gram.numpy(), flat.T @ flat, rtol=1e-12)


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("mean", np.full((1, 1, 3), np.nan), "finite values"),
        ("mean", np.zeros((1, 1, 1, 3)), "rank <= 3"),
        ("mean", np.zeros((0,)), "rank <= 3"),
        ("mean", np.array(["a"]), "real numeric array"),
        ("std", np.array([-1.0]), "non-negative"),
        ("std", [[1, 2], [3]], "numeric array"),
        ("zca_whitening_matrix", np.zeros((4, 5)), "square"),
        ("zca_whitening_matrix", np.zeros(4), "square"),
        ("zca_whitening_matrix", np.full((2, 2), np.inf), "finite values"),
    ],
)
def test_bad_statistics_are_refused_by_name(name, value, message):
    with pytest.raises(ValueError, match=message):
        check_statistic(name, value, "float32")
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    with pytest.raises(ValueError, match=rf"`{name}`"):
        setattr(gen, name, value)
    assert getattr(gen, name) is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("mean", np.zeros((1, 1, 3))),  # a 3-channel mean on 1-channel images
        ("mean", np.zeros((3, 1, 1))),  # a channels_first shape on channels_last images
        ("std", np.ones((2, 1))),
        ("zca_whitening_matrix", np.eye(10)),
    ],
)
def test_statistics_that_do_not_fit_the_images_are_refused_at_the_batch(digits, name, value):
    flags = dict(zca_whitening=True) if name == "zca_whitening_matrix" else {}
    with pytest.warns(UserWarning) if flags else _no_warning():
        gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                                 device="cpu", **flags)  # fmt: skip
    setattr(gen, name, value)
    with pytest.raises(ValueError, match=rf"`{name}` must .*images of shape \(28, 28, 1\)"):
        gen.standardize(digits[:2])
    with pytest.raises(ValueError, match=rf"`{name}`"):
        next(iter(gen.flow(digits[:2])))


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_shapes_that_broadcast_without_growing_the_image_are_taken(digits):
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    for mean in ([10.0], np.full((28, 28, 1), 10.0), np.float32(10.0), [[[10.0]]]):
        gen.mean = mean
        np.testing.assert_allclose(gen.standardize(digits[:2]), digits[:2] - 10.0)


def test_hand_set_statistics_are_copied_and_read_only(digits):
    gen = ImageDataGenerator(featurewise_center=True, device="cpu")
    mean = np.full((1, 1, 1), 10.0, "float32")
    gen.mean = mean
    mean[...] = 50.0  # the caller's array changes; the generator's does not
    assert gen.mean[0, 0, 0] == 10.0
    np.testing.assert_allclose(gen.standardize(digits[:2]), digits[:2] - 10.0)
    with pytest.raises(ValueError, match="read-only"):
        gen.mean[...] = 50.0


def test_a_snapshot_is_never_changed_only_replaced():
    first = FittedStatistics(mean=check_statistic("mean", [1.0], "float32"))
    second = first.replace(std=check_statistic("std", [2.0], "float32"))
    assert first.std is None and second.mean is first.mean and second.std[0] == 2.0


def test_a_batch_never_mixes_two_fits():
    """One thread fits again and again, alternating two datasets, while another
    standardizes: every output comes from one fit (mean 10, std 2 or mean 100,
    std 20), never from one fit's mean and the other's std."""
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((64, 2, 2, 1))
    unit = (unit - unit.mean()) / unit.std()
    datasets = [unit * 2 + 10, unit * 20 + 100]
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                             device="cpu")  # fmt: skip
    gen.fit(datasets[0])
    probe = np.full((1, 2, 2, 1), 40.0, "float32")
    allowed = [(40 - 10) / (2 + 1e-6), (40 - 100) / (20 + 1e-6)]
    stop = threading.Event()

    def refit():
        i = 0
        while not stop.is_set():
            gen.fit(datasets[i % 2])
            i += 1

    fitter = threading.Thread(target=refit)
    fitter.start()
    try:
        seen = {float(gen.standardize(probe)[0, 0, 0, 0]) for _ in range(3000)}
    finally:
        stop.set()
        fitter.join()
    mixed = [v for v in seen if not any(np.isclose(v, a, rtol=1e-4) for a in allowed)]
    assert not mixed, f"outputs from a mix of two fits: {mixed}"
