"""The generator's settings: Keras's attributes, their checks, and where they live.

`ImageDataGenerator` keeps no copy of its settings: the standardization ones live
in its `Standardizer`, the augmentation ones in its `KerasAugmentation` stage, the
transforms in its `Pipeline`. This module says which is which, checks every value
when it is set, and reads Keras's own configuration (the only keras import, lazy).
"""

import functools
import warnings

import numpy as np
import torch

from kaug._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_number,
    invalid,
    is_number,
    scalar,
)
from kaug._tensors import resolve_device
from kaug.pipeline import DTYPES
from kaug.standardize import FLAGS
from kaug.stats import ZCA_REGULARIZATIONS
from kaug.transforms.base import BatchFunction, BatchTransform, deserialize, resolve_function
from kaug.transforms.intensity import RandomSaltAndPepper
from kaug.transforms.kornia_module import KorniaTransform, is_kornia_module
from kaug.transforms.morphology import RandomErosion

DATA_FORMATS = ("channels_last", "channels_first")
# The classic MNIST recipe's extras: each on half the images.
SHORTCUTS = {
    "erosion": (RandomErosion, {"kernel_size": 2, "p": 0.5}),
    "salt_pepper": (RandomSaltAndPepper, {"count": 100, "salt_ratio": 0.5, "p": 0.5}),
}


def check_dtype(dtype):
    """The numpy name of a float dtype kaug computes in."""
    if isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except (TypeError, ValueError, SyntaxError):  # numpy parses strings as dtype specs
            name = None
    if name not in DTYPES:
        raise invalid("dtype", dtype, f"must be one of {', '.join(DTYPES)}")
    return name


def _check_callable(value):
    if isinstance(value, str):  # a name from a config: registered (or, unsafe, imported)
        return resolve_function(value, "preprocessing_function")
    if value is not None and not callable(value):
        raise invalid("preprocessing_function", value, "must be callable")
    return value


# Keras's attributes (and kaug's `dtype` and `device`) that live in the Standardizer,
# with the check run whenever one is set; the augmentation stage checks its own.
STANDARDIZER_SETTINGS = {
    **{flag: functools.partial(check_bool, flag) for flag in FLAGS},
    # Keras takes 0, whose whitening matrix is infinite wherever the data are flat.
    "zca_epsilon": lambda value: float(check_number("zca_epsilon", value, 0, exclusive=True)),
    "zca_regularization": lambda value: check_choice(
        "zca_regularization", value, ZCA_REGULARIZATIONS
    ),
    "rescale": lambda value: None if value is None else check_number("rescale", value),
    "preprocessing_function": _check_callable,
    "data_format": lambda value: check_choice("data_format", value, DATA_FORMATS),
    "dtype": check_dtype,
    "device": resolve_device,
}  # fmt: skip
AUGMENTATION_SETTINGS = (
    "rotation_range", "width_shift_range", "height_shift_range", "brightness_range",
    "shear_range", "zoom_range", "channel_shift_range", "fill_mode", "cval",
    "horizontal_flip", "vertical_flip", "interpolation_order",
)  # fmt: skip
SETTINGS = (*STANDARDIZER_SETTINGS, *AUGMENTATION_SETTINGS)

# Keras's overrides between the standardization flags, in Keras's order (zca_whitening
# turns std normalization off before that flag is looked at):
# (the flag that is set, the flag it overrides, the value it forces).
FLAG_OVERRIDES = (
    ("zca_whitening", "featurewise_center", True),
    ("zca_whitening", "featurewise_std_normalization", False),
    ("featurewise_std_normalization", "featurewise_center", True),
    ("samplewise_std_normalization", "samplewise_center", True),
)


def couple_standardization_flags(settings):
    """Apply Keras's overrides to `settings` (an object with the flags), with its warnings."""
    for cause, flag, forced in FLAG_OVERRIDES:
        if getattr(settings, cause) and getattr(settings, flag) != forced:
            setattr(settings, flag, forced)
            warnings.warn(
                f"This ImageDataGenerator specifies `{cause}`, which overrides "
                f"setting of `{flag}`.",
                stacklevel=4,
            )


def shortcut(name, value):
    """`erosion=` / `salt_pepper=`: False, True, a probability or a dict of arguments;
    the transform it stands for, or None."""
    cls, defaults = SHORTCUTS[name]
    value = scalar(value)
    if value is False or value is None:
        return None
    if value is True:
        return cls(**defaults)
    if is_number(value):
        return cls(**{**defaults, "p": check_fraction(name, value)})
    if isinstance(value, dict):
        try:
            return cls(**{**defaults, **value})
        except (TypeError, ValueError) as error:
            raise invalid(name, value, f"must hold {cls.__name__}'s arguments ({error})") from None
    raise invalid(name, value, "must be a bool, a probability or a dict of arguments")


def check_transforms(transforms):
    """`transforms=` as a list of BatchTransforms: plain functions are wrapped, dicts
    (saved configs) deserialized through kaug's registries."""
    if transforms is not None and not isinstance(transforms, (list, tuple)):
        raise invalid("transforms", transforms, "must be a list of BatchTransforms or functions")
    checked = []
    for item in transforms or ():
        if isinstance(item, dict):
            item = deserialize(item)
        elif is_kornia_module(item):
            item = KorniaTransform(item)
        elif not isinstance(item, BatchTransform) and callable(item):
            item = BatchFunction(item)
        if not isinstance(item, BatchTransform):
            raise invalid("transforms", transforms, "must hold BatchTransforms or functions")
        checked.append(item)
    return checked


def keras_config():
    """Keras's image_data_format and floatx, or Keras's defaults without it."""
    try:
        import keras
    except ImportError:  # no usable backend: Keras's own defaults
        return "channels_last", "float32"
    return keras.config.image_data_format(), keras.config.floatx()


def keras_backend():
    """The Keras backend batches are for (torch when Keras is not importable)."""
    try:
        import keras
    except ImportError:
        return "torch"
    return keras.backend.backend()
