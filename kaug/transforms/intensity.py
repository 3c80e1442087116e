"""Random pixel-level noise."""

import torch

from kaug import functional as F
from kaug._checks import check_fraction, check_int, check_pair
from kaug.sampling import uniform
from kaug.transforms.base import BatchTransform, register_transform


@register_transform
class RandomSaltAndPepper(BatchTransform):
    """Set random pixels of each image to the low ("pepper") or high ("salt") value.

    Either a fraction of the pixels (`amount`) or an exact number (`count`, as the
    classic MNIST recipe: 50 salt and 50 pepper pixels is count=100). A pixel is
    set in every channel.

    Args:
        amount: fraction of each image's pixels hit (ignored when `count` is set).
        count: exact number of pixels hit per image (all of them in images with
            fewer pixels).
        salt_ratio: share of the hit pixels that become salt.
        value_range: (low, high); default per image (0, 1) for data in [0, 1]
            and (0, 255) otherwise.
        p: probability of adding noise to each image.
    """

    def __init__(self, amount=0.05, count=None, salt_ratio=0.5, value_range=None, p=0.5):
        super().__init__(p=p)
        self.amount = check_fraction("amount", amount)
        self.count = check_int("count", count, allow_none=True)
        self.salt_ratio = check_fraction("salt_ratio", salt_ratio)
        if value_range is not None:
            value_range = list(check_pair("value_range", value_range))
        self.value_range = value_range

    def sample(self, shape, generator):
        batch, _, height, width = shape
        pixels = height * width
        if self.count is None:
            hit = uniform((batch, pixels), generator) < self.amount
            salty = uniform((batch, pixels), generator) < self.salt_ratio
            salt, pepper = hit & salty, hit & ~salty
        else:
            # The `count` pixels with the highest random scores (every pixel of an
            # image smaller than that); the first ones are salt.
            count = min(self.count, pixels)
            chosen = uniform((batch, pixels), generator).topk(count, dim=1).indices
            salty = round(count * self.salt_ratio)
            none = torch.zeros((batch, pixels), dtype=torch.bool, device=generator.device)
            salt = none.scatter(1, chosen[:, :salty], True)
            pepper = none.scatter(1, chosen[:, salty:], True)
        view = (batch, 1, height, width)
        return {"salt": salt.view(view), "pepper": pepper.view(view)}

    def apply(self, x, params):
        if self.value_range is None:
            low, high = F.unit_or_byte_range(x)
        else:
            low, high = self.value_range
        return F.salt_and_pepper(x, params["salt"], params["pepper"], low, high)
