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
        served = list(loader.epoch())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(served) == 4


def test_numpy_data_is_served_to_user_code_as_host_numpy(digits):
    """The tutorial's `pyplot.imshow(X_batch[i].reshape(28, 28))` needs host data; Keras
    reads the CUDA tensors, and tensor data stays on the GPU."""
    gen = ImageDataGenerator(rotation_range=10, featurewise_center=True)
    gen.fit(digits)
    loader = gen.flow(digits, np.arange(len(digits)), batch_size=16)
    for x, y in (next(loader), next(iter(loader)), loader[0]):
        assert type(x) is np.ndarray and type(y) is np.ndarray and x.flags.c_contiguous
        np.asarray(x[0].reshape(28, 28))
    keras_batch = next(iter(loader.get_torch_dataloader()))
    assert all(t.device.type == "cuda" for t in keras_batch)
    assert all(b[0].device.type == "cuda" for b in loader.epoch())
    tensors = gen.flow(torch.from_numpy(digits).cuda(), batch_size=16)
    assert next(tensors).device.type == "cuda"


def test_jpegs_decoded_by_nvjpeg_are_close_to_pils(mnist, tmp_path):
    """decoder "auto" on CUDA: JPEGs decoded on the GPU (nvJPEG), resized there with
    PIL's arithmetic. nvJPEG's IDCT and upsampling are not libjpeg-turbo's, so a few
    levels may differ; the resize is checked exactly on the CPU elsewhere."""
    from PIL import Image

    from kaug.data.decoding import torchvision_io

    if torchvision_io() is None:
        pytest.skip("torchvision.io does not import here")
    x, y = mnist["x_train"][:96], mnist["y_train"][:96]
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = tmp_path / str(label)
        folder.mkdir(exist_ok=True)
        rgb = np.stack([image, 255 - image, image // 2], -1)
        Image.fromarray(rgb).resize((40, 36)).save(folder / f"{i}.jpg", quality=90)
    kwargs = dict(target_size=(28, 28), batch_size=32, shuffle=False, class_mode="sparse")
    gpu = ImageDataGenerator(device="cuda").flow_from_directory(tmp_path, **kwargs)
    cpu = ImageDataGenerator(device="cpu").flow_from_directory(tmp_path, decoder="pil", **kwargs)
    assert gpu._decode.jpeg_on_device
    for (a, labels_a), (b, labels_b) in zip(gpu, cpu, strict=True):
        assert a.device.type == "cuda"
        torch.testing.assert_close(labels_a.cpu(), labels_b)
        diff = (a.cpu() - b).abs()
        assert diff.mean() < 1.0 and diff.max() <= 32, (diff.mean(), diff.max())


def catalogue():
    from kaug import transforms as T

    return {
        "RandomCrop": T.RandomCrop(24, padding=4, fill_mode="reflect"),
        "RandomResizedCrop": T.RandomResizedCrop((20, 30)),
        "RandomPerspective": T.RandomPerspective(p=0.7),
        "RandomElasticTransform": T.RandomElasticTransform(alpha=40.0, sigma=4.0),
        "RandAugment": T.RandAugment(),
        "AugMix": T.AugMix(),
    }


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_catalogue_transforms_agree_given_the_same_draws(mnist, name):
    transform = catalogue()[name]
    digits = torch.from_numpy(mnist["x_train"][:48].astype("float32")).view(3, 16, 28, 28)
    x = torch.stack([digits[0], 30 + 0.7 * digits[1], 220 - 0.6 * digits[2]], 1)
    params = transform.draw(x.shape, torch.Generator().manual_seed(0))
    cpu = transform.transform(x, params)
    gpu = transform.transform(x.cuda(), {key: value.cuda() for key, value in params.items()})
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape
    assert torch.mean(((gpu.cpu() - cpu).abs() > 1e-2).float()) <= 0.01  # nearest ties


def test_a_fused_geometric_run_with_mixup_never_blocks_the_host(digits):
    from kaug import transforms as T

    gen = ImageDataGenerator(
        transforms=[
            T.RandomCrop(28, padding=4),
            T.RandomPerspective(p=0.5),
            T.RandomResizedCrop(24),
            T.RandomElasticTransform(),
            T.MixUp(num_classes=64),
        ],  # fmt: skip
        rescale=1 / 255,
    )
    loader = gen.flow(digits, np.arange(len(digits)), batch_size=16, seed=0)
    next(iter(loader))
    torch.cuda.set_sync_debug_mode("error")
    try:
        served = list(loader.epoch())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(served) == 4 and served[0][0].shape == (16, 24, 24, 1)
