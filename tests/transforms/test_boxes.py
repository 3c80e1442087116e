"""Boxes and keypoints through every geometric step: torchvision's functionals given
kaug's draws, objects drawn as filled rectangles staying inside their boxes, marked
pixels under their keypoints, fused runs equal to the steps one by one."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from kaug.batch import Batch, Boxes, Keypoints
from kaug.functional import targets as T
from kaug.transforms import (
    CenterCrop,
    CutMix,
    KerasAugmentation,
    MixUp,
    RandAugment,
    RandomCrop,
    RandomElasticTransform,
    RandomPerspective,
    RandomResizedCrop,
    TrivialAugmentWide,
)
from kaug.transforms.geometric import call_stages, warp_stages
from kaug.transforms.policies import GEOMETRIC

HEIGHT, WIDTH = 40, 52


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def scene(batch=6, objects=3, seed=0):
    """A batch of black images with `objects` filled rectangles each (object k has the
    value 40 * (k + 1)), their boxes (label k, one padding row), and per object one
    keypoint at the centre of a marked 3x3 block (value k + 1 on channel 1)."""
    rng = np.random.default_rng(seed)
    images = torch.zeros(batch, 2, HEIGHT, WIDTH)
    xyxy = torch.full((batch, objects + 1, 4), -1.0)
    labels = torch.full((batch, objects + 1), -1, dtype=torch.long)
    points = torch.zeros(batch, objects, 2)
    for b in range(batch):
        for k in range(objects):
            x1, y1 = int(rng.integers(0, WIDTH - 8)), int(rng.integers(0, HEIGHT - 8))
            x2 = int(rng.integers(x1 + 4, min(WIDTH, x1 + 20) + 1))
            y2 = int(rng.integers(y1 + 4, min(HEIGHT, y1 + 20) + 1))
            images[b, 0, y1:y2, x1:x2] = 40.0 * (k + 1)
            xyxy[b, k] = torch.tensor([x1, y1, x2, y2], dtype=torch.float32)
            labels[b, k] = k
            px, py = int(rng.integers(1, WIDTH - 1)), int(rng.integers(1, HEIGHT - 1))
            images[b, 1, py - 1 : py + 2, px - 1 : px + 2] = 1.0 + k
            points[b, k] = torch.tensor([px + 0.5, py + 0.5])
    visible = torch.ones(batch, objects, dtype=torch.bool)
    return Batch(images, boxes=Boxes(xyxy, labels), keypoints=Keypoints(points, visible))


def tv_boxes(xyxy, size):
    return tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=size)


def tv_points(xy, size):
    return tv_tensors.KeyPoints(xy, canvas_size=size)


def expected_by_torchvision(transform, params, i, xyxy, xy):
    """torchvision's functional on image i's boxes and keypoints, given kaug's draws."""
    size = (HEIGHT, WIDTH)
    if isinstance(transform, RandomCrop):
        top, left = int(params["top"][i]), int(params["left"][i])
        call = lambda t: TF.crop(t, top, left, *transform.size)  # noqa: E731
    elif isinstance(transform, CenterCrop):
        call = lambda t: TF.center_crop(t, transform.size)  # noqa: E731
    elif isinstance(transform, RandomResizedCrop):
        box = [int(params[k][i]) for k in ("top", "left", "height", "width")]
        call = lambda t: TF.resized_crop(t, *box, transform.size)  # noqa: E731
    else:
        coefficients = params["coefficients"][i].tolist()
        call = lambda t: TF.perspective(t, None, None, coefficients=coefficients)  # noqa: E731
    return call(tv_boxes(xyxy, size)), call(tv_points(xy, size))


@pytest.mark.parametrize(
    "transform",
    [RandomCrop((30, 36), padding=4), CenterCrop((30, 60)), RandomResizedCrop((32, 24)),
     RandomPerspective(0.6, p=1.0)],
    ids=["crop", "centre crop", "resized crop", "perspective"],
)  # fmt: skip
def test_boxes_and_keypoints_match_torchvision(transform):
    """Before kaug's clip: the moved corners' boxes and the moved points equal
    torchvision's `crop`/`center_crop`/`resized_crop`/`perspective` on
    `BoundingBoxes`/`KeyPoints`, to 1e-4 pixels, image by image."""
    batch = scene(seed=1)
    params = transform.draw(batch.images.shape, generator(2))
    size = transform.output_size(HEIGHT, WIDTH)

    def step(x, y):
        return transform.target_points((x, y), params, (HEIGHT, WIDTH))

    def far_inside(x, y):  # moved far into a huge canvas: no box is clipped or dropped
        x, y = step(x, y)
        return x + 1e5, y + 1e5

    moved = T.move_boxes(batch.boxes.xyxy.double(), batch.boxes.labels, far_inside, 10**6,
                         10**6)[0] - 1e5  # fmt: skip
    points = T.move_keypoints(batch.keypoints.xy, batch.keypoints.visible, step, *size)
    for i in range(len(batch.images)):
        kept = batch.boxes.valid[i]
        boxes, keypoints = expected_by_torchvision(
            transform, params, i, batch.boxes.xyxy[i, kept], batch.keypoints.xy[i]
        )
        # torchvision clamps boxes to the canvas ("soft" clamping): compare clamped.
        limits = torch.tensor([size[1], size[0]] * 2, dtype=torch.float32)
        ours = torch.minimum(moved[i, : int(kept.sum())].float().clamp(min=0), limits)
        torch.testing.assert_close(ours, boxes.as_subclass(torch.Tensor), atol=1e-4, rtol=0)
        torch.testing.assert_close(points[0][i], keypoints.as_subclass(torch.Tensor),
                                   atol=1e-4, rtol=0)  # fmt: skip


def object_pixels_outside_boxes(out, slack=1.0):
    """The largest distance (pixels) by which a pixel of object k lies outside its box."""
    worst = 0.0
    images, boxes = out.images, out.boxes
    for b in range(len(images)):
        for row in range(boxes.xyxy.shape[1]):
            label = int(boxes.labels[b, row])
            if label < 0:
                continue
            rows, cols = torch.nonzero(images[b, 0] == 40.0 * (label + 1), as_tuple=True)
            if len(rows) == 0:
                continue
            x1, y1, x2, y2 = boxes.xyxy[b, row].tolist()
            cx, cy = cols.double() + 0.5, rows.double() + 0.5
            outside = torch.stack([x1 - cx, cx - x2, y1 - cy, cy - y2]).amax(0).clamp(min=0)
            worst = max(worst, float(outside.max()))
    return worst


def dropped_objects_still_shown(out, minimum_pixels=40):
    """Labels whose object still shows `minimum_pixels` or more but whose box went."""
    missing = []
    for b in range(len(out.images)):
        kept = set(out.boxes.labels[b][out.boxes.valid[b]].tolist())
        for label in range(3):
            shown = int((out.images[b, 0] == 40.0 * (label + 1)).sum())
            if shown >= minimum_pixels and label not in kept:
                missing.append((b, label, shown))
    return missing


def keypoints_off_their_pixels(out, slack=1.0):
    """Visible keypoints farther than a pixel from every pixel of their marker (the
    marked block's centre may fall between output pixels; a block of 3 is never lost
    whole at these zooms)."""
    off = []
    for b in range(len(out.images)):
        for k in range(out.keypoints.xy.shape[1]):
            if not out.keypoints.visible[b, k]:
                continue
            x, y = out.keypoints.xy[b, k].tolist()
            rows, cols = torch.nonzero(out.images[b, 1] == 1.0 + k, as_tuple=True)
            if len(rows) == 0:
                off.append((b, k, "marker gone"))
                continue
            distance = torch.maximum((cols + 0.5 - x).abs(), (rows + 0.5 - y).abs()).min()
            if distance > slack:
                off.append((b, k, float(distance)))
    return off


NEAREST = [
    lambda: KerasAugmentation(rotation_range=45, width_shift_range=0.2, height_shift_range=0.1,
                              shear_range=15, zoom_range=0.3, horizontal_flip=True,
                              vertical_flip=True, fill_mode="constant", interpolation_order=0),
    lambda: RandomCrop((30, 40), padding=6),
    lambda: CenterCrop((30, 60)),
    lambda: RandomResizedCrop((36, 30), scale=(0.3, 1.0), interpolation="nearest"),
    lambda: RandomPerspective(0.6, interpolation="nearest", p=1.0),
    lambda: RandomElasticTransform(60.0, 6.0, interpolation="nearest"),
]  # fmt: skip
IDS = ["keras stage", "crop", "centre crop", "resized crop", "perspective", "elastic"]


@pytest.mark.parametrize("make", NEAREST, ids=IDS)
def test_objects_stay_inside_their_boxes_and_markers_under_their_keypoints(make):
    """Nearest sampling: every pixel of every object lies within a pixel of its moved box;
    every visible keypoint lies within a pixel of its moved marker; no object that still
    shows lost its box. (The elastic map is inverted by iteration: the same holds.)"""
    transform = make()
    batch = scene(seed=3)
    out = transform.call_batch(batch, generator(4))
    assert not torch.equal(out.images, batch.images)
    assert object_pixels_outside_boxes(out) <= 1.0
    assert keypoints_off_their_pixels(out) == []
    assert dropped_objects_still_shown(out) == []


def test_policies_move_boxes_and_keypoints_with_their_geometric_operations():
    """Each image through geometric operations only. After three nearest resamplings of
    the image a marker may drift a pixel from where the exact map puts its keypoint."""
    batch = scene(seed=5)
    for policy in (RandAugment(num_ops=3, magnitude=20), TrivialAugmentWide()):
        params = policy.draw(batch.images.shape, generator(6))
        geometric = torch.tensor([policy.ops.index(op) for op in sorted(GEOMETRIC)])
        params["ops"] = geometric[params["ops"] % len(geometric)]
        scaled = batch.replace(images=batch.images)  # policies' value_range is 0..255
        out = policy.transform_batch(scaled, params)
        assert not torch.equal(out.boxes.xyxy, batch.boxes.xyxy)
        assert object_pixels_outside_boxes(out) <= policy.num_ops
        assert keypoints_off_their_pixels(out, slack=policy.num_ops) == []


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    chain=st.lists(st.sampled_from(range(len(NEAREST))), min_size=2, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_a_fused_run_moves_targets_as_its_steps_one_by_one(chain, seed):
    """One resampling for the images; the boxes and keypoints stage by stage, clipped at
    each stage's output: exactly what the steps one after the other give."""
    transforms = [NEAREST[i]() for i in chain]
    transforms = [t for t in transforms if not isinstance(t, KerasAugmentation)]
    if len(transforms) < 2:
        return
    batch = scene(seed=seed % 100)
    fused = call_stages(transforms, batch, generator(seed))
    g = generator(seed)
    stepped = batch
    for transform in transforms:
        stepped = warp_stages(stepped, [(transform, transform.draw(stepped.images.shape, g))])
    torch.testing.assert_close(fused.boxes.xyxy, stepped.boxes.xyxy, atol=1e-3, rtol=0)
    assert torch.equal(fused.boxes.labels, stepped.boxes.labels)
    assert torch.equal(fused.keypoints.visible, stepped.keypoints.visible)
    torch.testing.assert_close(fused.keypoints.xy, stepped.keypoints.xy, atol=1e-3, rtol=0)


def test_elastic_inverse_residual_is_small():
    """The elastic map has no closed-form inverse: `target_points` iterates. Measured:
    mapping the moved points back with `source_points` lands within 0.05 pixels."""
    transform = RandomElasticTransform(alpha=80.0, sigma=6.0)
    params = transform.draw((4, 1, HEIGHT, WIDTH), generator(7))
    x = torch.rand(4, 200, 1, generator=generator(8)) * (WIDTH - 1)
    y = torch.rand(4, 200, 1, generator=generator(9)) * (HEIGHT - 1)
    out_x, out_y = transform.target_points((x, y), params, (HEIGHT, WIDTH))
    back_x, back_y = transform.source_points((out_x, out_y), params, (HEIGHT, WIDTH), False)
    inside = (out_x > 0) & (out_x < WIDTH - 1) & (out_y > 0) & (out_y < HEIGHT - 1)
    residual = torch.maximum((back_x - x).abs(), (back_y - y).abs())[inside]
    assert float(residual.max()) < 0.05


def test_boxes_left_too_small_are_dropped_and_rows_compacted():
    xyxy = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [-1, -1, -1, -1], [8.0, 8.0, 30.0, 30.0],
                          [18.0, 0.0, 40.0, 4.0]]])  # fmt: skip
    labels = torch.tensor([[0, -1, 1, 2]])

    def shift(x, y):
        return x + 10, y + 10  # the first box half out of a 20x20 output, the third 3/4

    moved, kept = T.move_boxes(xyxy, labels, shift, 20, 20, min_visibility=0.3)
    assert kept.tolist() == [[0, -1, -1, -1]]  # box 1: 4% left; box 2: outside entirely
    assert moved[0, 0].tolist() == [10.0, 10.0, 20.0, 20.0]
    assert (moved[0, 1:] == -1).all()
    moved, kept = T.move_boxes(xyxy, labels, shift, 40, 40, min_size=5.0)
    assert kept.tolist() == [[0, 1, -1, -1]]  # the 22x4 box is under 5 pixels high


def test_keypoints_outside_turn_invisible_and_keep_their_coordinates():
    xy = torch.tensor([[[5.0, 5.0], [15.0, 2.0]]])

    def shift(x, y):
        return x + 10, y

    moved, visible = T.move_keypoints(xy, torch.ones(1, 2, dtype=torch.bool), shift, 20, 20)
    assert visible.tolist() == [[True, False]] and moved[0, 1].tolist() == [25.0, 2.0]


def test_cutmix_keeps_what_remains_and_takes_the_pasted_share():
    """Each image keeps its boxes that the pasted rectangle leaves visible (whole), then
    its partner's boxes cut to the rectangle; keypoints under the rectangle hide."""
    batch = scene(batch=8, seed=11)
    cutmix = CutMix(alpha=1.0)
    params = cutmix.draw(batch.images.shape, generator(12))
    out = cutmix.transform_batch(batch, params)
    for b in range(8):
        top, bottom, left, right = params["box"][b].tolist()
        rect = torch.tensor([left, top, right, bottom], dtype=torch.float32)
        mine = batch.boxes.xyxy[b][batch.boxes.valid[b]]
        covered = torch.cat([mine[:, :2].clamp(min=rect[:2]), mine[:, 2:].clamp(max=rect[2:])], 1)
        hidden = ((covered[:, 2:] - covered[:, :2]).clamp(min=0).prod(1)
                  == (mine[:, 2:] - mine[:, :2]).prod(1))  # fmt: skip
        partner = params["partner"][b]
        theirs = batch.boxes.xyxy[partner][batch.boxes.valid[partner]]
        cut = torch.cat([theirs[:, :2].clamp(min=rect[:2]), theirs[:, 2:].clamp(max=rect[2:])], 1)
        cut = cut[((cut[:, 2:] - cut[:, :2]) > 0).all(1)]
        expected = torch.cat([mine[~hidden], cut])
        torch.testing.assert_close(out.boxes.xyxy[b][out.boxes.valid[b]], expected)
        for k in range(3):
            x, y = batch.keypoints.xy[b, k].tolist()
            under = left <= x < right and top <= y < bottom
            assert bool(out.keypoints.visible[b, k]) == (not under)


def test_mixup_serves_both_images_boxes():
    batch = scene(batch=4, seed=13)
    mixup = MixUp(alpha=1.0)
    params = mixup.draw(batch.images.shape, generator(14))
    out = mixup.transform_batch(batch, params)
    for b in range(4):
        mine = batch.boxes.xyxy[b][batch.boxes.valid[b]]
        theirs = batch.boxes.xyxy[params["partner"][b]][batch.boxes.valid[params["partner"][b]]]
        served = out.boxes.xyxy[b][out.boxes.valid[b]]
        assert torch.equal(served, torch.cat([mine, theirs]))


def test_per_image_p_leaves_the_targets_of_images_not_drawn():
    batch = scene(seed=15)
    transform = RandomPerspective(0.6, p=0.5)
    params = transform.draw(batch.images.shape, generator(16))
    out = transform.transform_batch(batch, params)
    for b in range(len(batch.images)):
        same = torch.equal(out.boxes.xyxy[b, :4], batch.boxes.xyxy[b])
        assert same == (not bool(params["applied"][b]))


def test_kornia_geometric_modules_move_boxes_with_their_pixels():
    K = pytest.importorskip("kornia.augmentation")
    from kaug.transforms import KorniaTransform

    batch = scene(seed=17)
    for module in (K.RandomHorizontalFlip(p=1.0), K.RandomAffine(25, (0.1, 0.1), p=1.0,
                                                                 resample="nearest")):  # fmt: skip
        out = KorniaTransform(module).call_batch(batch, generator(18))
        assert object_pixels_outside_boxes(out) <= 1.0
        assert keypoints_off_their_pixels(out) == []
    elastic = KorniaTransform(K.RandomElasticTransform(p=1.0))
    with pytest.raises(ValueError, match="cannot move the batch's boxes and keypoints"):
        elastic.call_batch(batch, generator(19))
