"""The batch that flows through the pipeline: images plus what travels with them.

Transforms that only change images never see this (they implement `apply`);
transforms that also move masks, boxes or keypoints, mix labels or change the image
size implement `BatchTransform.apply_batch` and get the whole `Batch`.

Boxes and keypoints are padded dense tensors, Keras's convention: a variable number
per image, rows of -1 where an image has fewer. Their coordinates are continuous
pixel coordinates, (x, y): pixel (row i, column j) spans [j, j + 1) x [i, i + 1), so
the image is [0, width] x [0, height] (torchvision's and Keras's convention; a
pixel's centre is at j + 0.5).
"""

import dataclasses

import torch

from kaug.functional import targets as T

#: The fields that follow the images' geometry: whatever moves pixels moves them.
TARGETS = ("masks", "boxes", "keypoints")


@dataclasses.dataclass(frozen=True)
class Boxes:
    """Bounding boxes of a batch, with their class labels.

    Attributes:
        xyxy: (B, M, 4) float (x1, y1, x2, y2); rows of -1 are padding.
        labels: (B, M) class of each box; -1 for padding.
        min_visibility: a box left with less than this share of its area after a
            transform clips it to the image is dropped (albumentations' default, 0:
            only boxes with nothing left are dropped).
        min_size: a box narrower or lower than this many pixels is dropped.
    """

    xyxy: torch.Tensor
    labels: torch.Tensor
    min_visibility: float = 0.0
    min_size: float = 0.0

    @property
    def valid(self):
        """(B, M) True for the rows that hold a box."""
        return self.labels >= 0

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def select(self, rows, copy=False):
        """The boxes of the images `rows` picks (an index or a slice); copies with `copy`."""
        xyxy, labels = self.xyxy[rows], self.labels[rows]
        if copy:
            xyxy, labels = xyxy.clone(), labels.clone()
        return self.replace(xyxy=xyxy, labels=labels)

    def compacted(self):
        """The boxes with the valid rows first, in order, then the -1 rows."""
        xyxy, labels = T.compact(self.xyxy, self.labels, self.valid)
        return self.replace(xyxy=xyxy, labels=labels)

    def moved(self, map_points, height, width):
        """The boxes through a map of pixel-centre points onto (height, width)
        (`kaug.functional.targets.move_boxes`)."""
        xyxy, labels = T.move_boxes(self.xyxy, self.labels, map_points, height, width,
                                    self.min_visibility, self.min_size)  # fmt: skip
        return self.replace(xyxy=xyxy, labels=labels)


@dataclasses.dataclass(frozen=True)
class Keypoints:
    """Keypoints of a batch, each image's in a fixed order (a skeleton's joints).

    Attributes:
        xy: (B, K, 2) float (x, y).
        visible: (B, K) bool: False for a point that is absent, or that a transform
            moved outside the image (its coordinates are kept, never clipped).
    """

    xy: torch.Tensor
    visible: torch.Tensor

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def select(self, rows, copy=False):
        """The keypoints of the images `rows` picks (an index or a slice); copies with
        `copy`."""
        xy, visible = self.xy[rows], self.visible[rows]
        if copy:
            xy, visible = xy.clone(), visible.clone()
        return self.replace(xy=xy, visible=visible)

    def moved(self, map_points, height, width):
        """The keypoints through a map of pixel-centre points onto (height, width)."""
        xy, visible = T.move_keypoints(self.xy, self.visible, map_points, height, width)
        return self.replace(xy=xy, visible=visible)


def _where(applied, mine, theirs):
    """Per image, `mine` where `applied` (B,) is True, `theirs` elsewhere: tensors, or
    the tensors of a Boxes/Keypoints (their rows may differ in number: the shorter is
    padded with -1 rows first)."""
    if isinstance(mine, torch.Tensor):
        mask = applied.view(-1, *([1] * (mine.ndim - 1)))
        return torch.where(mask, mine, theirs.to(mine.dtype))
    changes = {}
    for field in dataclasses.fields(mine):
        ours, other = getattr(mine, field.name), getattr(theirs, field.name)
        if isinstance(ours, torch.Tensor):
            ours, other = _same_rows(ours, other)
            changes[field.name] = _where(applied, ours, other)
    return mine.replace(**changes)


def _same_rows(a, b):
    """Two padded (B, N, ...) tensors with as many rows (dimension 1) as the longer."""
    rows = max(a.shape[1], b.shape[1])
    return pad_rows(a, rows), pad_rows(b, rows)


def pad_rows(x, rows, value=-1):
    """`x` (B, N, ...) padded with `value` rows to (B, rows, ...)."""
    if x.shape[1] >= rows:
        return x
    pad = x.new_full((x.shape[0], rows - x.shape[1], *x.shape[2:]), value)
    if x.dtype == torch.bool:
        pad = x.new_zeros(pad.shape)
    return torch.cat([x, pad], 1)


@dataclasses.dataclass(frozen=True)
class Batch:
    """One batch on the device.

    Attributes:
        images: (B, C, H, W) floating tensor.
        masks: (B, K, H, W) label masks that follow the images' geometry, or None.
        labels: (B, ...) targets (class indices, one-hot rows, values), or None.
        sample_weight: (B,) weights, or None.
        boxes: the images' `Boxes`, or None.
        keypoints: the images' `Keypoints`, or None.
    """

    images: torch.Tensor
    masks: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    sample_weight: torch.Tensor | None = None
    boxes: Boxes | None = None
    keypoints: Keypoints | None = None

    def replace(self, **changes):
        """A new Batch with some fields replaced (a Batch is never changed in place)."""
        return dataclasses.replace(self, **changes)

    def moved_targets(self, map_points, height, width):
        """The boxes and keypoints (where the batch has them) through a map of
        pixel-centre points, input to output, onto an output of (height, width)."""
        changes = {}
        if self.boxes is not None:
            changes["boxes"] = self.boxes.moved(map_points, height, width)
        if self.keypoints is not None:
            changes["keypoints"] = self.keypoints.moved(map_points, height, width)
        return self.replace(**changes) if changes else self

    def where(self, applied, other):
        """Per image, this batch's fields where `applied` (B,) is True, `other`'s elsewhere."""
        changes = {}
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine is None or mine is theirs:
                continue
            changes[field.name] = _where(applied, mine, theirs)
        return self.replace(**changes)
