"""The batch that flows through the pipeline: images plus what travels with them.

Transforms that only change images never see this (they implement `apply`);
transforms that also move masks, mix labels or change the image size implement
`BatchTransform.apply_batch` and get the whole `Batch`.
"""

import dataclasses

import torch

#: The fields that follow the images' geometry: whatever moves pixels moves them.
TARGETS = ("masks",)


@dataclasses.dataclass(frozen=True)
class Batch:
    """One batch on the device.

    Attributes:
        images: (B, C, H, W) floating tensor.
        masks: (B, K, H, W) label masks that follow the images' geometry, or None.
        labels: (B, ...) targets (class indices, one-hot rows, values), or None.
        sample_weight: (B,) weights, or None.
    """

    images: torch.Tensor
    masks: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    sample_weight: torch.Tensor | None = None

    def replace(self, **changes):
        """A new Batch with some fields replaced (a Batch is never changed in place)."""
        return dataclasses.replace(self, **changes)

    def where(self, applied, other):
        """Per image, this batch's fields where `applied` (B,) is True, `other`'s elsewhere."""
        changes = {}
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine is None or mine is theirs:
                continue
            mask = applied.view(-1, *([1] * (mine.ndim - 1)))
            changes[field.name] = torch.where(mask, mine, theirs.to(mine.dtype))
        return self.replace(**changes)
