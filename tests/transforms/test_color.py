"""The colour, blur, noise and erasing transforms: per-image parameters and `p`, value
ranges, and a generator holding all of them saved and reloaded."""

import numpy as np
import pytest
import torch
from scipy import stats

import kaug
from kaug import ImageDataGenerator
from kaug.transforms import (
    ColorJitter,
    CutMix,
    MixUp,
    RandAugment,
    RandomAutoContrast,
    RandomContrast,
    RandomErasing,
    RandomGamma,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomGrayscale,
    RandomHue,
    RandomInvert,
    RandomPosterize,
    RandomSaturation,
    RandomSharpness,
    RandomSolarize,
    TrivialAugmentWide,
)

SHAPE = (20000, 3, 8, 8)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "transform,key,low,high",
    [
        (RandomContrast(0.4), "factor", 0.6, 1.4),
        (RandomSaturation([0.2, 3.0]), "factor", 0.2, 3.0),
        (RandomHue(0.25), "factor", -0.25, 0.25),
        (RandomSharpness(2.0), "factor", 0.0, 3.0),
        (RandomGamma([0.5, 2.0]), "gamma", 0.5, 2.0),
        (RandomGaussianBlur(sigma=[0.5, 1.5]), "sigma", 0.5, 1.5),
        (RandomSolarize([0.2, 0.9]), "threshold", 0.2, 0.9),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, (str, float)) else str(v),
)
def test_each_image_draws_its_own_parameter_uniformly(transform, key, low, high):
    drawn = transform.draw(SHAPE, generator())[key].numpy()
    assert stats.kstest(drawn, "uniform", args=(low, high - low)).pvalue > 1e-3


def test_posterize_draws_whole_bits_and_p_is_per_image():
    bits = RandomPosterize(bits=[2, 5]).draw(SHAPE, generator())["bits"]
    assert set(bits.tolist()) == {2, 4, 3, 5}
    assert np.allclose(np.bincount(bits.numpy())[2:] / len(bits), 0.25, atol=0.02)
    for transform in (RandomGrayscale(p=0.1), RandomInvert(p=0.6), RandomAutoContrast(p=0.35)):
        applied = transform.draw(SHAPE, generator(1))["applied"]
        assert abs(float(applied.float().mean()) - transform.p) < 0.02


def test_value_range_for_unit_data(mnist):
    unit = torch.from_numpy(mnist["x_train"][:16, None].astype("float32") / 255)
    for transform in (RandomInvert(value_range=(0, 1), p=1.0),
                      RandomGaussianNoise(std=0.1, value_range=(0, 1), p=1.0),
                      RandomContrast(0.9, value_range=(0, 1))):  # fmt: skip
        out = transform(unit, generator())
        assert 0 <= float(out.min()) and float(out.max()) <= 1
    shifted = RandomInvert(value_range=(-1, 1), p=1.0)(unit * 2 - 1, generator())
    torch.testing.assert_close(shifted, -(unit * 2 - 1))


def test_gaussian_noise_has_the_requested_spread():
    flat = torch.full((64, 3, 32, 32), 127.5)
    out = RandomGaussianNoise(std=0.02, p=1.0)(flat, generator())
    assert abs(float((out - flat).std()) / (0.02 * 255) - 1) < 0.02


def test_erasing_boxes_follow_scale_and_ratio():
    params = RandomErasing(scale=(0.05, 0.2), ratio=(0.5, 2.0), p=1.0).draw(
        (5000, 1, 64, 64), generator()
    )
    area = (params["height"] * params["width"]).float() / 64**2
    ratio = params["height"].float() / params["width"]
    assert float(area.min()) > 0.03 and float(area.max()) < 0.23  # whole-pixel rounding
    assert float(ratio.min()) > 0.4 and float(ratio.max()) < 2.5
    assert bool(((params["top"] + params["height"]) <= 64).all())
    assert bool(((params["left"] + params["width"]) <= 64).all())


def test_the_catalogue_in_a_generator_saves_and_reloads(mnist, tmp_path):
    rgb = np.repeat(mnist["x_train"][:64, :, :, None], 3, axis=3)
    rgb[..., 1] = 255 - rgb[..., 1]
    catalogue = [
        ColorJitter(0.3, 0.3, 0.3, 0.05), RandomContrast(), RandomSaturation(), RandomHue(),
        RandomSharpness(), RandomGamma(),
        RandomGrayscale(), RandomInvert(), RandomSolarize(), RandomPosterize(),
        RandomAutoContrast(), RandomGaussianBlur(), RandomGaussianNoise(), RandomErasing(),
        RandAugment(), TrivialAugmentWide(), MixUp(num_classes=10), CutMix(num_classes=10),
    ]  # fmt: skip
    datagen = ImageDataGenerator(rotation_range=10, transforms=catalogue, device="cpu")
    datagen.save(tmp_path / "gen.npz")
    loaded = kaug.load(tmp_path / "gen.npz", device="cpu")
    y = mnist["y_train"][:64]
    served = [g.flow(rgb, y, batch_size=64, seed=5)[0] for g in (datagen, loaded)]
    np.testing.assert_array_equal(served[0][0], served[1][0])
    np.testing.assert_array_equal(served[0][1], served[1][1])
    assert served[0][1].shape == (64, 10) and np.isfinite(served[0][0]).all()


def test_color_jitter_runs_each_images_own_order_like_torchvision(mnist):
    from torchvision.transforms.v2 import functional as TF

    digits = torch.from_numpy(mnist["x_train"][:24].astype("float32") / 255).view(3, 8, 28, 28)
    rgb = torch.stack([digits[0], 0.1 + 0.7 * digits[1], 0.9 - 0.6 * digits[2]], 1)
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, value_range=(0, 1))
    params = jitter.draw(rgb.shape, generator())
    served = jitter.apply(rgb, params)
    kernels = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for image, factors, order, out in zip(rgb, params["factors"], params["order"], served,
                                          strict=True):  # fmt: skip
        expected = image
        for op in order.tolist():
            expected = kernels[op](expected, float(factors[op]))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    orders = ColorJitter(0.1, 0.1, 0.1, 0.1).draw((24000, 3, 4, 4), generator(1))["order"]
    counts = np.unique(orders.numpy(), axis=0, return_counts=True)[1]
    assert len(counts) == 24 and stats.chisquare(counts).pvalue > 1e-3  # all 24 orders
