"""Colour, tone, blur, noise and erasing: one parameter drawn per image, for the batch.

Each transform works on data in `value_range` (default Keras's 0..255; pass (0, 1)
for data in [0, 1]), like Keras 3's preprocessing layers, and runs before
standardization in `ImageDataGenerator(transforms=[...])`. The kernels are
`kaug.functional.color` / `blur`, checked against torchvision v2's functionals.
"""

import math

import torch

from kaug._checks import check_int, check_number, check_pair, invalid, is_number, scalar
from kaug.functional import blur, color
from kaug.sampling import box_tries, first_fit, uniform
from kaug.transforms.base import BatchTransform, register_transform


def factor_range(name, factor, center=1.0, minimum=0.0, maximum=math.inf):
    """Keras's factor convention: a number f for [center - f, center + f] (cut to the
    allowed range), or an explicit [low, high] pair."""
    factor = scalar(factor)
    if is_number(factor) and not isinstance(factor, bool):
        f = check_number(name, factor, 0)
        low, high = max(minimum, center - f), min(maximum, center + f)
    else:
        low, high = check_pair(name, factor, minimum)
    if high > maximum:
        raise invalid(name, factor, f"must stay within [{minimum}, {maximum}]")
    return [low, high]


class ValueRangeTransform(BatchTransform):
    """A transform whose kernel works on [0, bound]: the data's `value_range` is
    shifted there and back."""

    def __init__(self, value_range=(0, 255), p=1.0):
        super().__init__(p=p)
        low, high = check_pair("value_range", value_range)
        if high <= low:
            raise invalid("value_range", value_range, "must have low < high")
        self.value_range = [low, high]

    def apply(self, x, params):
        low, high = self.value_range
        shifted = x - low if low else x
        out = self.apply_in_range(shifted, params, high - low)
        return out + low if low else out

    def apply_in_range(self, x, params, bound):
        raise NotImplementedError


class _RandomFactor(ValueRangeTransform):
    """A colour op with one factor per image drawn from `factor`'s range."""

    center, minimum, maximum = 1.0, 0.0, math.inf
    kernel = None

    def __init__(self, factor=0.5, value_range=(0, 255), p=1.0):
        super().__init__(value_range, p)
        self.factor = factor_range("factor", factor, self.center, self.minimum, self.maximum)

    def sample(self, shape, generator):
        low, high = self.factor
        return {"factor": uniform((shape[0],), generator, low, high)}

    def apply_in_range(self, x, params, bound):
        return type(self).kernel(x, params["factor"], bound)


@register_transform
class RandomContrast(_RandomFactor):
    """Blend each image with its mean grey level by a factor in [1 - f, 1 + f]
    (torchvision's `adjust_contrast`; Keras 3's `RandomContrast`)."""

    kernel = staticmethod(color.adjust_contrast)


@register_transform
class RandomSaturation(_RandomFactor):
    """Blend each RGB image with its grayscale by a factor in [1 - f, 1 + f]
    (`adjust_saturation`); one-channel images pass through."""

    kernel = staticmethod(color.adjust_saturation)


@register_transform
class RandomHue(_RandomFactor):
    """Rotate each RGB image's hue by a share of a turn in [-f, f], f <= 0.5
    (`adjust_hue`); one-channel images pass through."""

    center, minimum, maximum = 0.0, -0.5, 0.5
    kernel = staticmethod(color.adjust_hue)

    def __init__(self, factor=0.1, value_range=(0, 255), p=1.0):
        super().__init__(factor, value_range, p)


@register_transform
class RandomSharpness(_RandomFactor):
    """Blend each image with a smoothed copy by a factor in [1 - f, 1 + f]: below 1
    blurs, above 1 sharpens (`adjust_sharpness`)."""

    kernel = staticmethod(color.adjust_sharpness)


@register_transform
class ColorJitter(ValueRangeTransform):
    """Brightness, contrast, saturation and hue jitter (torchvision's `ColorJitter`),
    each image with its own factors and its own random order of the four.

    Args:
        brightness, contrast, saturation: f for a factor in [max(0, 1 - f), 1 + f], or
            a [low, high] pair; 0 leaves that property alone.
        hue: f <= 0.5 for a hue shift in [-f, f] of a turn, or a pair.
        value_range: the data's range (default 0..255).
        p: probability of jittering each image.
    """

    KERNELS = (color.adjust_brightness, color.adjust_contrast, color.adjust_saturation,
               color.adjust_hue)  # fmt: skip
    IDENTITY = (1.0, 1.0, 1.0, 0.0)

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
                 value_range=(0, 255), p=1.0):  # fmt: skip
        super().__init__(value_range, p)
        self.brightness = factor_range("brightness", brightness)
        self.contrast = factor_range("contrast", contrast)
        self.saturation = factor_range("saturation", saturation)
        self.hue = factor_range("hue", hue, 0.0, -0.5, 0.5)

    def _ranges(self):
        return (self.brightness, self.contrast, self.saturation, self.hue)

    def sample(self, shape, generator):
        batch = shape[0]
        factors = torch.stack(
            [uniform((batch,), generator, low, high) for low, high in self._ranges()], 1
        )
        order = uniform((batch, 4), generator).argsort(1)  # each image's order of the four
        return {"factors": factors, "order": order}

    def apply_in_range(self, x, params, bound):
        factors, order = params["factors"], params["order"]
        for step in range(4):
            for op, (kernel, identity, (low, high)) in enumerate(
                zip(self.KERNELS, self.IDENTITY, self._ranges(), strict=True)
            ):
                if low == high == identity:
                    continue  # this property is not jittered
                now = order[:, step] == op
                factor = torch.where(now, factors[:, op], identity)
                changed = kernel(x, factor, bound)
                x = torch.where(now.view(-1, 1, 1, 1), changed, x)
        return x


@register_transform
class RandomGamma(ValueRangeTransform):
    """`(x / bound) ** gamma * bound` with gamma per image in `gamma` (`adjust_gamma`)."""

    def __init__(self, gamma=(0.7, 1.5), value_range=(0, 255), p=1.0):
        super().__init__(value_range, p)
        self.gamma = list(check_pair("gamma", gamma, 0))
        if self.gamma[0] <= 0:
            raise invalid("gamma", gamma, "must be positive")

    def sample(self, shape, generator):
        low, high = self.gamma
        return {"gamma": uniform((shape[0],), generator, low, high)}

    def apply_in_range(self, x, params, bound):
        return color.adjust_gamma(x, params["gamma"], bound)


@register_transform
class RandomGrayscale(BatchTransform):
    """Replace the colour channels of a share `p` of the images by their luma."""

    def __init__(self, p=0.1):
        super().__init__(p=p)

    def apply(self, x, params):
        return color.to_grayscale(x)


@register_transform
class RandomInvert(ValueRangeTransform):
    """Invert a share `p` of the images within `value_range`."""

    def __init__(self, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)

    def apply_in_range(self, x, params, bound):
        return color.invert(x, bound)


@register_transform
class RandomSolarize(ValueRangeTransform):
    """Invert the pixels at or above a threshold (a fraction of the range: 0.5 is 128
    of 0..255; a pair draws one per image) in a share `p` of the images."""

    def __init__(self, threshold=0.5, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)
        threshold = scalar(threshold)
        if is_number(threshold) and not isinstance(threshold, bool):
            self.threshold = check_number("threshold", threshold, 0)
        else:
            self.threshold = list(check_pair("threshold", threshold, 0))
        if max(self._thresholds) > 1:
            raise invalid("threshold", threshold, "must be a fraction of the range (0..1)")

    @property
    def _thresholds(self):
        return self.threshold if isinstance(self.threshold, list) else [self.threshold] * 2

    def sample(self, shape, generator):
        low, high = self._thresholds
        return {"threshold": uniform((shape[0],), generator, low, high)}

    def apply_in_range(self, x, params, bound):
        return color.solarize(x, params["threshold"] * bound, bound)


@register_transform
class RandomPosterize(ValueRangeTransform):
    """Keep `bits` bits of each 8-bit level (an int, or a [low, high] pair of ints drawn
    per image) in a share `p` of the images."""

    def __init__(self, bits=4, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)
        if isinstance(bits, (list, tuple)):
            low, high = (check_int("bits", b, minimum=1, maximum=8) for b in bits)
            if len(bits) != 2 or low > high:
                raise invalid("bits", bits, "must be an int or a [low, high] pair in 1..8")
            self.bits = [low, high]
        else:
            self.bits = check_int("bits", bits, minimum=1, maximum=8)

    def sample(self, shape, generator):
        low, high = self.bits if isinstance(self.bits, list) else (self.bits, self.bits)
        bits = torch.randint(
            low, high + 1, (shape[0],), generator=generator, device=generator.device
        )
        return {"bits": bits}

    def apply_in_range(self, x, params, bound):
        return color.posterize(x, params["bits"], bound)


@register_transform
class RandomAutoContrast(ValueRangeTransform):
    """Stretch each channel to the whole range in a share `p` of the images."""

    def __init__(self, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)

    def apply_in_range(self, x, params, bound):
        return color.autocontrast(x, bound)


@register_transform
class RandomEqualize(ValueRangeTransform):
    """Equalize the histogram of each channel (256 levels, PIL's table) in a share `p`
    of the images (torchvision's `equalize`)."""

    def __init__(self, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)

    def apply_in_range(self, x, params, bound):
        return color.equalize(x, bound)


@register_transform
class RandomGaussianBlur(BatchTransform):
    """Gaussian blur with sigma drawn per image (torchvision's `GaussianBlur`)."""

    def __init__(self, kernel_size=5, sigma=(0.1, 2.0), p=0.5):
        super().__init__(p=p)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        if self.kernel_size % 2 == 0:
            raise invalid("kernel_size", kernel_size, "must be odd")
        self.sigma = list(check_pair("sigma", sigma, 0))
        if self.sigma[0] <= 0:
            raise invalid("sigma", sigma, "must be positive")

    def sample(self, shape, generator):
        low, high = self.sigma
        return {"sigma": uniform((shape[0],), generator, low, high)}

    def apply(self, x, params):
        return blur.gaussian_blur(x, self.kernel_size, params["sigma"])


@register_transform
class RandomGaussianNoise(ValueRangeTransform):
    """Add Gaussian noise of standard deviation `std` (a fraction of the range),
    clipped to the range, to a share `p` of the images."""

    def __init__(self, std=0.05, value_range=(0, 255), p=0.5):
        super().__init__(value_range, p)
        self.std = check_number("std", std, 0)

    def sample(self, shape, generator):
        noise = torch.randn(shape, generator=generator, device=generator.device)
        return {"noise": noise}

    def apply_in_range(self, x, params, bound):
        noise = params["noise"].to(x.dtype) * (self.std * bound)
        return (x + noise).clamp(0, bound)


@register_transform
class RandomErasing(BatchTransform):
    """Erase one rectangle per image (torchvision's `RandomErasing`): area a share in
    `scale` of the image, aspect ratio in `ratio` (log-uniform), filled with `value`;
    an image where ten draws find no rectangle that fits stays as it is."""

    def __init__(self, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, p=0.5):
        super().__init__(p=p)
        self.scale = list(check_pair("scale", scale, 0))
        if self.scale[1] > 1:
            raise invalid("scale", scale, "must be shares of the image (<= 1)")
        self.ratio = list(check_pair("ratio", ratio, 0))
        if self.ratio[0] <= 0:
            raise invalid("ratio", ratio, "must be positive")
        self.value = check_number("value", value)

    def sample(self, shape, generator, tries=10):
        batch, _, height, width = shape
        h, w = (side.long() for side in box_tries(shape, self.scale, self.ratio, generator, tries))
        found, pick = first_fit((h < height) & (w < width) & (h > 0) & (w > 0))
        h = torch.where(found, h.gather(1, pick).view(-1), 0)
        w = torch.where(found, w.gather(1, pick).view(-1), 0)
        top = (uniform((batch,), generator) * (height - h + 1)).long().clamp(max=height - 1)
        left = (uniform((batch,), generator) * (width - w + 1)).long().clamp(max=width - 1)
        value = torch.full((batch,), self.value, device=generator.device)
        return {"top": top, "left": left, "height": h, "width": w, "value": value}

    def apply(self, x, params):
        return blur.erase(
            x, params["top"], params["left"], params["height"], params["width"], params["value"]
        )
