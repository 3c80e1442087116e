"""Augmentation policies: RandAugment, TrivialAugmentWide and AugMix, each image drawing
its own operations and magnitudes, the whole batch computed at once.

The operations and magnitude tables are torchvision v2's. Per step, the images are
grouped by the operation they drew and each group goes through that operation as
one batch op (geometric ones as one warp with a matrix per image): no Python loop
over images; one read of the group sizes per step.
"""

import functools

import torch

from kaug._checks import check_bool, check_choice, check_int, check_number, invalid
from kaug.batch import TARGETS, Batch
from kaug.functional import color
from kaug.functional.geometric import affine_points, invert_affine, warp_labels_zeros, warp_zeros
from kaug.sampling import bernoulli, dirichlet
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


AUGMIX_OPS = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize",
    "Solarize", "AutoContrast", "Equalize", "Brightness", "Color", "Contrast", "Sharpness",
)  # fmt: skip
"""AugMix's operations (torchvision's `_AUGMENTATION_SPACE` order) after "Identity", which
AugMix never draws: it pads the chains shorter than the longest."""


def augmix_magnitude_table(op, bins, height, width):
    """(bins,) magnitudes of `op` in AugMix (torchvision's `AugMix._AUGMENTATION_SPACE`)."""
    if op in ("TranslateX", "TranslateY"):
        return torch.linspace(0.0, (width if op == "TranslateX" else height) / 3.0, bins)
    if op == "Posterize":
        return (4 - (torch.arange(bins) / ((bins - 1) / 4))).round()
    return magnitude_table(op, bins, height, width)


@functools.lru_cache(maxsize=64)
def magnitude_matrix(policy, bins, height, width, device):
    """((ops, bins) float64 magnitudes of a policy class, zeros for operations without
    one; (ops,) bool: whether the operation takes a random sign), on `device`, made
    once per image size."""
    rows = [policy.magnitude_table(op, bins, height, width) for op in policy.ops]
    table = torch.stack([torch.zeros(bins) if row is None else row.float() for row in rows])
    signed = torch.tensor([op in SIGNED for op in policy.ops])
    return table.to(device, torch.float64), signed.to(device)


class _Policy(ValueRangeTransform):
    """Draws `num_ops` operations per image, each with a bin and a sign.

    The geometric operations move the batch's masks with the images: each mask pixel
    takes the label of the very pixel the image's nearest sampling reads (0 where it
    reads beyond the edge), every value kept.
    """

    ops = OPS
    wide = False
    includes_identity = True  # "Identity" is one of the operations an image may draw
    interpolation_order = 0  # geometric operations sample nearest, as torchvision's
    moves_pixels = True
    writes = ("images", "masks", "boxes", "keypoints")

    @classmethod
    def magnitude_table(cls, op, bins, height, width):
        return magnitude_table(op, bins, height, width, cls.wide)

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
        table, signed = magnitude_matrix(
            type(self), self.num_magnitude_bins, *x.shape[2:], x.device
        )
        values = table[ops, bins]
        return torch.where(signed[ops] & negative, -values, values)

    def apply_batch(self, batch, params):
        carried = any(getattr(batch, field) is not None for field in TARGETS)
        if not carried or "masks" not in self.writes:
            return super().apply_batch(batch, params)
        low, high = self.value_range
        x = batch.images - low if low else batch.images
        batch = self.steps(batch.replace(images=x), params, high - low)
        x = batch.images
        return batch.replace(images=x + low if low else x)

    def apply_in_range(self, x, params, bound):
        return self.steps(Batch(x), params, bound).images

    def steps(self, batch, params, bound):
        """Every image (and its targets) through its `num_ops` operations."""
        for step in range(self.num_ops):
            ops, bins = params["ops"][:, step], params["bins"][:, step]
            magnitude = self.magnitudes(batch.images, ops, bins, params["negative"][:, step])
            batch = self.step(batch, ops, magnitude, bound)
        return batch

    def step(self, batch, ops, magnitude, bound):
        """Each image through the operation it drew: the images are grouped by operation
        (one read of the group sizes per step) and each group is one batch op; the
        targets of the images whose operation is geometric move with them."""
        x = batch.images
        order = torch.argsort(ops, stable=True)
        counts = torch.bincount(ops, minlength=len(self.ops)).tolist()
        out = torch.empty_like(x)
        targets = _MovedTargets(batch)
        start = 0
        for index, count in enumerate(counts):
            if count:
                rows = order[start : start + count]
                if self.ops[index] in GEOMETRIC:
                    matrices = self.matrices(x, ops[rows], magnitude[rows])
                    out[rows] = warp_zeros(x[rows], matrices, self.interpolation_order)
                    targets.move(rows, matrices)
                else:
                    out[rows] = self.operation(index, x[rows], magnitude[rows], bound)
            start += count
        return targets.batch(out)

    def operation(self, index, x, magnitude, bound):
        """Photometric operation `ops[index]` on images that all drew it."""
        name = self.ops[index]
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

    def matrices(self, x, ops, magnitude):
        """(B, 2, 3) output-to-input maps (torchvision's conventions): rotation about the
        centre, shear about the top-left corner, translation; the identity for the
        images whose operation is not geometric."""
        height, width = x.shape[2:]
        m = magnitude.to(torch.float64)
        zero = torch.zeros_like(m)

        def chosen(name, value, otherwise):
            return torch.where(ops == self.ops.index(name), value, otherwise)

        angle = torch.deg2rad(chosen("Rotate", m, zero))
        cos, sin = torch.cos(angle), torch.sin(angle)
        shear_x, shear_y = chosen("ShearX", m, zero), chosen("ShearY", m, zero)
        a, b = cos, -sin + shear_x
        c, d = sin + shear_y, cos
        tx, ty = chosen("TranslateX", m, zero), chosen("TranslateY", m, zero)
        tx, ty = torch.trunc(tx), torch.trunc(ty)  # whole pixels, as torchvision
        # Rotation about the centre; shear about the top-left pixel's outer corner,
        # (-0.5, -0.5) in pixel centres, as torchvision's `affine(center=[0, 0])`.
        ox, oy = (width - 1) / 2.0, (height - 1) / 2.0
        offset_x = ox - (cos * ox - sin * oy) - tx + 0.5 * shear_x
        offset_y = oy - (sin * ox + cos * oy) - ty + 0.5 * shear_y
        return torch.stack([a, b, offset_x, c, d, offset_y], -1).view(-1, 2, 3).to(x.dtype)


class _MovedTargets:
    """A step's targets: copies of the batch's, whose rows the geometric groups overwrite
    with their moved masks (nearest, through the images' own grid), boxes and
    keypoints (through the inverse maps)."""

    def __init__(self, batch):
        self.source = batch
        self.masks = None if batch.masks is None else batch.masks.clone()
        self.boxes = None if batch.boxes is None else batch.boxes.select(slice(None), copy=True)
        self.keypoints = batch.keypoints
        if self.keypoints is not None:
            self.keypoints = self.keypoints.select(slice(None), copy=True)

    def move(self, rows, matrices):
        source = self.source
        if self.masks is not None:
            self.masks[rows] = warp_labels_zeros(source.masks[rows], matrices)
        if self.boxes is None and self.keypoints is None:
            return
        inverse = invert_affine(matrices)
        size = source.images.shape[2:]

        def step(x, y):
            return affine_points(x, y, inverse)

        if self.boxes is not None:
            moved = source.boxes.select(rows).moved(step, *size)
            self.boxes.xyxy[rows], self.boxes.labels[rows] = moved.xyxy, moved.labels
        if self.keypoints is not None:
            moved = source.keypoints.select(rows).moved(step, *size)
            self.keypoints.xy[rows], self.keypoints.visible[rows] = moved.xy, moved.visible

    def batch(self, images):
        return self.source.replace(
            images=images, masks=self.masks, boxes=self.boxes, keypoints=self.keypoints
        )


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


@register_transform
class AugMix(_Policy):
    """AugMix (Hendrycks et al. 2020; torchvision's `AugMix`): `mixture_width` chains
    of 1 to 3 operations (or `chain_depth`) per image, each operation drawn uniformly
    with a magnitude bin below `severity` (of 10); the chains are mixed with
    Dirichlet(alpha) weights and the mix with the image by a Beta(alpha, alpha) share.

    Every image draws its own chains, depths, operations, magnitudes and weights;
    all chains advance together, each step one grouped batch op.

    Args:
        severity: 1 to 10, the magnitude bins drawn from.
        mixture_width: number of chains.
        chain_depth: operations per chain; -1 draws 1 to 3 per chain and image.
        alpha: the Dirichlet and Beta concentration.
        all_ops: also draw Brightness, Color, Contrast and Sharpness (the
            operations that overlap ImageNet-C's corruptions leave them out).
        interpolation: "bilinear" (torchvision's default) or "nearest", for the
            geometric operations.
        value_range: the data's (low, high).
        p: probability of augmenting each image.
    """

    ops = AUGMIX_OPS
    num_magnitude_bins = 10  # torchvision's _PARAMETER_MAX
    # Each image is a blend of chains that moved it differently: no one geometry for
    # its masks to follow, so a batch with masks is refused by name.
    writes = ("images",)

    def __init__(self, severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=True,
                 interpolation="bilinear", value_range=(0, 255), p=1.0):  # fmt: skip
        super().__init__(value_range, p)
        self.severity = check_int("severity", severity, minimum=1, maximum=10)
        self.mixture_width = check_int("mixture_width", mixture_width, minimum=1, maximum=16)
        self.chain_depth = check_int("chain_depth", chain_depth, minimum=-1, maximum=16)
        if self.chain_depth == 0:
            raise invalid("chain_depth", chain_depth, "must be positive, or -1 to draw 1 to 3")
        self.alpha = check_number("alpha", alpha, minimum=0, exclusive=True)
        self.all_ops = check_bool("all_ops", all_ops)
        self.interpolation = check_choice("interpolation", interpolation, ("bilinear", "nearest"))
        self.interpolation_order = 1 if self.interpolation == "bilinear" else 0

    magnitude_table = staticmethod(augmix_magnitude_table)  # "Identity" has none

    def sample(self, shape, generator):
        batch, device = shape[0], generator.device
        width = self.mixture_width
        depth = self.chain_depth if self.chain_depth > 0 else 3
        choices = len(self.ops) - 1 if self.all_ops else self.ops.index("Equalize")
        size = (batch, width, depth)
        ops = 1 + torch.randint(choices, size, generator=generator, device=device)
        if self.chain_depth < 0:  # each chain of each image draws its length, 1 to 3
            lengths = 1 + torch.randint(3, (batch, width, 1), generator=generator, device=device)
            steps = torch.arange(depth, device=device)
            ops = torch.where(steps < lengths, ops, 0)  # "Identity" after the chain's end
        bins = torch.randint(self.severity, size, generator=generator, device=device)
        shares = dirichlet((batch,), 2, self.alpha, generator)
        weights = dirichlet((batch,), width, self.alpha, generator) * shares[:, 1:]
        return {
            "ops": ops,
            "bins": bins,
            "negative": bernoulli(size, generator),
            "original": shares[:, 0],
            "weights": weights,
        }

    def apply_in_range(self, x, params, bound):
        """All chains advance together: the batch repeated once per chain (chain-major),
        one grouped op per step, so a batch reads the group sizes `depth` times, not
        `mixture_width * depth`."""
        batch, width = x.shape[0], self.mixture_width

        def chain_major(values):  # (B, width, ...) -> (width * B, ...)
            return values.transpose(0, 1).reshape(width * batch, *values.shape[2:])

        ops, bins, negative = (chain_major(params[key]) for key in ("ops", "bins", "negative"))
        chains = x.repeat(width, 1, 1, 1)
        for step in range(ops.shape[1]):
            magnitude = self.magnitudes(x, ops[:, step], bins[:, step], negative[:, step])
            chains = self.step(Batch(chains), ops[:, step], magnitude, bound).images
        weights = chain_major(params["weights"]).to(x.dtype).view(width, batch, 1, 1, 1)
        mix = params["original"].to(x.dtype).view(-1, 1, 1, 1) * x
        for weight, chain in zip(weights, chains.view(width, *x.shape), strict=True):
            mix.addcmul_(weight, chain)  # in place: no width-sized temporary
        return mix.clamp_(0, bound)
