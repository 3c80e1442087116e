"""Batch mixing: MixUp and CutMix blend each image with another of the batch, and their
labels in the same shares.

One rule for labels, whatever `p`:
- rows (B, K) with K > 1 (one-hot, multi-hot, soft; any numeric dtype) are mixed as
  they are, as floats; `num_classes`, if given, must be K;
- class indices (B,) or (B, 1) (ints, or the floats `class_mode="sparse"` serves)
  need `num_classes` and become one-hot rows first, so train with a categorical
  loss; `num_classes=1` says they are binary 0/1 targets instead, mixed as
  probabilities in their own shape.
Every batch comes out in that form, mixed or not (at `p=0` too), so the model sees
one label shape. Sample weights are kept. Each image is mixed with probability `p`
(one that is not keeps its image and label); its partner is another image of the
batch (a random derangement).
"""

import torch

from kaug._checks import check_int, check_number, invalid
from kaug.batch import Batch
from kaug.functional import targets as T
from kaug.sampling import bernoulli, beta, uniform
from kaug.transforms.base import BatchTransform, register_transform


def partners(batch, generator):
    """A random derangement of the batch: image i's partner is never i (for B > 1)."""
    order = torch.randperm(batch, generator=generator, device=generator.device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    return partner


class _Mixing(BatchTransform):
    reads = ("images",)  # and one of `mixes` (`check_targets`)
    writes = ("images", "labels")
    mixes_batch = True  # an image's output depends on another image of the batch
    #: The fields a batch must carry at least one of: what the transform mixes.
    mixes = ("labels", "boxes")

    def check_targets(self, batch):
        super().check_targets(batch)
        if all(getattr(batch, field) is None for field in self.mixes):
            raise invalid(
                "transforms",
                type(self).__name__,
                f"needs batches with {' or '.join(self.mixes)} (it mixes them with the images)",
            )

    def __init__(self, alpha=1.0, num_classes=None, p=1.0):
        super().__init__(p=p)
        self.alpha = check_number("alpha", alpha, 0, exclusive=True)
        self.num_classes = check_int("num_classes", num_classes, minimum=1, allow_none=True)

    def draw(self, shape, generator):
        """The partner and the share of each image's own content; an image that is not
        mixed (probability 1 - p) keeps share 1. No "applied" entry: the shares say it."""
        params = self.sample(tuple(shape), generator)
        if self.p < 1:
            keep = ~bernoulli((shape[0],), generator, self.p)
            params = self.unmixed(params, keep)
        return params

    def labels(self, labels):
        """Labels as the float rows (or binary targets) that get mixed (module docstring)."""
        name = type(self).__name__
        dtype = labels.dtype if labels.is_floating_point() else torch.float32
        if labels.ndim > 1 and labels.shape[-1] > 1:  # rows
            if self.num_classes not in (None, labels.shape[-1]):
                raise invalid(
                    "num_classes",
                    self.num_classes,
                    f"must match the {labels.shape[-1]} columns of the labels {name} mixes "
                    f"(one-hot rows of shape {tuple(labels.shape)})",
                )
            return labels.to(dtype)
        if labels.ndim > 2 or self.num_classes is None:
            raise invalid(
                "num_classes",
                self.num_classes,
                f"is needed for {name} on labels of shape {tuple(labels.shape)}: class "
                "indices become one-hot rows of num_classes columns (train with a "
                "categorical loss); num_classes=1 mixes binary 0/1 targets as probabilities",
            )
        if self.num_classes == 1:
            if len(labels) and (labels.min() < 0 or labels.max() > 1):
                raise invalid(
                    "num_classes", 1, "means binary targets, which must lie in [0, 1]"
                )
            return labels.to(dtype)
        indices = labels.reshape(-1).round().long()
        if len(indices) and (indices.min() < 0 or indices.max() >= self.num_classes):
            raise invalid(
                "num_classes", self.num_classes, "must exceed every class index in the labels"
            )
        return torch.nn.functional.one_hot(indices, self.num_classes).to(dtype)

    def transform_batch(self, batch, params):
        """`apply_batch`, and at p=0 (or on an empty batch) the labels in the form
        mixed batches have, so the served label shape never depends on `p`."""
        if self.p == 0 or batch.images.shape[0] == 0:
            if batch.labels is None:
                return batch
            return batch.replace(labels=self.labels(batch.labels))
        return self.apply_batch(batch, params)

    def mix_labels(self, labels, share, partner):
        labels = self.labels(labels)
        share = share.to(labels.dtype).view(-1, *[1] * (labels.ndim - 1))
        return share * labels + (1 - share) * labels[partner]

    def apply_batch(self, batch, params):
        mixed = self.mixed_images(batch, params)
        if batch.labels is not None:
            mixed["labels"] = self.mix_labels(batch.labels, params["share"], params["partner"])
        return batch.replace(**mixed)

    def transform(self, x, params):
        """Images alone (labels need `call_batch` with a `kaug.batch.Batch`)."""
        if x.shape[0] == 0:
            return x
        return self.mixed_images(Batch(x), params)["images"]


@register_transform
class MixUp(_Mixing):
    """Blend each image with a partner: `share * x + (1 - share) * partner`, share ~
    Beta(alpha, alpha) per image (Zhang et al. 2018; Keras 3's `MixUp`). Masks, if
    any, are left alone (a blend of label maps has no meaning)."""

    def __init__(self, alpha=0.2, num_classes=None, p=1.0):
        super().__init__(alpha, num_classes, p)

    def sample(self, shape, generator):
        return {
            "partner": partners(shape[0], generator),
            "share": beta((shape[0],), self.alpha, generator),
        }

    def unmixed(self, params, keep):
        return {**params, "share": torch.where(keep, 1.0, params["share"])}

    writes = ("images", "labels", "boxes")

    def mixed_images(self, batch, params):
        x, share, partner = batch.images, params["share"], params["partner"]
        weight = share.to(x.dtype).view(-1, 1, 1, 1)
        mixed = {"images": weight * x + (1 - weight) * x[partner]}
        if batch.boxes is not None:  # both images' objects are in the blend
            boxes = batch.boxes
            theirs = boxes.labels[partner]
            theirs = torch.where((share < 1).view(-1, 1), theirs, -1)  # not mixed: none
            mixed["boxes"] = boxes.replace(
                xyxy=torch.cat([boxes.xyxy, boxes.xyxy[partner]], 1),
                labels=torch.cat([boxes.labels, theirs], 1),
            ).compacted()
        return mixed


@register_transform
class CutMix(_Mixing):
    """Paste a box of a partner into each image, box area `1 - lam` of the image with
    lam ~ Beta(alpha, alpha), at a uniform centre (cut at the borders); the labels mix
    by the pasted box's true area (Yun et al. 2019). Masks get the same box, and a
    batch of images and masks without labels (segmentation) is mixed too."""

    writes = ("images", "labels", "masks", "boxes", "keypoints")
    moves_pixels = True  # a partner's box is pasted: the masks get the same box
    mixes = ("labels", "masks", "boxes", "keypoints")

    def __init__(self, alpha=1.0, num_classes=None, p=1.0):
        super().__init__(alpha, num_classes, p)

    def sample(self, shape, generator):
        batch, _, height, width = shape
        lam = beta((batch,), self.alpha, generator)
        cut = torch.sqrt(1 - lam)
        box_h, box_w = (height * cut).long(), (width * cut).long()
        cy = (uniform((batch,), generator) * height).long()
        cx = (uniform((batch,), generator) * width).long()
        top, bottom = (cy - box_h // 2).clamp(0, height), (cy + box_h // 2).clamp(0, height)
        left, right = (cx - box_w // 2).clamp(0, width), (cx + box_w // 2).clamp(0, width)
        return {
            "partner": partners(batch, generator),
            "lam": lam,  # the drawn share, before the box is cut to whole pixels and borders
            "box": torch.stack([top, bottom, left, right], 1),
            "share": 1 - ((bottom - top) * (right - left)).double() / (height * width),
        }

    def unmixed(self, params, keep):
        box = torch.where(keep.view(-1, 1), 0, params["box"])
        return {**params, "box": box, "share": torch.where(keep, 1.0, params["share"])}

    @staticmethod
    def inside(box, height, width, device):
        """(B, 1, H, W) True inside each image's box."""
        rows = torch.arange(height, device=device).view(1, -1, 1)
        cols = torch.arange(width, device=device).view(1, 1, -1)
        top, bottom, left, right = (box[:, i].view(-1, 1, 1) for i in range(4))
        return ((rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)).unsqueeze(1)

    def mixed_images(self, batch, params):
        x, partner = batch.images, params["partner"]
        box = params["box"].to(x.device)
        inside = self.inside(box, *x.shape[2:], x.device)
        mixed = {"images": torch.where(inside, x[partner], x)}
        if batch.masks is not None:
            mixed["masks"] = torch.where(inside, batch.masks[partner], batch.masks)
        rect = box[:, [2, 0, 3, 1]]  # the pasted box as (x1, y1, x2, y2)
        if batch.boxes is not None:
            boxes = batch.boxes
            own = T.boxes_around(boxes.xyxy, boxes.labels, rect, boxes.min_visibility)
            theirs = T.boxes_within(boxes.xyxy[partner], boxes.labels[partner], rect,
                                    boxes.min_visibility, boxes.min_size)  # fmt: skip
            mixed["boxes"] = boxes.replace(
                xyxy=torch.cat([own[0], theirs[0]], 1), labels=torch.cat([own[1], theirs[1]], 1)
            ).compacted()
        if batch.keypoints is not None:  # a fixed skeleton: the pasted box hides its points
            kp = batch.keypoints
            mixed["keypoints"] = kp.replace(visible=T.points_outside(kp.xy, kp.visible, rect))
        return mixed
