"""Crops, resized crops, perspective and elastic warps: maps of sampling points, so
that any run of them costs one resampling of the images (and one of the masks).

A `GeometricTransform` does not move pixels itself: it maps the pixel coordinates
of its output to those of its input (`source_points`). `warp_stages` composes
the maps of consecutive geometric transforms, last to first, folds the points at
each stage the way that stage's `fill_mode` says, and samples the original images
once; masks follow the same points with nearest sampling, 0 where the images get
`fill_value`. `ImageDataGenerator(transforms=[...])` fuses every run of adjacent
geometric transforms this way; alone, each is one run of its own.
"""

import torch

from kaug._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
    check_pair,
    invalid,
    is_number,
    scalar,
)
from kaug.batch import Batch
from kaug.functional import geometric as G
from kaug.functional.blur import gaussian_blur
from kaug.sampling import bernoulli, box_tries, first_fit, uniform
from kaug.transforms.base import BatchTransform, register_transform

INTERPOLATIONS = ("nearest", "bilinear")


def check_size(name, size):
    """An output size: an int for a square, or (height, width); as [height, width]."""
    size = scalar(size)
    if is_number(size):
        side = check_int(name, size, minimum=1)
        return [side, side]
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise invalid(name, size, "must be a positive int or a (height, width) pair of them")
    return [check_int(name, side, minimum=1) for side in size]


def check_padding(padding):
    """torchvision's padding forms: None, an int for all sides, (left/right, top/bottom)
    or (left, top, right, bottom); as [left, top, right, bottom]."""
    if padding is None:
        return None
    padding = scalar(padding)
    sides = [padding] if is_number(padding) else padding
    if not isinstance(sides, (list, tuple)) or len(sides) not in (1, 2, 4):
        raise invalid("padding", padding, "must be an int or a sequence of 2 or 4 ints")
    sides = [check_int("padding", side) for side in sides]
    return (sides * 4)[:4] if len(sides) < 4 else sides


class GeometricTransform(BatchTransform):
    """A transform that moves images and every target through a map of points.

    Subclasses implement `sample` and the map both ways: `source_points` (output
    -> input, to resample the images and masks) and `target_points` (input ->
    output, to move boxes and keypoints), and `output_size` when they change the
    size. Images not drawn (per-image `p`) take `neutral_points` /
    `neutral_target_points`: the identity, or for a transform that changes the size
    its least random form (a centre crop, a resize of the whole image).

    Args:
        fill_mode: "constant" (`fill_value` outside the image), "nearest",
            "reflect" or "wrap", as the ImageDataGenerator's `fill_mode`.
        fill_value: the value for fill_mode="constant".
        interpolation: "bilinear" or "nearest".
        p: probability of transforming each image.
    """

    writes = ("images", "masks", "boxes", "keypoints")
    moves_pixels = True

    def __init__(self, fill_mode="constant", fill_value=0.0, interpolation="bilinear", p=1.0):
        super().__init__(p=p)
        self.fill_mode = check_choice("fill_mode", fill_mode, G.FILL_MODES)
        self.fill_value = float(check_number("fill_value", fill_value))
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)

    def output_size(self, height, width):
        """The (height, width) of the output for inputs of (height, width)."""
        return height, width

    def source_points(self, points, params, size, on_grid):
        """Map output pixel coordinates to input ones.

        Args:
            points: (columns, rows), x and y coordinates in this transform's
                output, each broadcasting to (B, h, w) (`kaug.functional.geometric`).
            params: `sample`'s draws.
            size: the input's (height, width).
            on_grid: True when `points` are exactly the output's pixel grid.
        """
        raise NotImplementedError

    def target_points(self, points, params, size):
        """Map input pixel coordinates to output ones: the inverse of `source_points`.

        Args:
            points: (x, y) pixel-centre coordinates in this transform's input, each
                (B, N, 1) (or broadcasting to it).
            params: `sample`'s draws.
            size: the input's (height, width).
        """
        raise NotImplementedError

    def neutral_points(self, points, params, size):
        """Where the images not drawn sample: the identity by default."""
        return points

    def neutral_target_points(self, points, params, size):
        """The inverse of `neutral_points`: the identity by default."""
        return points

    def map_target_points(self, points, params, size):
        return _per_image(
            self.target_points(points, params, size),
            self.neutral_target_points(points, params, size),
            params.get("applied"),
        )

    def draw(self, shape, generator):
        params = dict(self.sample(tuple(shape), generator))
        if self.p < 1:
            params["applied"] = bernoulli((shape[0],), generator, self.p)
        return params

    def map_points(self, points, params, size, on_grid):
        return _per_image(
            self.source_points(points, params, size, on_grid),
            self.neutral_points(points, params, size),
            params.get("applied"),
        )

    def is_identity(self, size):
        """True when, at this input size, no image can move."""
        return self.p == 0 and tuple(self.output_size(*size)) == tuple(size)

    def apply(self, x, params):
        return self.apply_batch(Batch(x), params).images

    def apply_batch(self, batch, params):
        return warp_stages(batch, [(self, params)])

    def transform(self, x, params):
        return self.apply(x, params)

    def transform_batch(self, batch, params):
        return self.apply_batch(batch, params)


def _per_image(mapped, neutral, applied):
    """Each image's points from `mapped` where it was drawn (`applied`), else `neutral`."""
    if applied is None:
        return mapped
    applied = applied.view(-1, 1, 1)
    return tuple(torch.where(applied, m, n) for m, n in zip(mapped, neutral, strict=True))


def draw_stages(transforms, shape, generator):
    """[(transform, params)] for a run of geometric transforms applied in order, each
    drawn for the size its input will have."""
    stages = []
    batch, channels, height, width = shape
    for transform in transforms:
        stages.append((transform, transform.draw((batch, channels, height, width), generator)))
        height, width = transform.output_size(height, width)
    return stages


def warp_stages(batch, stages, dtype=torch.float32):
    """Apply a run of geometric transforms with their params as one resampling.

    The output grid's points go through each stage's map, last stage first, and
    are folded into that stage's input by its `fill_mode`; a point that leaves a
    "constant" stage's input takes that stage's `fill_value` (the outermost such
    stage's). The images are then sampled once (bilinear if any stage is), the
    masks gathered once (nearest, every label value kept, 0 where the images are
    filled). Integer images come out in `dtype`, floating ones in their own.
    """
    x = batch.images
    if not x.is_floating_point():
        x = x.to(dtype)
    size = tuple(x.shape[2:])
    sizes = [size]
    for transform, _ in stages:
        sizes.append(tuple(transform.output_size(*sizes[-1])))
    active = [
        (t, p, s) for (t, p), s in zip(stages, sizes[:-1], strict=True) if not t.is_identity(s)
    ]
    if not active:
        return batch.replace(images=x)
    points_dtype = torch.promote_types(x.dtype, torch.float32)  # float16 images: float32 points
    points = G.pixel_grid(*sizes[-1], x.device, points_dtype)
    outside, fill = None, None  # where the images show a stage's fill_value, and which
    on_grid = True
    for transform, params, (height, width) in reversed(active):
        points = transform.map_points(points, params, (height, width), on_grid)
        *points, leaves = G.fold_points(*points, height, width, transform.fill_mode)
        if leaves is not None:
            outside, fill = _fills(outside, fill, leaves, transform.fill_value, x.dtype)
        on_grid = False
    order = 1 if any(t.interpolation == "bilinear" for t, _, _ in active) else 0
    x = x.contiguous()  # grid_sample reads (B, C, H, W)-contiguous input fastest
    images = G.sample_points(x, *points, order)  # the points are folded in already
    if outside is not None:
        if isinstance(fill, torch.Tensor):
            images = torch.where(outside.unsqueeze(1), fill.unsqueeze(1), images)
        else:  # one value: in place, on the fresh output
            images = images.masked_fill_(outside.unsqueeze(1), fill)
    masks = batch.masks
    if masks is not None:  # gathered: label values never go through a float
        masks = G.gather_points(masks, *points)
        if outside is not None:
            masks = masks.masked_fill_(outside.unsqueeze(1), 0)
    untouched = _untouched(active, size, sizes[-1])
    if untouched is not None:  # exactly as they came, not resampled in place
        images = torch.where(untouched.view(-1, 1, 1, 1), x, images)
        if masks is not None:
            masks = torch.where(untouched.view(-1, 1, 1, 1), batch.masks, masks)
    return move_targets(batch.replace(images=images, masks=masks), active)


def move_targets(batch, stages):
    """The batch's boxes and keypoints through `stages` ([(transform, params, input
    size)]), one stage after the other, as if each ran alone: a box is clipped to
    each stage's output (a crop then a rotation keeps what the crop left)."""
    if batch.boxes is None and batch.keypoints is None:
        return batch
    for transform, params, size in stages:

        def step(x, y, transform=transform, params=params, size=size):
            return transform.map_target_points((x, y), params, size)

        batch = batch.moved_targets(step, *transform.output_size(*size))
    return batch


def _fills(outside, fill, leaves, value, dtype):
    """Add the points that left a "constant" stage's input to those a later stage
    filled (which keep that stage's value): (outside, the fill: one number, or a
    tensor of them where stages differ)."""
    if outside is None:
        return leaves, value
    if isinstance(fill, torch.Tensor) or fill != value:
        if not isinstance(fill, torch.Tensor):  # made on the device: no host copy
            fill = torch.full((), fill, dtype=dtype, device=leaves.device)
        fill = torch.where(leaves & ~outside, value, fill)
    return outside | leaves, fill


def _untouched(active, size, out_size):
    """(B,) True for the images no stage was drawn for, when the stages keep the
    size (their neutral map is then the identity); else None."""
    if tuple(size) != tuple(out_size):
        return None
    untouched = None
    for transform, params, stage_size in active:
        applied = params.get("applied")
        if applied is None or transform.output_size(*stage_size) != tuple(stage_size):
            return None
        untouched = ~applied if untouched is None else untouched & ~applied
    return untouched


def call_stages(transforms, batch, generator, dtype=torch.float32):
    """A run of geometric transforms on a `Batch`: drawn in order, warped once."""
    return warp_stages(batch, draw_stages(transforms, batch.images.shape, generator), dtype)


class KerasWarp(GeometricTransform):
    """The rotation, shift, shear, zoom and flips of a `KerasAugmentation` as the first
    stage of a geometric run, when the stage has nothing photometric (channel shift
    and brightness must see the whole warped image): the pipeline then resamples
    once for the Keras warp and the crops after it. Same draws, same fill, same
    interpolation as the stage alone. Made by the pipeline, not registered.
    """

    def __init__(self, augmentation):
        super().__init__(
            augmentation.fill_mode,
            augmentation.cval,
            "bilinear" if augmentation.interpolation_order else "nearest",
            augmentation.p,
        )
        self.augmentation = augmentation

    def draw(self, shape, generator):
        return self.augmentation.draw(shape, generator)

    def is_identity(self, size):
        return self.augmentation.is_identity

    def source_points(self, points, params, size, on_grid):
        return G.affine_points(*points, self.augmentation.matrix(params, *size))

    def target_points(self, points, params, size):
        return G.affine_points(*points, G.invert_affine(self.augmentation.matrix(params, *size)))


def _shift(points, dx, dy):
    """Points moved by (B,) tensors or Python numbers (no host-to-device copy)."""
    columns, rows = points
    if isinstance(dx, torch.Tensor):
        dx, dy = dx.to(columns.dtype).view(-1, 1, 1), dy.to(rows.dtype).view(-1, 1, 1)
    return columns + dx, rows + dy


def _resize_points(points, size, out_size):
    """Points of an `out_size` output sampling a whole `size` input (a resize)."""
    (height, width), (out_height, out_width), (columns, rows) = size, out_size, points
    return G.box_points(columns, 0, width, out_width), G.box_points(rows, 0, height, out_height)


def _resize_target_points(points, size, out_size):
    """Where a whole `size` input's points land in its resize to `out_size`."""
    (height, width), (out_height, out_width), (x, y) = size, out_size, points
    return (
        G.box_target_points(x, 0, width, out_width),
        G.box_target_points(y, 0, height, out_height),
    )


@register_transform
class RandomCrop(GeometricTransform):
    """A `size` window at a random place in each image (torchvision's `RandomCrop`),
    optionally padded first (the CIFAR "pad 4 and crop" is `padding=4`).

    Args:
        size: (height, width) of the output, or an int for a square.
        padding: None, an int for every side, (left/right, top/bottom), or
            (left, top, right, bottom); the padding is `fill_mode`'s.
        pad_if_needed: pad (torchvision's way) where the image is smaller than size.
        fill_mode: how the padding is filled: "constant" (`fill_value`),
            "nearest" (torchvision's "edge"), "reflect" (its "symmetric"), "wrap".
        fill_value: the constant padding value.
        p: probability of a random window per image; the others take the centre.
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill_mode="constant",
                 fill_value=0.0, p=1.0):  # fmt: skip
        # Whole-pixel moves: nearest sampling copies the pixels exactly.
        super().__init__(fill_mode, fill_value, "nearest", p)
        self.size = check_size("size", size)
        self.padding = check_padding(padding)
        self.pad_if_needed = check_bool("pad_if_needed", pad_if_needed)

    def output_size(self, height, width):
        return tuple(self.size)

    def canvas(self, height, width):
        """(pad_left, pad_top, padded height, padded width) for inputs of this size."""
        left, top, right, bottom = self.padding or (0, 0, 0, 0)
        padded_height, padded_width = height + top + bottom, width + left + right
        crop_height, crop_width = self.size
        if self.pad_if_needed:
            if padded_height < crop_height:
                top += crop_height - padded_height
                padded_height += 2 * (crop_height - padded_height)
            if padded_width < crop_width:
                left += crop_width - padded_width
                padded_width += 2 * (crop_width - padded_width)
        if padded_height < crop_height or padded_width < crop_width:
            raise invalid(
                "size",
                self.size,
                f"must fit in the {'padded ' if self.padding else ''}images, which are "
                f"{padded_height}x{padded_width}: pass pad_if_needed=True or a smaller size",
            )
        return left, top, padded_height, padded_width

    def sample(self, shape, generator):
        batch, _, height, width = shape
        left, top, padded_height, padded_width = self.canvas(height, width)
        u = uniform((2, batch), generator)
        rows, cols = padded_height - self.size[0] + 1, padded_width - self.size[1] + 1
        # randint(0, room) as torchvision; Python numbers: no host-to-device copy.
        offset_top = torch.floor(u[0] * rows).clamp(max=rows - 1)
        offset_left = torch.floor(u[1] * cols).clamp(max=cols - 1)
        return {"top": offset_top - top, "left": offset_left - left}

    def source_points(self, points, params, size, on_grid):
        return _shift(points, params["left"], params["top"])

    def target_points(self, points, params, size):
        return _shift(points, -params["left"], -params["top"])

    def neutral_points(self, points, params, size):
        return _shift(points, *self._centre_window(size))

    def neutral_target_points(self, points, params, size):
        dx, dy = self._centre_window(size)
        return _shift(points, -dx, -dy)

    def _centre_window(self, size):
        """(left, top) of the centre window, the images not drawn's."""
        left, top, padded_height, padded_width = self.canvas(*size)
        dx = round((padded_width - self.size[1]) / 2) - left
        dy = round((padded_height - self.size[0]) / 2) - top
        return dx, dy


@register_transform
class CenterCrop(GeometricTransform):
    """The central `size` window of each image (torchvision's `CenterCrop`: an image
    smaller than `size` is padded with `fill_value`).

    Args:
        size: (height, width) of the output, or an int for a square.
        fill_value: the value around images smaller than size.
        p: probability of cropping each image; the others are resized to `size`
            whole, nearest (a size-changing transform needs some output for them).
    """

    def __init__(self, size, fill_value=0.0, p=1.0):
        super().__init__("constant", fill_value, "nearest", p)
        self.size = check_size("size", size)

    def output_size(self, height, width):
        return tuple(self.size)

    def source_points(self, points, params, size, on_grid):
        (height, width), (crop_height, crop_width) = size, self.size
        return _shift(points, _centre(width, crop_width), _centre(height, crop_height))

    def target_points(self, points, params, size):
        (height, width), (crop_height, crop_width) = size, self.size
        return _shift(points, -_centre(width, crop_width), -_centre(height, crop_height))

    def neutral_points(self, points, params, size):
        return _resize_points(points, size, self.size)

    def neutral_target_points(self, points, params, size):
        return _resize_target_points(points, size, self.size)


def _centre(side, crop):
    """torchvision's `center_crop` offset: round half to even, or (crop - side) // 2
    of padding before an image smaller than the crop."""
    return round((side - crop) / 2) if side >= crop else -((crop - side) // 2)


@register_transform
class RandomResizedCrop(GeometricTransform):
    """A random box of each image resized to `size` (torchvision's
    `RandomResizedCrop`): area a share in `scale` of the image, aspect ratio
    log-uniform in `ratio`, ten tries per image then torchvision's central fallback.

    The resize is bilinear (or nearest) with half-pixel centres and no antialiasing,
    as torchvision's with `antialias=False`, and is folded into the same single
    resampling as the crop.

    Args:
        size: (height, width) of the output, or an int for a square.
        scale: (low, high) share of the image's area.
        ratio: (low, high) aspect ratio (width / height) of the box.
        interpolation: "bilinear" or "nearest".
        p: probability of a random box per image; the others are resized whole.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear",
                 p=1.0):  # fmt: skip
        super().__init__("nearest", 0.0, interpolation, p)
        self.size = check_size("size", size)
        self.scale = list(check_pair("scale", scale, 0))
        if self.scale[1] <= 0:
            raise invalid("scale", scale, "must have a positive upper share")
        self.ratio = list(check_pair("ratio", ratio, 0))
        if self.ratio[0] <= 0:
            raise invalid("ratio", ratio, "must be positive")

    def output_size(self, height, width):
        return tuple(self.size)

    def fallback(self, height, width):
        """torchvision's central box when ten tries fail: (box height, box width)."""
        low, high = self.ratio
        if width / height < low:
            return min(height, max(1, round(width / low))), width
        if width / height > high:
            return height, min(width, max(1, round(height * high)))
        return height, width

    def sample(self, shape, generator, tries=10):
        batch, _, height, width = shape
        w, h = box_tries(shape, self.scale, self.ratio, generator, tries)
        found, pick = first_fit((w > 0) & (w <= width) & (h > 0) & (h <= height))
        fallback_height, fallback_width = self.fallback(height, width)
        h = torch.where(found, h.gather(1, pick).view(-1), float(fallback_height))
        w = torch.where(found, w.gather(1, pick).view(-1), float(fallback_width))
        u = uniform((batch, 2), generator)
        top = torch.minimum(torch.floor(u[:, 0] * (height - h + 1)), height - h)
        left = torch.minimum(torch.floor(u[:, 1] * (width - w + 1)), width - w)
        top = torch.where(found, top, float((height - fallback_height) // 2))
        left = torch.where(found, left, float((width - fallback_width) // 2))
        return {"top": top, "left": left, "height": h, "width": w}

    def source_points(self, points, params, size, on_grid):
        (out_height, out_width), (columns, rows) = self.size, points
        # torchvision resizes the cropped box: its edge pixels clamp to the box.
        x = G.box_points(columns, params["left"], params["width"], out_width)
        y = G.box_points(rows, params["top"], params["height"], out_height)
        return x, y

    def target_points(self, points, params, size):
        (out_height, out_width), (x, y) = self.size, points
        return (
            G.box_target_points(x, params["left"], params["width"], out_width),
            G.box_target_points(y, params["top"], params["height"], out_height),
        )

    def neutral_points(self, points, params, size):
        return _resize_points(points, size, self.size)

    def neutral_target_points(self, points, params, size):
        return _resize_target_points(points, size, self.size)


@register_transform
class RandomPerspective(GeometricTransform):
    """A random perspective per image (torchvision's `RandomPerspective`): each
    corner moves inwards by up to `distortion_scale` of half the image.

    Args:
        distortion_scale: 0 (none) to 1.
        fill_mode: how the area outside the image is filled.
        fill_value: the value for fill_mode="constant".
        interpolation: "bilinear" or "nearest".
        p: probability of distorting each image.
    """

    def __init__(self, distortion_scale=0.5, fill_mode="constant", fill_value=0.0,
                 interpolation="bilinear", p=0.5):  # fmt: skip
        super().__init__(fill_mode, fill_value, interpolation, p)
        self.distortion_scale = check_fraction("distortion_scale", distortion_scale)

    def sample(self, shape, generator):
        batch, _, height, width = shape
        bound_height = int(self.distortion_scale * (height // 2)) + 1
        bound_width = int(self.distortion_scale * (width // 2)) + 1
        # Corners top-left, top-right, bottom-right, bottom-left, each coordinate a
        # randint over [low, low + bound) as torchvision draws them.
        u = uniform((2, 4, batch), generator)
        x = torch.floor(u[0] * bound_width).clamp(max=bound_width - 1)
        y = torch.floor(u[1] * bound_height).clamp(max=bound_height - 1)
        right, bottom = width - bound_width, height - bound_height
        ends_x = torch.stack([x[0], x[1] + right, x[2] + right, x[3]], -1)
        ends_y = torch.stack([y[0], y[1], y[2] + bottom, y[3] + bottom], -1)
        ends = torch.stack([ends_x, ends_y], -1)  # (B, 4, 2)
        starts = torch.zeros_like(ends)
        starts[:, 1:3, 0] = width - 1
        starts[:, 2:, 1] = height - 1
        return {"coefficients": G.perspective_coefficients(starts, ends)}

    def source_points(self, points, params, size, on_grid):
        return G.homography_points(*points, params["coefficients"])

    def target_points(self, points, params, size):
        return G.homography_target_points(*points, params["coefficients"])


def _per_axis(name, value):
    """A non-negative number, or an (x, y) pair of them; as [x, y]."""
    value = scalar(value)
    if is_number(value):
        value = check_number(name, value, minimum=0)
        return [float(value), float(value)]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise invalid(name, value, "must be a non-negative number or an (x, y) pair of them")
    return [float(check_number(name, v, minimum=0)) for v in value]


@register_transform
class RandomElasticTransform(GeometricTransform):
    """Elastic distortion (torchvision's `ElasticTransform`): each pixel moves by a
    field of uniform noise in [-1, 1] blurred by a Gaussian of `sigma` pixels, times
    `alpha` / 2 pixels (torchvision's scaling), drawn per image.

    Args:
        alpha: strength, a number or an (x, y) pair.
        sigma: smoothness in pixels, a number or an (x, y) pair (0: no blur).
        fill_mode: how the area outside the image is filled.
        fill_value: the value for fill_mode="constant".
        interpolation: "bilinear" or "nearest".
        p: probability of distorting each image.
    """

    def __init__(self, alpha=50.0, sigma=5.0, fill_mode="constant", fill_value=0.0,
                 interpolation="bilinear", p=1.0):  # fmt: skip
        super().__init__(fill_mode, fill_value, interpolation, p)
        self.alpha = _per_axis("alpha", alpha)
        self.sigma = _per_axis("sigma", sigma)

    def sample(self, shape, generator):
        batch, _, height, width = shape
        noise = uniform((batch, 2, height, width), generator, -1.0, 1.0)
        axes = []
        for axis in range(2):
            field, sigma = noise[:, axis : axis + 1], self.sigma[axis]
            if sigma > 0:
                size = int(8 * sigma + 1) | 1  # torchvision's odd kernel
                sigmas = torch.full((batch,), sigma, device=generator.device)
                field = gaussian_blur(field, size, sigmas)
            axes.append(field * (self.alpha[axis] / 2))
        return {"displacement": torch.cat(axes, 1)}

    def source_points(self, points, params, size, on_grid):
        return G.displace_points(*points, params["displacement"], on_grid)

    def target_points(self, points, params, size):
        """Approximate: the field inverted by fixed-point iteration
        (`G.displace_target_points`)."""
        return G.displace_target_points(*points, params["displacement"])
