"""CPU and CUDA give the same results (skipped without a GPU)."""

import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PARAMS = {"theta": 33.0, "tx": 2.5, "ty": -3.0, "shear": 12.0, "zx": 0.9, "zy": 1.2,
          "flip_horizontal": True, "channel_shift_intensity": 20.0, "brightness": 0.8}  # fmt: skip


def test_default_device_is_cuda():
    assert ImageDataGenerator().device.type == "cuda"


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
def test_apply_transform_agrees(digits, fill_mode, order):
    kwargs = dict(fill_mode=fill_mode, cval=5.0, interpolation_order=order)
    cpu = ImageDataGenerator(**kwargs, device="cpu")
    gpu = ImageDataGenerator(**kwargs, device="cuda")
    for image in digits[:8]:
        a, b = cpu.apply_transform(image, PARAMS), gpu.apply_transform(image, PARAMS)
        assert np.mean(np.abs(a - b) > 1e-2) <= 0.01


def test_augment_stays_on_the_device_and_is_seeded(digits):
    gen = ImageDataGenerator(rotation_range=40, width_shift_range=0.2, horizontal_flip=True)
    x = torch.from_numpy(digits).cuda()
    out = gen.augment(x, seed=3)
    assert out.device.type == "cuda" and out.shape == x.shape
    torch.testing.assert_close(out, gen.augment(x, seed=3))


def test_fit_and_standardize_agree(mnist):
    x = mnist["x_train"][:5000, :, :, None]
    kwargs = dict(zca_whitening=True, zca_epsilon=1e-2, rescale=1 / 255)
    cpu, gpu = (
        ImageDataGenerator(**kwargs, device="cpu"),
        ImageDataGenerator(**kwargs, device="cuda"),
    )
    cpu.fit(x)
    gpu.fit(x)
    np.testing.assert_allclose(gpu.mean, cpu.mean, rtol=1e-6)
    scale = np.abs(cpu.zca_whitening_matrix).max()
    assert np.abs(gpu.zca_whitening_matrix - cpu.zca_whitening_matrix).max() / scale < 1e-6
    test = mnist["x_test"][:64, :, :, None]
    a, b = cpu.standardize(test), gpu.standardize(test)
    assert np.abs(a - b).max() / np.abs(a).max() < 1e-5


def test_a_flow_epoch_never_blocks_the_host(digits):
    """Every per-batch operation is queued on the GPU: no copy or read waits for it."""
    gen = ImageDataGenerator(
        rotation_range=30, width_shift_range=[1, 2], height_shift_range=0.1, shear_range=5,
        zoom_range=0.1, channel_shift_range=10.0, brightness_range=(0.8, 1.2),
        horizontal_flip=True, vertical_flip=True, fill_mode="constant", rescale=1 / 255,
        featurewise_center=True, featurewise_std_normalization=True,
    )  # fmt: skip
    gen.fit(digits)
    loader = gen.flow(digits, np.arange(len(digits)), batch_size=16, seed=0)
    next(iter(loader))  # first use uploads the statistics and shift choices
    torch.cuda.set_sync_debug_mode("error")
    try:
        served = [batch for batch in loader]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(served) == 4
