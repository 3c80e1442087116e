"""Augmentation policies: RandAugment and TrivialAugmentWide, each image drawing its own
operations and magnitudes, the whole batch computed at once.

The operations and magnitude tables are torchvision v2's. Per step, the images are
grouped by the operation they drew and each group goes through that operation as
one batch op (geometric ones as a nearest-neighbour warp with a matrix per image):
no Python loop over images; one read of the 14 group sizes per step.
"""

import functools

import torch

from kaug._checks import check_int, invalid
from kaug.functional import color
from kaug.functional.geometric import warp
from kaug.sampling import bernoulli
from kaug.transforms.base import register_transform
from kaug.transforms.color import ValueRangeTransform

OPS = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
    "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
)  # fmt: skip
GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
BLENDS = {
    "Brightness": color.adjust_brightness,
    "Color": color.adjust_saturation,
    "Contrast": color.adjust_contrast,
    "Sharpness": color.adjust_sharpness,
}
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
          "Contrast", "Sharpness"}  # fmt: skip


def magnitude_table(op, bins, height, width, wide=False):
    """(bins,) magnitudes of `op` (torchvision's `_augmentation_space`), or None for an
    operation without one."""
    if op in ("Identity", "AutoContrast", "Equalize"):
        return None
    if op in ("ShearX", "ShearY"):
        return torch.linspace(0.0, 0.99 if wide else 0.3, bins)
    if op in ("TranslateX", "TranslateY"):
        size = width if op == "TranslateX" else height
        return torch.linspace(0.0, 32.0 if wide else 150.0 / 331.0 * size, bins)
    if op == "Rotate":
        return torch.linspace(0.0, 135.0 if wide else 30.0, bins)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return torch.linspace(0.0, 0.99 if wide else 0.9, bins)
    if op == "Posterize":
        return (8 - (torch.arange(bins) / ((bins - 1) / (6 if wide else 4)))).round()
    return torch.linspace(1.0, 0.0, bins)  # Solarize: the threshold, a share of the range


@functools.lru_cache(maxsize=64)
def magnitude_matrix(bins, height, width, wide, device):
    """((14, bins) float64 magnitudes, zeros for operations without one; (14,) bool:
    whether the operation takes a random sign), on `device`, made once per image size."""
    rows = [magnitude_table(op, bins, height, width, wide) for op in OPS]
    table = torch.stack([torch.zeros(bins) if row is None else row.float() for row in rows])
    signed = torch.tensor([op in SIGNED for op in OPS])
    return table.to(device, torch.float64), signed.to(device)


class _Policy(ValueRangeTransform):
    """Draws `num_ops` operations per image, each with a bin and a sign."""

    wide = False
    includes_identity = True  # "Identity" is one of the operations an image may draw

    def draw_bins(self, shape, generator):
        raise NotImplementedError

    def sample(self, shape, generator):
        batch = shape[0]
        device = generator.device
        ops = torch.randint(len(OPS), (batch, self.num_ops), generator=generator, device=device)
        negative = bernoulli((batch, self.num_ops), generator)
        return {"ops": ops, "bins": self.draw_bins(shape, generator), "negative": negative}

    def magnitudes(self, x, ops, bins, negative):
        """(B,) signed magnitude of each image's operation in one step."""
        table, signed = magnitude_matrix(self.num_magnitude_bins, *x.shape[2:], self.wide, x.device)
        values = table[ops, bins]
        return torch.where(signed[ops] & negative, -values, values)

    def apply_in_range(self, x, params, bound):
        for step in range(self.num_ops):
            ops, bins = params["ops"][:, step], params["bins"][:, step]
            magnitude = self.magnitudes(x, ops, bins, params["negative"][:, step])
            x = self.step(x, ops, magnitude, bound)
        return x

    def step(self, x, ops, magnitude, bound):
        """Each image through the operation it drew: the images are grouped by operation
        (one read of the group sizes per step) and each group is one batch op."""
        order = torch.argsort(ops, stable=True)
        counts = torch.bincount(ops, minlength=len(OPS)).tolist()
        out = torch.empty_like(x)
        start = 0
        for index, count in enumerate(counts):
            if count:
                rows = order[start : start + count]
                out[rows] = self.operation(index, x[rows], ops[rows], magnitude[rows], bound)
            start += count
        return out

    def operation(self, index, x, ops, magnitude, bound):
        """Operation OPS[index] on images that all drew it."""
        name = OPS[index]
        if name in GEOMETRIC:
            return warp(x, self.matrices(x, ops, magnitude), "constant", 0.0, order=0)
        if name in BLENDS:
            return BLENDS[name](x, 1 + magnitude, bound)
        if name == "Posterize":
            return color.posterize(x, magnitude, bound)
        if name == "Solarize":
            return color.solarize(x, magnitude * bound, bound)
        if name == "AutoContrast":
            return color.autocontrast(x, bound)
        if name == "Equalize":
            return color.equalize(x, bound)
        return x  # Identity

    @staticmethod
    def matrices(x, ops, magnitude):
        """(B, 2, 3) output-to-input maps (torchvision's conventions): rotation about the
        centre, shear about the top-left corner, translation; the identity for the
        images whose operation is not geometric."""
        height, width = x.shape[2:]
        m = magnitude.to(torch.float64)
        zero = torch.zeros_like(m)

        def chosen(name, value, otherwise):
            return torch.where(ops == OPS.index(name), value, otherwise)

        angle = torch.deg2rad(chosen("Rotate", m, zero))
        cos, sin = torch.cos(angle), torch.sin(angle)
        shear_x, shear_y = chosen("ShearX", m, zero), chosen("ShearY", m, zero)
        a, b = cos, -sin + shear_x
        c, d = sin + shear_y, cos
        tx, ty = chosen("TranslateX", m, zero), chosen("TranslateY", m, zero)
        tx, ty = torch.trunc(tx), torch.trunc(ty)  # whole pixels, as torchvision
        ox, oy = (width - 1) / 2.0, (height - 1) / 2.0  # rotation about the centre; shear
        offset_x = ox - (cos * ox - sin * oy) - tx  # about the top-left corner, as
        offset_y = oy - (sin * ox + cos * oy) - ty  # torchvision's
        return torch.stack([a, b, offset_x, c, d, offset_y], -1).view(-1, 2, 3).to(x.dtype)


@register_transform
class RandAugment(_Policy):
    """RandAugment (Cubuk et al. 2020; torchvision's `RandAugment`): `num_ops`
    operations per image, each drawn uniformly from 14, at the fixed `magnitude` bin
    of `num_magnitude_bins`, with a random sign where the operation has one."""

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31, value_range=(0, 255),
                 p=1.0):  # fmt: skip
        super().__init__(value_range, p)
        self.num_ops = check_int("num_ops", num_ops, minimum=1, maximum=16)
        self.num_magnitude_bins = check_int("num_magnitude_bins", num_magnitude_bins, minimum=2)
        self.magnitude = check_int("magnitude", magnitude, minimum=0)
        if self.magnitude >= self.num_magnitude_bins:
            raise invalid("magnitude", magnitude, "must be below num_magnitude_bins")

    def draw_bins(self, shape, generator):
        return torch.full(
            (shape[0], self.num_ops), self.magnitude, dtype=torch.long, device=generator.device
        )


@register_transform
class TrivialAugmentWide(_Policy):
    """TrivialAugment (Müller and Hutter 2021; torchvision's `TrivialAugmentWide`): one
    operation per image with a magnitude bin drawn uniformly, from the wide tables."""

    wide = True

    def __init__(self, num_magnitude_bins=31, value_range=(0, 255), p=1.0):
        super().__init__(value_range, p)
        self.num_ops = 1
        self.num_magnitude_bins = check_int("num_magnitude_bins", num_magnitude_bins, minimum=2)

    def draw_bins(self, shape, generator):
        return torch.randint(
            self.num_magnitude_bins, (shape[0], 1), generator=generator, device=generator.device
        )
