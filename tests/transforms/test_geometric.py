"""Crops, resized crops, perspective and elastic warps: torchvision v2's functionals
given kaug's draws, torchvision's parameter distributions, masks that follow the
images exactly, and runs of them fused into one resampling."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import kaug
from kaug.batch import Batch
from kaug.functional import geometric as G
from kaug.transforms import (
    CenterCrop,
    RandomCrop,
    RandomElasticTransform,
    RandomPerspective,
    RandomResizedCrop,
)
from kaug.transforms.geometric import call_stages

# torchvision's padding modes for kaug's fill modes (the same pixels).
PADDING_MODES = {"constant": "constant", "nearest": "edge", "reflect": "symmetric"}


@pytest.fixture(scope="module")
def rgb(mnist):
    """12 real RGB images (B, 3, 28, 28) in 0..255, no channel black at the border."""
    digits = torch.from_numpy(mnist["x_train"][:36].astype("float32")).view(3, 12, 28, 28)
    return torch.stack([digits[0], 30 + 0.7 * digits[1], 220 - 0.6 * digits[2]], 1)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def each(params, i):
    return {key: value[i] for key, value in params.items()}


@pytest.mark.parametrize("fill_mode", sorted(PADDING_MODES))
def test_random_crop_is_torchvisions_pad_and_crop(rgb, fill_mode):
    transform = RandomCrop((24, 20), padding=(1, 2, 3, 4), fill_mode=fill_mode, fill_value=7)
    params = transform.draw(rgb.shape, generator())
    out = transform.transform(rgb, params)
    for i, image in enumerate(rgb):
        padded = TF.pad(image, [1, 2, 3, 4], fill=7, padding_mode=PADDING_MODES[fill_mode])
        top, left = int(params["top"][i]) + 2, int(params["left"][i]) + 1
        expected = TF.crop(padded, top, left, 24, 20)
        torch.testing.assert_close(out[i], expected, atol=1e-3, rtol=0)


def test_random_crop_pads_if_needed_as_torchvision(rgb):
    transform = RandomCrop((32, 30), pad_if_needed=True)
    params = transform.draw(rgb.shape, generator())
    out = transform.transform(rgb, params)
    assert out.shape == (12, 3, 32, 30)
    for i, image in enumerate(rgb):
        padded = TF.pad(image, [2, 4, 2, 4])  # torchvision pads the difference on both sides
        expected = TF.crop(padded, int(params["top"][i]) + 4, int(params["left"][i]) + 2, 32, 30)
        torch.testing.assert_close(out[i], expected, atol=1e-3, rtol=0)


def test_random_crop_positions_are_uniform():
    transform = RandomCrop(5, padding=1)  # 8x8 padded to 10x10: 6 x 6 positions
    params = transform.draw((36000, 1, 8, 8), generator())
    top, left = params["top"].long() + 1, params["left"].long() + 1
    counts = torch.bincount(top * 6 + left, minlength=36).numpy()
    assert counts.size == 36 and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_random_crop_too_large_is_refused_by_name():
    with pytest.raises(ValueError, match=r"pad_if_needed=True.*Received: size=\[40, 40\]"):
        RandomCrop(40)(torch.zeros(1, 1, 28, 28), generator())
    for bad in ({"size": 0}, {"size": (3, 4, 5)}, {"size": 4, "padding": -1},
                {"size": 4, "padding": (1, 2, 3)}, {"size": 4, "fill_mode": "edge"},
                {"size": 4, "pad_if_needed": "no"}):  # fmt: skip
        with pytest.raises(ValueError, match="Received"):
            RandomCrop(**bad)


@pytest.mark.parametrize("size", [(20, 24), (21, 27), (28, 28), (33, 30), (17, 36)])
def test_center_crop_is_torchvisions(rgb, size):
    out = CenterCrop(size)(rgb, generator())
    torch.testing.assert_close(out, TF.center_crop(rgb, list(size)), atol=1e-3, rtol=0)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_random_resized_crop_is_torchvisions_resized_crop(rgb, interpolation):
    transform = RandomResizedCrop((20, 30), scale=(0.05, 1.0), interpolation=interpolation)
    params = transform.draw(rgb.shape, generator())
    out = transform.transform(rgb, params)
    # kaug's nearest is nearest-exact (half-pixel centres); neither mode antialiases.
    mode = {"bilinear": T.InterpolationMode.BILINEAR, "nearest": T.InterpolationMode.NEAREST_EXACT}
    for i, image in enumerate(rgb):
        box = [int(params[key][i]) for key in ("top", "left", "height", "width")]
        expected = TF.resized_crop(
            image, *box, [20, 30], interpolation=mode[interpolation], antialias=False
        )
        torch.testing.assert_close(out[i], expected, atol=1e-3, rtol=0)


def test_random_resized_crop_boxes_are_drawn_as_torchvisions():
    """Two-sample KS tests of box area and aspect ratio against torchvision's own
    `make_params`, on a non-square image where the ten tries often fail."""
    height, width, n = 12, 40, 3000
    ours = RandomResizedCrop(8, scale=(0.3, 1.0), ratio=(0.5, 2.0)).draw(
        (n, 1, height, width), generator()
    )
    torch.manual_seed(0)
    reference = T.RandomResizedCrop(8, scale=(0.3, 1.0), ratio=(0.5, 2.0))
    theirs = [reference.make_params([torch.zeros(1, height, width)]) for _ in range(n)]
    for name, measure in {"area": lambda h, w: h * w, "ratio": lambda h, w: w / h}.items():
        a = measure(ours["height"].numpy(), ours["width"].numpy())
        b = np.array([measure(p["height"], p["width"]) for p in theirs])
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    inside = (ours["top"] >= 0) & (ours["top"] + ours["height"] <= height)
    inside &= (ours["left"] >= 0) & (ours["left"] + ours["width"] <= width)
    assert inside.all()


def test_random_perspective_is_torchvisions_perspective(rgb):
    transform = RandomPerspective(distortion_scale=0.6, p=1.0, fill_value=0.0)
    params = transform.draw(rgb.shape, generator())
    out = transform.transform(rgb, params)
    columns, rows = G.homography_points(*G.pixel_grid(28, 28, "cpu"), params["coefficients"])
    # Where the source is inside the image both interpolate the same pixels; at the
    # edge torchvision blends with the fill, kaug fills (Keras's constant mode).
    inside = (columns >= 0) & (columns <= 27) & (rows >= 0) & (rows <= 27)
    inside = inside.unsqueeze(1).expand_as(out)
    for i, image in enumerate(rgb):
        coefficients = params["coefficients"][i].tolist()
        expected = TF.perspective(image, None, None, fill=0.0, coefficients=coefficients)
        torch.testing.assert_close(out[i][inside[i]], expected[inside[i]], atol=1e-2, rtol=0)
    assert inside.float().mean() > 0.3
    assert (out[~inside] == 0).all()


def test_random_perspective_corners_are_drawn_in_torchvisions_ranges():
    transform = RandomPerspective(distortion_scale=0.5, p=1.0)
    params = transform.draw((4000, 1, 20, 30), generator())
    # The corners are where the homography takes the image's corners' (start) points
    # back to: invert by mapping the ends through it and comparing.
    starts = torch.tensor([[0.0, 0.0], [29, 0], [29, 19], [0, 19]])
    c = params["coefficients"]
    inverse = torch.linalg.inv(
        torch.cat([c, torch.ones(len(c), 1, dtype=c.dtype)], 1).view(-1, 3, 3)
    )
    ends = torch.cat([starts.double(), torch.ones(4, 1, dtype=c.dtype)], 1) @ inverse.mT
    ends = (ends[..., :2] / ends[..., 2:]).round()
    # torchvision: bound = int(0.5 * half) + 1 -> x offsets 0..7, y offsets 0..5.
    offsets = (ends - starts.double()).abs()
    assert offsets[..., 0].min() == 0 and offsets[..., 0].max() == 7
    assert offsets[..., 1].min() == 0 and offsets[..., 1].max() == 5
    assert torch.unique(offsets[..., 0]).numel() == 8


def test_elastic_is_torchvisions_elastic_given_the_field(rgb):
    transform = RandomElasticTransform(alpha=40.0, sigma=4.0)
    params = transform.draw(rgb.shape, generator())
    out = transform.transform(rgb, params)
    # torchvision's field is in grid_sample units: 2 / size per pixel.
    normalized = params["displacement"].permute(0, 2, 3, 1) * (2.0 / 28)
    columns, rows = G.displace_points(*G.pixel_grid(28, 28, "cpu"), params["displacement"], True)
    inside = (columns >= 0) & (columns <= 27) & (rows >= 0) & (rows <= 27)
    inside = inside.unsqueeze(1).expand_as(out)
    for i, image in enumerate(rgb):
        expected = TF.elastic(image, normalized[i : i + 1], fill=0.0)
        torch.testing.assert_close(out[i][inside[i]], expected[inside[i]], atol=1e-2, rtol=0)


def test_elastic_field_has_torchvisions_strength():
    """The per-pixel spread of kaug's field equals that of torchvision's
    `make_params` (converted to pixels), to 5 %."""
    height = width = 32
    ours = RandomElasticTransform(alpha=30.0, sigma=3.0).draw((64, 1, height, width), generator())
    torch.manual_seed(0)
    reference = T.ElasticTransform(alpha=30.0, sigma=3.0)
    theirs = torch.cat(
        [reference.make_params([torch.zeros(1, height, width)])["displacement"] for _ in range(64)]
    ) * torch.tensor([width / 2, height / 2])
    ratio = ours["displacement"].std() / theirs.std()
    assert 0.95 < ratio < 1.05


def test_p_is_per_image_and_the_others_take_the_neutral_form(rgb):
    x = rgb.repeat(50, 1, 1, 1)  # 600 images
    perspective = RandomPerspective(p=0.4)
    params = perspective.draw(x.shape, generator())
    unchanged = (perspective.transform(x, params) == x).flatten(1).all(1)
    assert torch.equal(unchanged, ~params["applied"])  # exactly as they came
    assert abs(params["applied"].float().mean() - 0.4) < 0.06
    crop = RandomCrop(20, padding=2, p=0.3)
    params = crop.draw(x.shape, generator(1))
    out, kept = crop.transform(x, params), ~params["applied"]
    assert torch.equal(out[kept], TF.center_crop(x[kept], [20, 20]))
    assert not (out[~kept] == TF.center_crop(x[~kept], [20, 20])).flatten(1).all(1).all()
    resized = RandomResizedCrop((20, 24), p=0.3)
    params = resized.draw(x.shape, generator(2))
    out, kept = resized.transform(x, params), ~params["applied"]
    whole = TF.resize(x[kept], [20, 24], antialias=False)
    torch.testing.assert_close(out[kept], whole, atol=1e-3, rtol=0)


GEOMETRIC = [
    lambda: RandomCrop((24, 20), padding=3),
    lambda: CenterCrop((20, 22)),
    lambda: RandomResizedCrop((20, 24), interpolation="nearest"),
    lambda: RandomPerspective(distortion_scale=0.7, interpolation="nearest", p=0.7),
    lambda: RandomElasticTransform(alpha=60.0, sigma=4.0, interpolation="nearest"),
    lambda: RandomPerspective(fill_mode="reflect", interpolation="nearest", p=1.0),
]


@pytest.mark.parametrize("make", GEOMETRIC)
def test_masks_move_exactly_like_the_images(mnist, make):
    """Masks thresholded from the images come out equal to the threshold of the
    transformed images: every pixel, fill included."""
    images = torch.from_numpy(mnist["x_train"][:32].astype("float32")).unsqueeze(1)
    masks = (images > 127.5).to(torch.uint8)
    out = make().call_batch(Batch(images, masks), generator())
    assert out.masks.dtype == torch.uint8 and out.masks.shape == out.images.shape
    assert torch.equal(out.masks, (out.images > 127.5).to(torch.uint8))
    assert not torch.equal(out.images[:, :, :20, :20], images[:, :, :20, :20])


def count_resamplings(monkeypatch):
    """A list that records "images" for each grid_sample and "masks" for each gather."""
    calls = []
    grid_sample, gather_points = torch.nn.functional.grid_sample, G.gather_points
    monkeypatch.setattr(
        G.F, "grid_sample", lambda *a, **k: calls.append("images") or grid_sample(*a, **k)
    )
    monkeypatch.setattr(G, "gather_points", lambda *a: calls.append("masks") or gather_points(*a))
    return calls


def test_a_run_of_crops_is_one_resampling_equal_to_the_steps(rgb, monkeypatch):
    """Crops are whole-pixel maps, so one fused resampling must equal the steps one
    by one exactly, the padding of each step (constant, reflect) included."""
    chain = [
        RandomCrop((26, 30), padding=3, fill_value=9.0),
        RandomCrop(22, padding=(4, 1), fill_mode="reflect"),
        CenterCrop((20, 26), fill_value=5.0),
    ]
    masks = (rgb[:, :1] > 127.5).to(torch.int64)
    calls = count_resamplings(monkeypatch)
    fused = call_stages(chain, Batch(rgb, masks), generator())
    assert calls == ["images", "masks"]  # the images resampled once, the masks gathered once
    g = generator()
    stepped = Batch(rgb, masks)
    for transform in chain:
        stepped = transform.transform_batch(stepped, transform.draw(stepped.images.shape, g))
    assert torch.equal(fused.images, stepped.images)
    assert torch.equal(fused.masks, stepped.masks)


def test_a_fused_warp_is_close_to_the_steps_on_smooth_images(rgb):
    """One resampling instead of three differs from the steps by interpolation error
    only (fills that fold, so no filled edge is blended by a later step)."""
    smooth = TF.gaussian_blur(rgb, [9, 9], [3.0, 3.0])
    chain = [RandomPerspective(p=1.0, fill_mode="reflect"), RandomResizedCrop(24, (0.5, 1.0)),
             RandomElasticTransform(alpha=20.0, sigma=5.0, fill_mode="nearest")]  # fmt: skip
    fused = call_stages(chain, Batch(smooth), generator()).images
    g, stepped = generator(), smooth
    for transform in chain:
        stepped = transform.transform(stepped, transform.draw(stepped.shape, g))
    difference = (fused - stepped).abs()  # of 0..255
    assert difference.median() < 1.0 and difference.quantile(0.99) < 10.0


def test_the_generator_fuses_the_run_and_serves_masks(mnist, monkeypatch):
    x = mnist["x_train"][:64, :, :, None]
    masks = (x[..., 0] > 127).astype("uint8")
    datagen = kaug.ImageDataGenerator(
        transforms=[
            RandomCrop(24, padding=2),
            RandomPerspective(p=1.0, interpolation="nearest"),
            RandomResizedCrop(20, interpolation="nearest"),
        ],  # fmt: skip
        device="cpu",
    )
    calls = count_resamplings(monkeypatch)
    images, served = next(iter(datagen.flow(x, masks=masks, batch_size=32, seed=0)))
    assert calls == ["images", "masks"]
    assert images.shape == (32, 20, 20, 1) and served.shape == (32, 20, 20)
    np.testing.assert_array_equal(served, images[..., 0] > 127)


SIZES = st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 24), st.integers(1, 24))
FILLS = st.sampled_from(G.FILL_MODES)
CONFIGS = st.one_of(
    st.builds(RandomCrop, st.integers(1, 30), st.none() | st.integers(0, 5), st.just(True),
              FILLS, st.floats(-10, 10), st.floats(0, 1)),
    st.builds(CenterCrop, st.tuples(st.integers(1, 30), st.integers(1, 30)), st.floats(-5, 5),
              st.floats(0, 1)),
    st.builds(RandomResizedCrop, st.integers(1, 30), st.tuples(st.floats(0.01, 0.5),
              st.floats(0.5, 1.0)), st.tuples(st.floats(0.2, 1.0), st.floats(1.0, 5.0)),
              st.sampled_from(["nearest", "bilinear"]), st.floats(0, 1)),
    st.builds(RandomPerspective, st.floats(0, 1), FILLS, st.floats(-5, 5),
              st.sampled_from(["nearest", "bilinear"]), st.floats(0, 1)),
    st.builds(RandomElasticTransform, st.floats(0, 500), st.floats(0, 20), FILLS),
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True)
@given(transforms=st.lists(CONFIGS, min_size=1, max_size=3), shape=SIZES,
       seed=st.integers(0, 2**32), with_masks=st.booleans())  # fmt: skip
def test_valid_configurations_never_crash_or_make_nan(census, transforms, shape, seed,
                                                      with_masks):  # fmt: skip
    census.tried["geometric runs x shapes"] += 1  # reported in pytest's summary
    images = torch.rand(shape, generator=generator(seed)) * 255
    masks = (images[:, :1] > 127).long() if with_masks else None
    out = call_stages(transforms, Batch(images, masks), generator(seed))
    height, width = shape[2:]
    for transform in transforms:
        height, width = transform.output_size(height, width)
    assert out.images.shape == (shape[0], shape[1], height, width)
    assert torch.isfinite(out.images).all()
    low = min(0.0, *(t.fill_value for t in transforms))
    high = max(255.0, *(t.fill_value for t in transforms))
    assert ((out.images >= low - 1e-3) & (out.images <= high + 1e-3)).all()
    if with_masks:
        assert out.masks.shape == (shape[0], 1, height, width)
        assert set(out.masks.unique().tolist()) <= {0, 1}
