"""Erosion, dilation and salt-and-pepper: references and statistical properties."""

import numpy as np
import pytest
import scipy.ndimage as ndimage
import torch

from kaug import functional as F
from kaug.transforms import RandomDilation, RandomErosion, RandomSaltAndPepper


@pytest.fixture(scope="module")
def batch(mnist):
    """64 real digits as float32 (B, 1, 28, 28), values 0..255."""
    return torch.from_numpy(mnist["x_train"][:64, None].astype("float32"))


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_square_windows_match_scipy(batch, size):
    """Also the even sizes, whose windows are off-centre (skimage's square(2))."""
    x = batch.numpy()
    window = (1, 1, size, size)
    np.testing.assert_array_equal(
        F.erosion(batch, size).numpy(), ndimage.grey_erosion(x, size=window, mode="nearest")
    )
    np.testing.assert_array_equal(
        F.dilation(batch, size).numpy(), ndimage.grey_dilation(x, size=window, mode="nearest")
    )


def test_footprints_match_scipy_inside_the_image(batch):
    footprint = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]])
    x, inside = batch.numpy(), (..., slice(2, -2), slice(2, -2))
    kernel = torch.tensor(footprint, dtype=torch.float32)
    expected = ndimage.grey_erosion(x, footprint=footprint[None, None].astype(bool))
    np.testing.assert_array_equal(
        F.erosion(batch, footprint=kernel).numpy()[inside], expected[inside]
    )
    expected = ndimage.grey_dilation(x, footprint=footprint[None, None].astype(bool))
    np.testing.assert_array_equal(
        F.dilation(batch, footprint=kernel).numpy()[inside], expected[inside]
    )


@pytest.mark.parametrize("size", [9, 10, 23, 40, 55, 56, 10**6])
def test_wide_windows_match_scipy_and_cost_no_more_than_the_image(batch, size):
    """Windows wider than 8 use running extrema (van Herk / Gil-Werman); a side past
    2 * 28 - 1 spans the whole image from every pixel, so 10**6 is the image's
    minimum (maximum), computed at the image's cost."""
    x = batch[:8].numpy()
    window = (1, 1, min(size, 99), min(size, 99))
    np.testing.assert_array_equal(
        F.erosion(batch[:8], size).numpy(), ndimage.grey_erosion(x, size=window, mode="nearest")
    )
    np.testing.assert_array_equal(
        F.dilation(batch[:8], size).numpy(), ndimage.grey_dilation(x, size=window, mode="nearest")
    )


def test_many_per_image_sides_are_grouped_by_the_side_drawn(batch):
    """A (1, 100000) range: each image computed once with the side it drew (cut at the
    image), equal to that side alone."""
    transform = RandomErosion((1, 100000), p=1.0)
    params = transform.draw(batch.shape, generator(5))
    out = transform.transform(batch, params)
    for i, side in enumerate(params["kernel_size"].tolist()):
        assert torch.equal(out[i : i + 1], F.erosion(batch[i : i + 1], side))


def test_erosion_never_brightens_and_thins_every_digit(batch):
    out = RandomErosion(p=1.0)(batch, generator())
    assert torch.all(out <= batch)
    ink_before, ink_after = batch.sum((1, 2, 3)), out.sum((1, 2, 3))
    assert torch.all(ink_after < ink_before)
    assert (ink_after / ink_before).mean() < 0.8  # a 2x2 erosion removes much of a stroke


def test_dilation_never_darkens_and_thickens_every_digit(batch):
    out = RandomDilation(p=1.0)(batch, generator())
    assert torch.all(out >= batch) and torch.all(out.sum((1, 2, 3)) > batch.sum((1, 2, 3)))


def test_per_image_kernel_sizes(batch):
    transform = RandomErosion(kernel_size=[1, 3], p=1.0)
    params = transform.draw(batch.shape, generator())
    sizes = params["kernel_size"]
    assert set(sizes.tolist()) == {1, 2, 3}
    out = transform.transform(batch, params)
    for image, size, result in zip(batch, sizes.tolist(), out, strict=True):
        assert torch.equal(result, F.erosion(image[None], size)[0])


def test_erosion_works_on_any_channel_count(rgb_images):
    x = torch.from_numpy(rgb_images).permute(0, 3, 1, 2)
    out = RandomErosion(p=1.0)(x, generator())
    for c in range(3):
        assert torch.equal(out[:, c : c + 1], F.erosion(x[:, c : c + 1], 2))


def test_salt_and_pepper_exact_count(batch):
    transform = RandomSaltAndPepper(count=100, p=1.0)
    params = transform.draw(batch.shape, generator())
    salt, pepper = params["salt"], params["pepper"]
    assert torch.all(salt.sum((1, 2, 3)) == 50) and torch.all(pepper.sum((1, 2, 3)) == 50)
    assert not torch.any(salt & pepper)
    out = transform.transform(batch, params)
    assert torch.all(out[salt.expand_as(out)] == 255) and torch.all(out[pepper.expand_as(out)] == 0)
    changed = out != batch
    assert set(out[changed].unique().tolist()) <= {0.0, 255.0}  # only the two extremes
    assert torch.equal(out[~(salt | pepper).expand_as(out)], batch[~(salt | pepper).expand_as(out)])


def test_salt_and_pepper_fraction_within_tolerance(batch):
    transform = RandomSaltAndPepper(amount=0.1, salt_ratio=0.3, p=1.0)
    params = transform.draw(batch.shape, generator())
    hit = (params["salt"] | params["pepper"]).float().mean().item()
    salt_share = params["salt"].float().sum() / (params["salt"] | params["pepper"]).float().sum()
    assert abs(hit - 0.1) < 0.01  # 50,176 pixels: the standard error is 0.0013
    assert abs(salt_share.item() - 0.3) < 0.03


def test_salt_and_pepper_value_range_follows_the_data(batch):
    transform = RandomSaltAndPepper(count=30, p=1.0)
    unit = transform(batch / 255, generator())
    assert unit.max() == 1.0 and set((unit[unit != batch / 255]).unique().tolist()) <= {0.0, 1.0}
    fixed = RandomSaltAndPepper(count=30, value_range=(-1, 2), p=1.0)(batch, generator())
    assert fixed.min() == -1 and fixed.max() == 255  # salt 2 < the digits' 255


def test_bad_arguments():
    for make, message in [
        (lambda: RandomErosion(kernel_size=0), "Received: kernel_size=0"),
        (lambda: RandomErosion(kernel_size=[3, 2]), r"Received: kernel_size=\[3, 2\]"),
        (lambda: RandomDilation(footprint=[[0, 0], [0, 0]]), "Received: footprint="),
        (lambda: RandomSaltAndPepper(amount=2), "Received: amount=2"),
        (lambda: RandomSaltAndPepper(count=-1), "Received: count=-1"),
        (lambda: RandomSaltAndPepper(value_range=(1, 0)), "Received: value_range="),
    ]:
        with pytest.raises(ValueError, match=message):
            make()


def test_a_count_above_the_pixels_hits_every_pixel():
    """`salt_pepper=True` (100 pixels) on images smaller than 10x10 once raised at every
    batch; a valid configuration must not crash on valid images."""
    out = RandomSaltAndPepper(count=5, salt_ratio=0.5, p=1.0)(torch.full((3, 2, 2, 2), 7.0),
                                                             generator())  # fmt: skip
    assert not (out == 7.0).any()
    assert ((out == 0) | (out == 255)).all() and (out[:, 0] == out[:, 1]).all()
