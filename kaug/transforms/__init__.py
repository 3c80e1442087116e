"""Batch transforms: validated configuration, device-side sampling, pure apply.

Subclass `BatchTransform` (implement `sample` and `apply`), register it with
`@register_transform`, and pass instances to `ImageDataGenerator(transforms=[...])`.
"""

from kaug.transforms.base import (
    BatchFunction,
    BatchTransform,
    deserialize,
    register_function,
    register_transform,
    registered_functions,
    registered_transforms,
    safe_mode_scope,
    serialize,
)
from kaug.transforms.color import (
    ColorJitter,
    RandomAutoContrast,
    RandomContrast,
    RandomEqualize,
    RandomErasing,
    RandomGamma,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomGrayscale,
    RandomHue,
    RandomInvert,
    RandomPosterize,
    RandomSaturation,
    RandomSharpness,
    RandomSolarize,
)
from kaug.transforms.geometric import (
    CenterCrop,
    GeometricTransform,
    RandomCrop,
    RandomElasticTransform,
    RandomPerspective,
    RandomResizedCrop,
)
from kaug.transforms.intensity import RandomSaltAndPepper
from kaug.transforms.keras import KerasAugmentation
from kaug.transforms.kornia_module import KorniaTransform
from kaug.transforms.mixing import CutMix, MixUp
from kaug.transforms.morphology import RandomDilation, RandomErosion
from kaug.transforms.policies import AugMix, RandAugment, TrivialAugmentWide

__all__ = [
    "AugMix",
    "BatchFunction",
    "BatchTransform",
    "CenterCrop",
    "ColorJitter",
    "CutMix",
    "GeometricTransform",
    "KerasAugmentation",
    "KorniaTransform",
    "MixUp",
    "RandAugment",
    "RandomAutoContrast",
    "RandomContrast",
    "RandomCrop",
    "RandomDilation",
    "RandomEqualize",
    "RandomErasing",
    "RandomElasticTransform",
    "RandomErosion",
    "RandomGamma",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomGrayscale",
    "RandomHue",
    "RandomInvert",
    "RandomPerspective",
    "RandomPosterize",
    "RandomResizedCrop",
    "RandomSaltAndPepper",
    "RandomSaturation",
    "RandomSharpness",
    "RandomSolarize",
    "deserialize",
    "register_function",
    "register_transform",
    "registered_functions",
    "registered_transforms",
    "safe_mode_scope",
    "serialize",
    "TrivialAugmentWide",
]
