"""Boxes and keypoints through a map of points: pure batch kernels on padded tensors.

A geometric step moves points from its input to its output (`map_points(x, y)`, in
pixel-centre coordinates, tensors broadcasting like (B, N, 1)). Boxes (B, M, 4)
xyxy move by their four corners: the box of the moved corners, clipped to the
output, dropped (a row of -1, moved to the end) when too little of it is left.
Keypoints (B, K, 2) move as they are and turn invisible outside the output, never
clipped. Coordinates are continuous (pixel j spans [j, j + 1)), see `kaug.batch`.
"""

import torch


def _centres(x, y, map_points):
    """Continuous points through a map of pixel-centre points."""
    x, y = map_points(x - 0.5, y - 0.5)
    return x + 0.5, y + 0.5


def move_boxes(xyxy, labels, map_points, height, width, min_visibility=0.0, min_size=0.0):
    """Boxes through `map_points` onto an output of (height, width): (xyxy, labels).

    Each box becomes the box of its four moved corners (exact for affine maps and
    perspectives, whose images of a rectangle are quadrilaterals) and is clipped
    (`clip_boxes`).
    """
    x1, y1, x2, y2 = xyxy.to(torch.float64).unbind(-1)
    # Corners top-left, top-right, bottom-right, bottom-left: (B, M, 4) each.
    x = torch.stack([x1, x2, x2, x1], -1)
    y = torch.stack([y1, y1, y2, y2], -1)
    batch, rows = x.shape[:2]
    x, y = _centres(x.reshape(batch, -1, 1), y.reshape(batch, -1, 1), map_points)
    x, y = x.reshape(batch, rows, 4), y.reshape(batch, rows, 4)
    moved = torch.stack([x.amin(-1), y.amin(-1), x.amax(-1), y.amax(-1)], -1)
    moved_xyxy, labels = clip_boxes(moved, labels, height, width, min_visibility, min_size)
    return moved_xyxy.to(xyxy.dtype), labels


def clip_boxes(xyxy, labels, height, width, min_visibility=0.0, min_size=0.0):
    """Boxes clipped to [0, width] x [0, height]: (xyxy, labels). A box is dropped when
    nothing of it is left, when less than `min_visibility` of its area is left, or
    when it is narrower or lower than `min_size`; the rows are compacted (kept boxes
    first, in their order, then rows of -1)."""
    x1, y1, x2, y2 = xyxy.unbind(-1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    limits = torch.tensor([width, height, width, height], dtype=xyxy.dtype, device=xyxy.device)
    clipped = torch.minimum(xyxy.clamp(min=0), limits)
    cx1, cy1, cx2, cy2 = clipped.unbind(-1)
    kept_width, kept_height = cx2 - cx1, cy2 - cy1
    kept_area = kept_width.clamp(min=0) * kept_height.clamp(min=0)
    keep = (
        (labels >= 0)
        & torch.isfinite(xyxy).all(-1)
        & (kept_area > 0)
        & (kept_area >= min_visibility * area)
        & (kept_width >= min_size)
        & (kept_height >= min_size)
    )
    return compact(clipped, labels, keep)


def compact(xyxy, labels, keep):
    """The boxes `keep` (B, M) selects first, in order, then rows of -1: (xyxy, labels).
    No host sync: a stable sort per image."""
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    keep = keep.gather(1, order)
    xyxy = xyxy.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))
    labels = labels.gather(1, order)
    return torch.where(keep.unsqueeze(-1), xyxy, -1), torch.where(keep, labels, -1)


def move_keypoints(xy, visible, map_points, height, width):
    """Keypoints through `map_points`: (xy, visible). A point that lands outside
    [0, width) x [0, height) turns invisible; its coordinates are kept."""
    x, y = _centres(xy[..., :1].to(torch.float64), xy[..., 1:].to(torch.float64), map_points)
    x, y = x.reshape(xy.shape[:2]), y.reshape(xy.shape[:2])
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height) & torch.isfinite(x + y)
    return torch.stack([x, y], -1).to(xy.dtype), visible & inside


def _rect_area(xyxy):
    x1, y1, x2, y2 = xyxy.unbind(-1)
    return (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)


def _intersect(xyxy, rect):
    """Boxes (B, M, 4) cut to one rectangle (B, 4) per image (may be empty)."""
    rect = rect.to(xyxy.dtype).unsqueeze(1)
    return torch.cat([torch.maximum(xyxy[..., :2], rect[..., :2]),
                      torch.minimum(xyxy[..., 2:], rect[..., 2:])], -1)  # fmt: skip


def boxes_around(xyxy, labels, rect, min_visibility=0.0):
    """The boxes that a rectangle (B, 4) pasted over each image leaves visible enough:
    (xyxy, labels), a box kept whole when more than nothing and at least
    `min_visibility` of its area is left outside the rectangle."""
    area = _rect_area(xyxy)
    left = area - _rect_area(_intersect(xyxy, rect))
    keep = (labels >= 0) & (left > 0) & (left >= min_visibility * area)
    return compact(xyxy, labels, keep)


def boxes_within(xyxy, labels, rect, min_visibility=0.0, min_size=0.0):
    """The boxes cut to a rectangle (B, 4) per image (what a paste of that rectangle
    carries): (xyxy, labels), filtered as `clip_boxes` filters."""
    area = _rect_area(xyxy)
    cut = _intersect(xyxy, rect)
    kept_width, kept_height = (cut[..., 2] - cut[..., 0]), (cut[..., 3] - cut[..., 1])
    kept_area = _rect_area(cut)
    keep = (
        (labels >= 0)
        & (kept_area > 0)
        & (kept_area >= min_visibility * area)
        & (kept_width >= min_size)
        & (kept_height >= min_size)
    )
    return compact(cut, labels, keep)


def points_outside(xy, visible, rect):
    """Keypoints a rectangle (B, 4) pasted over each image hides turn invisible."""
    rect = rect.to(xy.dtype).unsqueeze(1)
    inside = (xy >= rect[..., :2]).all(-1) & (xy < rect[..., 2:]).all(-1)
    return visible & ~inside
