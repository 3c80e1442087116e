"""kaug.functional.color and blur against torchvision v2's functionals, image by image,
on real images (MNIST digits as RGB channels), each image with its own factor."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from kaug.functional import blur, color

FACTORS = torch.tensor([0.0, 0.3, 0.8, 1.0, 1.4, 2.5])


@pytest.fixture(scope="module")
def rgb(mnist):
    """Six real RGB images in [0, 1]: three digits per image, at different contrasts."""
    digits = torch.from_numpy(mnist["x_train"][:18].astype("float32") / 255).view(3, 6, 28, 28)
    return torch.stack([digits[0], 0.1 + 0.7 * digits[1], 0.9 - 0.6 * digits[2]], 1)


def one_by_one(reference, images, factors):
    return torch.stack(
        [reference(image, float(f)) for image, f in zip(images, factors, strict=True)]
    )


@pytest.mark.parametrize("bound", [1.0, 255.0])
@pytest.mark.parametrize(
    "ours,reference,factors",
    [
        (color.adjust_contrast, TF.adjust_contrast, FACTORS),
        (color.adjust_saturation, TF.adjust_saturation, FACTORS),
        (color.adjust_sharpness, TF.adjust_sharpness, FACTORS),
        (color.adjust_hue, TF.adjust_hue, torch.tensor([-0.5, -0.2, 0.0, 0.05, 0.3, 0.5])),
        (color.adjust_gamma, TF.adjust_gamma, torch.tensor([0.3, 0.7, 1.0, 1.5, 2.0, 3.0])),
    ],
    ids=["contrast", "saturation", "sharpness", "hue", "gamma"],
)
def test_factor_ops_match_torchvision(rgb, ours, reference, factors, bound):
    expected = one_by_one(reference, rgb, factors) * bound
    torch.testing.assert_close(
        ours(rgb * bound, factors, bound), expected, rtol=1e-5, atol=1e-5 * bound
    )


def test_one_channel_images(rgb):
    gray = rgb[:, :1]
    torch.testing.assert_close(
        color.adjust_contrast(gray, FACTORS, 1.0), one_by_one(TF.adjust_contrast, gray, FACTORS)
    )
    assert torch.equal(color.adjust_saturation(gray, FACTORS, 1.0), gray)
    assert torch.equal(color.adjust_hue(gray, FACTORS, 1.0), gray)


def test_grayscale_invert_solarize_autocontrast_match_torchvision(rgb):
    torch.testing.assert_close(color.to_grayscale(rgb), TF.rgb_to_grayscale(rgb, 3))
    torch.testing.assert_close(color.invert(rgb, 1.0), TF.invert(rgb))
    thresholds = torch.tensor([0.1, 0.3, 0.5, 0.6, 0.8, 1.0])
    torch.testing.assert_close(
        color.solarize(rgb, thresholds, 1.0), one_by_one(TF.solarize, rgb, thresholds)
    )
    torch.testing.assert_close(color.autocontrast(rgb, 1.0), TF.autocontrast(rgb))


def test_posterize_is_torchvisions_bit_mask_on_bytes(rgb):
    bytes_ = (rgb * 255).round().to(torch.uint8)
    bits = torch.tensor([1, 2, 3, 4, 6, 8])
    expected = torch.stack(
        [TF.posterize(image, int(b)) for image, b in zip(bytes_, bits, strict=True)]
    )
    assert torch.equal(color.posterize(bytes_.float(), bits, 255.0), expected.float())


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
def test_gaussian_blur_matches_torchvision(rgb, kernel_size):
    sigmas = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 3.0])
    expected = torch.stack(
        [
            TF.gaussian_blur(image, [kernel_size] * 2, [float(s)] * 2)
            for image, s in zip(rgb, sigmas, strict=True)
        ]  # fmt: skip
    )
    torch.testing.assert_close(blur.gaussian_blur(rgb, kernel_size, sigmas), expected)


def test_erase_matches_torchvision(rgb):
    top, left = torch.tensor([0, 3, 10, 20, 5, 0]), torch.tensor([0, 7, 2, 20, 0, 27])
    height, width = torch.tensor([5, 10, 3, 8, 0, 28]), torch.tensor([5, 4, 20, 8, 3, 1])
    value = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.0, 0.75])
    expected = torch.stack([
        TF.erase(image, int(i), int(j), int(h), int(w), torch.tensor(float(v)))
        for image, i, j, h, w, v in zip(rgb, top, left, height, width, value, strict=True)
    ])  # fmt: skip
    torch.testing.assert_close(blur.erase(rgb, top, left, height, width, value), expected)


def test_brightness_and_equalize_match_torchvision(rgb):
    torch.testing.assert_close(
        color.adjust_brightness(rgb, FACTORS, 1.0), one_by_one(TF.adjust_brightness, rgb, FACTORS)
    )
    bytes_ = (rgb * 255).round().to(torch.uint8)
    bytes_[0] = 7  # a flat image: left as it is
    expected = TF.equalize(bytes_)
    assert torch.equal(color.equalize(bytes_.float(), 255.0), expected.float())
    torch.testing.assert_close(color.equalize(bytes_.float() / 255, 1.0), expected.float() / 255)


def test_hue_is_defined_for_any_data_range(rgb):
    """The chroma form never divides by the value: data outside [0, bound] (negative,
    a maximum of 0, far above) gives finite values within each pixel's own range, and
    a shift of the data shifts the result (hue does not depend on the offset)."""
    factors = torch.tensor([-0.5, -0.2, 0.0, 0.05, 0.3, 0.5])
    for data in (rgb * 255 - 255, rgb * 1e6, rgb - rgb.amax(1, keepdim=True)):
        out = color.adjust_hue(data, factors, 255.0)
        slack = 1e-5 * float(data.abs().max())  # float32 rounding at the data's scale
        assert torch.isfinite(out).all()
        assert (out >= data.amin(1, keepdim=True) - slack).all()
        assert (out <= data.amax(1, keepdim=True) + slack).all()
    shifted = color.adjust_hue(rgb * 255 - 100, factors, 255.0)
    torch.testing.assert_close(shifted + 100, color.adjust_hue(rgb * 255, factors, 255.0))


def test_channels_after_the_third_pass_through(rgb):
    """RGB plus alpha, or any extra channels: the colour ops change the first three."""
    extra = torch.rand(6, 2, 28, 28)
    for op in (color.adjust_hue, color.adjust_saturation, color.adjust_contrast):
        out = op(torch.cat([rgb, extra], 1), FACTORS, 1.0)
        assert torch.equal(out[:, 3:], extra)
        torch.testing.assert_close(out[:, :3], op(rgb, FACTORS, 1.0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_equalize_in_half_precision_reads_the_levels_in_float32(rgb, dtype):
    """float16 rounds 255.999 up to 256: the levels are computed in float32."""
    x = (rgb * 255).round()
    x[:, :, 0, 0] = 255  # the top level
    out = color.equalize(x.to(dtype), 255.0)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), color.equalize(x, 255.0).to(dtype).float())


def test_blur_with_a_vanishing_sigma_is_the_identity(rgb):
    """A sigma of 1e-50 is 0 in float32: the kernel is made in float64 and stays a
    delta, never 0 / 0."""
    sigma = torch.tensor([1e-50, 0.0, 1e-30, 1e-8, 1e-3, 1e-45]).double()
    torch.testing.assert_close(blur.gaussian_blur(rgb, 5, sigma), rgb)
    torch.testing.assert_close(blur.gaussian_blur(rgb, 5, sigma.float()), rgb)


@pytest.mark.parametrize("factor", [1e30, -1e30])
def test_blends_with_extreme_factors_clip_instead_of_making_nan(rgb, factor):
    factors = torch.full((6,), factor)
    for op in (color.adjust_contrast, color.adjust_saturation, color.adjust_brightness):
        out = op(rgb * 1e20, factors, 1.0)
        assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
