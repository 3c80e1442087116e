"""`ImageDataGenerator`: Keras's class, computed on whole batches with torch.

The only module that imports keras, and only to read its configuration.
"""

import functools
import inspect
import json
import os
import warnings
import zipfile
import zlib

import numpy as np
import torch

from kaug import distributed
from kaug._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
    check_rank,
    check_seed,
    invalid,
    is_number,
    scalar,
    shape_of,
)
from kaug._tensors import as_tensor, from_nchw, resolve_device, to_nchw, to_numpy
from kaug.data.decoding import COLOR_MODES, DECODERS
from kaug.data.directory import FileLoader
from kaug.data.files import (
    FRAME_CLASS_MODES,
    IMAGE_EXTENSIONS,
    check_interpolation,
    list_class_folders,
    list_frame,
)
from kaug.data.io import ImageWriter, image_grid, save_image, to_uint8_images
from kaug.data.loaders import ArrayLoader
from kaug.pipeline import DTYPES, Pipeline
from kaug.sampling import make_generator
from kaug.standardize import FLAGS, image_shape
from kaug.stats import (
    STATISTICS,
    FittedStatistics,
    StatsAccumulator,
    check_statistic,
    free_memory,
    zca_memory_needed,
)
from kaug.transforms.base import (
    BatchFunction,
    BatchTransform,
    deserialize,
    safe_mode_scope,
    serialize,
)
from kaug.transforms.intensity import RandomSaltAndPepper
from kaug.transforms.keras import KerasAugmentation
from kaug.transforms.morphology import RandomErosion

DATA_FORMATS = ("channels_last", "channels_first")
SUBSETS = ("training", "validation")
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
_FIT_CHUNK = 4096  # images per upload in `fit`
# The classic MNIST recipe's extras: each on half the images.
_SHORTCUTS = {
    "erosion": (RandomErosion, {"kernel_size": 2, "p": 0.5}),
    "salt_pepper": (RandomSaltAndPepper, {"count": 100, "salt_ratio": 0.5, "p": 0.5}),
}


def _check_dtype(dtype):
    if isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in DTYPES:
        raise invalid("dtype", dtype, f"must be one of {', '.join(DTYPES)}")
    return name


def _check_callable(value):
    if value is not None and not callable(value):
        raise invalid("preprocessing_function", value, "must be callable")
    return value


# Keras's attributes (and kaug's `dtype` and `device`) that live in the Standardizer,
# with the check run whenever one is set; the augmentation stage checks its own.
_STANDARDIZER_SETTINGS = {
    **{flag: functools.partial(check_bool, flag) for flag in FLAGS},
    # Keras takes 0, whose whitening matrix is infinite wherever the data are flat.
    "zca_epsilon": lambda value: float(check_number("zca_epsilon", value, 0, exclusive=True)),
    "rescale": lambda value: None if value is None else check_number("rescale", value),
    "preprocessing_function": _check_callable,
    "data_format": lambda value: check_choice("data_format", value, DATA_FORMATS),
    "dtype": _check_dtype,
    "device": resolve_device,
}  # fmt: skip
AUGMENTATION_SETTINGS = (
    "rotation_range", "width_shift_range", "height_shift_range", "brightness_range",
    "shear_range", "zoom_range", "channel_shift_range", "fill_mode", "cval",
    "horizontal_flip", "vertical_flip", "interpolation_order",
)  # fmt: skip
SETTINGS = (*_STANDARDIZER_SETTINGS, *AUGMENTATION_SETTINGS)


def _keras_config():
    """Keras's image_data_format and floatx, or Keras's defaults without it."""
    try:
        import keras
    except ImportError:  # no usable backend: Keras's own defaults
        return "channels_last", "float32"
    return keras.config.image_data_format(), keras.config.floatx()


def _keras_backend():
    """The Keras backend batches are for (torch when Keras is not importable)."""
    try:
        import keras
    except ImportError:
        return "torch"
    return keras.backend.backend()


class _FittedStatistic:
    """`mean`, `std`, `zca_whitening_matrix`: numpy in Keras's shapes, settable by hand.

    Reads come from the generator's current `FittedStatistics` snapshot; setting
    one checks the value, copies it (read-only) and swaps in a new snapshot.
    """

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, generator, owner=None):
        return self if generator is None else getattr(generator._fitted, self.name)

    def __set__(self, generator, value):
        value = check_statistic(self.name, value, generator._statistics_dtype)
        generator._fitted = generator._fitted.replace(**{self.name: value})


class ImageDataGenerator:
    """Generate batches of augmented images, like `keras.preprocessing.image.ImageDataGenerator`.

    Takes Keras's arguments with Keras's names, defaults and meaning (see its
    documentation), plus `device`. Every batch is augmented at once on the
    device: all random parameters in one draw, rotation, shift, shear, zoom and
    flips in one warp, then channel shift, brightness and standardization as
    batch tensor ops.

    Differences from Keras, on purpose: `width_shift_range` shifts along the
    width and `height_shift_range` along the height (Keras swaps them); rotation,
    shear and zoom turn about the true centre of non-square images;
    `brightness_range` works on data in [0, 1]; inputs are never modified.

    Args:
        featurewise_center: subtract the dataset's per-channel mean (see `fit`).
        samplewise_center: subtract each image's mean.
        featurewise_std_normalization: divide by the dataset's per-channel std.
        samplewise_std_normalization: divide each image by its std.
        zca_whitening: apply ZCA whitening (see `fit`).
        zca_epsilon: epsilon added to the singular values for ZCA.
        rotation_range: degrees of random rotation.
        width_shift_range: float (fraction of the width if < 1, else pixels),
            int (pixels) or list of choices.
        height_shift_range: the same for the height.
        brightness_range: None or a pair of brightness factors.
        shear_range: shear angle in degrees.
        zoom_range: float z for [1 - z, 1 + z] or [lower, upper].
        channel_shift_range: range of random channel shifts.
        fill_mode: "constant", "nearest", "reflect" or "wrap".
        cval: fill value for "constant".
        horizontal_flip: randomly flip images left to right.
        vertical_flip: randomly flip images upside down.
        rescale: factor multiplied into the data before anything else in
            `standardize` (after `preprocessing_function`).
        preprocessing_function: function of one image (numpy, rank 3), run
            first in `standardize`. It runs on the host once per image, as in
            Keras; kaug's batch transforms are the fast alternative.
        data_format: "channels_last" or "channels_first"; default Keras's.
        validation_split: fraction of the data reserved for validation.
        interpolation_order: 0 (nearest) or 1 (bilinear).
        dtype: "float16", "float32" or "float64"; default Keras's floatx.
        device: torch device for the work; default CUDA when available, else CPU.
        transforms: list of `kaug.transforms.BatchTransform`s (or plain functions
            of a (B, C, H, W) float batch), run after the built-in augmentation and
            before standardization, in order.
        erosion: True to erode half the images with a 2x2 square (the classic
            MNIST recipe); a float for another probability, or a dict of
            `RandomErosion` arguments. Runs before `transforms`.
        salt_pepper: True to set 50 random pixels to the low and 50 to the high
            end of the data's range in half the images; a float for another
            probability, or a dict of `RandomSaltAndPepper` arguments.

    Example:
        >>> datagen = ImageDataGenerator(rotation_range=20, horizontal_flip=True)
        >>> batch = datagen.augment(np.zeros((8, 28, 28, 1), "float32"))
        >>> batch.shape
        (8, 28, 28, 1)
    """

    def __init__(
        self,
        featurewise_center=False,
        samplewise_center=False,
        featurewise_std_normalization=False,
        samplewise_std_normalization=False,
        zca_whitening=False,
        zca_epsilon=1e-6,
        rotation_range=0,
        width_shift_range=0.0,
        height_shift_range=0.0,
        brightness_range=None,
        shear_range=0.0,
        zoom_range=0.0,
        channel_shift_range=0.0,
        fill_mode="nearest",
        cval=0.0,
        horizontal_flip=False,
        vertical_flip=False,
        rescale=None,
        preprocessing_function=None,
        data_format=None,
        validation_split=0.0,
        interpolation_order=1,
        dtype=None,
        device=None,
        transforms=None,
        erosion=False,
        salt_pepper=False,
    ):
        self._pipeline = Pipeline()
        if data_format is None or dtype is None:
            keras_format, keras_floatx = _keras_config()
            data_format = keras_format if data_format is None else data_format
            dtype = keras_floatx if dtype is None else dtype
        # Every Keras attribute is checked when it is set, here or later, and lives in
        # the pipeline: see __setattr__.
        self.data_format = data_format
        self.dtype = dtype
        self.device = device

        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening = zca_whitening
        self.zca_epsilon = zca_epsilon
        self._couple_standardization_flags()
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        validation_split = check_number("validation_split", validation_split)
        if validation_split and not 0 < validation_split < 1:
            raise invalid("validation_split", validation_split, "must be strictly between 0 and 1")
        self._validation_split = validation_split

        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.brightness_range = brightness_range
        self.shear_range = shear_range
        self.zoom_range = zoom_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.interpolation_order = interpolation_order

        self._shortcuts = {"erosion": scalar(erosion), "salt_pepper": scalar(salt_pepper)}
        extras = [self._shortcut(name, value) for name, value in self._shortcuts.items()]
        self._user_transforms = self._check_transforms(transforms)
        self._pipeline.transforms = [t for t in extras if t is not None] + self._user_transforms

    def __setattr__(self, name, value):
        """Keras's attributes are checked (and put in Keras's form) whenever they are set,
        and live in the pipeline, so the next batch uses them, as in Keras: the
        augmentation stage is rebuilt when one of its settings (or `dtype`) changes."""
        pipeline = self.__dict__.get("_pipeline")
        if name in _STANDARDIZER_SETTINGS:
            setattr(pipeline.standardizer, name, _STANDARDIZER_SETTINGS[name](value))
            if name == "dtype":
                self._rebuild_stage()
            elif name == "device":
                self.__dict__["_generator"] = make_generator(pipeline.device)
        elif name in AUGMENTATION_SETTINGS:
            self._rebuild_stage(**{name: value})
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        """The settings, read from where they live (only called for names not found)."""
        pipeline = self.__dict__.get("_pipeline")
        if pipeline is not None and name in _STANDARDIZER_SETTINGS:
            return getattr(pipeline.standardizer, name)
        if pipeline is not None and name in AUGMENTATION_SETTINGS:
            return getattr(pipeline.augmentation, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _rebuild_stage(self, **changed):
        """Replace the augmentation stage (its own checks run on `changed`)."""
        stage = self._pipeline.augmentation
        settings = {name: getattr(stage, name) for name in AUGMENTATION_SETTINGS}
        self._pipeline.augmentation = KerasAugmentation(
            **{**settings, **changed}, dtype=self._pipeline.compute_dtype
        )

    @property
    def _augmentation(self):
        return self._pipeline.augmentation

    @property
    def _fitted(self):
        return self._pipeline.standardizer.fitted

    @_fitted.setter
    def _fitted(self, snapshot):
        self._pipeline.standardizer.fitted = snapshot

    @property
    def channel_axis(self):
        return 1 if self.data_format == "channels_first" else 3

    @property
    def row_axis(self):
        return 2 if self.data_format == "channels_first" else 1

    @property
    def col_axis(self):
        return 3 if self.data_format == "channels_first" else 2

    @property
    def _torch_dtype(self):
        return self._pipeline.dtype

    @property
    def _compute_dtype(self):
        return self._pipeline.compute_dtype

    @property
    def _statistics_dtype(self):
        """Statistics keep at least float32: a float16 mean of large data would be inf."""
        return "float64" if self.dtype == "float64" else "float32"

    @functools.cached_property
    def _contiguous_batches(self):
        """Serve contiguous batches: Keras hands DataLoader batches to jax and
        tensorflow as `np.asarray(x.cpu())`, where a permuted view costs a second
        copy; the torch backend takes the view as it is."""
        return _keras_backend() != "torch"

    @staticmethod
    def _shortcut(name, value):
        """`erosion=` / `salt_pepper=`: False, True, a probability or a dict of arguments."""
        cls, defaults = _SHORTCUTS[name]
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
                raise invalid(
                    name, value, f"must hold {cls.__name__}'s arguments ({error})"
                ) from None
        raise invalid(name, value, "must be a bool, a probability or a dict of arguments")

    @staticmethod
    def _check_transforms(transforms):
        if transforms is not None and not isinstance(transforms, (list, tuple)):
            raise invalid(
                "transforms", transforms, "must be a list of BatchTransforms or functions"
            )
        checked = []
        for item in transforms or ():
            if isinstance(item, dict):
                item = deserialize(item)
            elif not isinstance(item, BatchTransform) and callable(item):
                item = BatchFunction(item)
            if not isinstance(item, BatchTransform):
                raise invalid("transforms", transforms, "must hold BatchTransforms or functions")
            checked.append(item)
        return checked

    def get_config(self):
        """The constructor arguments (Keras's convention), from the live attributes:
        `from_config` rebuilds the generator as it is now.

        Fitted statistics are not part of the config; `save` keeps them too.
        """
        config = {name: getattr(self, name) for name in SETTINGS}
        config.update(
            device=str(self.device),
            validation_split=self._validation_split,
            transforms=list(self._user_transforms),
            **self._shortcuts,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, path):
        """Save the configuration, the transforms and the fitted statistics to `path`.

        One `.npz` file (JSON config plus arrays, no pickle); `kaug.load(path)`
        restores a generator that gives the same output under the same seed. The
        device is not saved (the loading machine picks its own), nor is a
        `preprocessing_function` (pass it to `kaug.load`).
        """
        config = self.get_config()
        config.pop("device")
        if config.pop("preprocessing_function") is not None:
            warnings.warn(
                "`preprocessing_function` is not saved: pass it to `kaug.load(path, "
                "preprocessing_function=...)`.",
                stacklevel=2,
            )
        config["transforms"] = [serialize(t) for t in config["transforms"]]
        arrays = {
            name: getattr(self, name)
            for name in ("mean", "std", "zca_whitening_matrix")
            if getattr(self, name) is not None
        }
        with open(path, "wb") as file:
            np.savez(file, config=np.array(json.dumps(config)), **arrays)

    def _couple_standardization_flags(self):
        """Keras's overrides between the standardization flags, with its warnings.

        In Keras's order: zca_whitening turns std normalization off before that
        flag is looked at.
        """
        rules = [  # (the flag that is set, the flag it overrides, the value it forces)
            ("zca_whitening", "featurewise_center", True),
            ("zca_whitening", "featurewise_std_normalization", False),
            ("featurewise_std_normalization", "featurewise_center", True),
            ("samplewise_std_normalization", "samplewise_center", True),
        ]
        for cause, flag, forced in rules:
            if getattr(self, cause) and getattr(self, flag) != forced:
                setattr(self, flag, forced)
                warnings.warn(
                    f"This ImageDataGenerator specifies `{cause}`, which overrides "
                    f"setting of `{flag}`.",
                    stacklevel=3,
                )

    # -- fitted statistics: numpy in Keras's shapes, cached on the device ----------

    mean = _FittedStatistic()
    std = _FittedStatistic()
    zca_whitening_matrix = _FittedStatistic()

    # -- the public API: the kind of array in is the kind out ----------------------

    def _to_batch(self, x, rank=4, what="a batch of images", copy=True):
        """A user array as a (B, C, H, W) tensor on the device, after the checks every
        entry point shares; a copy, so nothing kaug or a user function does to it can
        reach the caller's array (`copy=False` only where nothing runs on it in place)."""
        check_rank("x", x, rank, what)
        tensor = as_tensor(x, self.device, copy=copy)
        batch = to_nchw(tensor[None] if rank == 3 else tensor, self.data_format)
        self._check_images(batch, x)
        return batch

    def _check_images(self, batch, x, name="x"):
        """Images need a pixel and a channel, and finite values (NaN would spread to
        every statistic and through the warp)."""
        if min(batch.shape[1:]) < 1:
            raise ValueError(
                f"`{name}` must hold images of at least one channel, row and column "
                f"({self.data_format}). Received: {name}.shape={tuple(x.shape)}"
            )
        if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
            raise invalid(name, "data with NaN or infinite values", "must hold finite values only")

    def _from_batch(self, batch, like, rank=4):
        out = from_nchw(batch, self.data_format).to(self._torch_dtype)
        out = out[0] if rank == 3 else out
        return out if isinstance(like, torch.Tensor) else to_numpy(out)

    def _generator_for(self, seed):
        seed = check_seed(seed)
        return self._generator if seed is None else make_generator(self.device, seed)

    def augment(self, x, seed=None):
        """Randomly augment a whole batch of images at once.

        Args:
            x: (B, H, W, C) or (B, C, H, W) batch (per data_format); numpy array
                or torch tensor of any numeric dtype.
            seed: optional int for a reproducible draw.

        Returns:
            The augmented batch in the generator's dtype: a numpy array for
            numpy input, a tensor on the generator's device for tensor input.
        """
        batch, _ = self._pipeline.augment(self._to_batch(x), self._generator_for(seed))
        return self._from_batch(batch, x)

    def standardize(self, x):
        """Apply the normalization configuration to one image or a batch.

        Unlike Keras, `x` is not modified in place; samplewise statistics are per
        image also for a batch.

        Args:
            x: one image (rank 3) or a batch (rank 4), numpy or torch.

        Returns:
            The standardized data, same kind and rank as `x`.
        """
        rank = len(shape_of(x) or ())
        if rank not in (3, 4):
            check_rank("x", x, 4, "an image (rank 3) or a batch of images")
        batch = self._to_batch(x, rank)
        return self._from_batch(self._pipeline.standardize(batch), x, rank)

    def get_random_transform(self, img_shape, seed=None):
        """Draw the random parameters Keras's `apply_transform` takes, for one image.

        Args:
            img_shape: shape of the image (rank 3, in data_format).
            seed: optional int.

        Returns:
            Dict with Keras's keys: theta, tx, ty, shear, zx, zy, flip_horizontal,
            flip_vertical, channel_shift_intensity, brightness. `tx` is drawn from
            `width_shift_range` and `ty` from `height_shift_range`.
        """
        try:
            img_shape = tuple(scalar(size) for size in img_shape)
        except TypeError:
            img_shape = None
        if (
            img_shape is None
            or len(img_shape) != 3
            or not all(isinstance(size, int) and not isinstance(size, bool) for size in img_shape)
            or min(img_shape) < 1
        ):
            raise invalid(
                "img_shape", img_shape, "must be the shape of one image (three positive ints)"
            )
        shape = (
            1,
            img_shape[self.channel_axis - 1],
            img_shape[self.row_axis - 1],
            img_shape[self.col_axis - 1],
        )
        params = self._augmentation.sample(shape, self._generator_for(seed))
        return KerasAugmentation.params_to_keras(params)

    def apply_transform(self, x, transform_parameters):
        """Apply Keras transform parameters to one image (see `get_random_transform`).

        Args:
            x: one image, rank 3.
            transform_parameters: dict with any of Keras's keys.

        Returns:
            The transformed image, same kind as `x`.
        """
        batch = self._to_batch(x, rank=3, what="a single image")
        params = KerasAugmentation.params_from_keras(transform_parameters, self.device)
        return self._from_batch(self._augmentation.apply(batch, params), x, rank=3)

    def random_transform(self, x, seed=None):
        """Randomly augment one image (a batch of one through `augment`)."""
        check_rank("x", x, 3, "a single image")
        return self.augment(x[None], seed)[0]

    def flow(
        self,
        x,
        y=None,
        batch_size=32,
        shuffle=True,
        sample_weight=None,
        seed=None,
        save_to_dir=None,
        save_prefix="",
        save_format="png",
        ignore_class_split=False,
        subset=None,
        *,
        masks=None,
        augment=True,
        resident=None,
        rank=None,
        world_size=None,
    ):
        """Batches of augmented, standardized data, for `model.fit`.

        Keras's `flow`, returning a `torch.utils.data.DataLoader` (an
        `ArrayLoader`): pass it to `model.fit` as `x`, with no `y`. Each epoch
        reshuffles and draws new augmentations. The arrays go to the device once;
        every batch is a gather plus one pass of the batch engine.

        Args:
            x: images, rank 4 (numpy or torch), or Keras's tuple
                `(images, misc)` where misc (an array or a list of arrays) is
                served unchanged beside the images.
            y: optional targets, one per image.
            batch_size: images per batch; the last batch may be smaller.
            shuffle: reorder the data every epoch.
            sample_weight: optional per-image weights.
            seed: makes a fresh loader serve the same batches in the same order.
            save_to_dir: folder where every served image is also saved (in the
                background, atomically), or None.
            save_prefix: file name prefix for saved images.
            save_format: "png", "jpeg", ...
            ignore_class_split: allow training and validation subsets whose sets
                of classes differ.
            subset: "training" or "validation" with the generator's
                `validation_split`: validation is the first `validation_split`
                share of the data, as in Keras.
            masks: segmentation masks instead of `y`, (N, H, W) or (N, H, W, K)
                per data_format: each gets its image's geometric transform
                (nearest sampling, 0 outside, no photometric change) and is served
                as the target (kaug only; Keras users ran two generators with one
                seed).
            augment: False serves standardized but unaugmented batches, for
                validation or test data (kaug only; Keras users built a second
                generator for that).
            resident: True/False forces the data onto/off the device; None keeps
                it on the device when it fits in half the free memory (kaug only).
            rank: with `world_size`, serve this rank's disjoint shard of every
                epoch; by default both come from an initialised torch.distributed
                process group (torchrun), else a single process (kaug only).
            world_size: the number of ranks.

        Returns:
            An `ArrayLoader` yielding `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        if masks is not None:
            if y is not None:
                raise invalid("masks", "an array", "replaces `y`: pass one or the other")
            y = masks
            if np.ndim(masks) not in (3, 4) or tuple(np.shape(masks))[:1] != tuple(np.shape(x))[:1]:
                raise ValueError(
                    "`masks` must be (N, H, W) or (N, H, W, K) arrays, one per image. "
                    f"Received: masks.shape={tuple(np.shape(masks))}"
                )
        extras = ()
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise invalid(
                    "x",
                    f"{type(x).__name__} of length {len(x)}",
                    "must be an array or a tuple (images, misc)",
                )
            x, misc = x
            extras = tuple(misc) if isinstance(misc, list) else (misc,)
        check_rank("x", x, 4, "a batch of images")
        x = as_tensor(x, "cpu", "x")
        y, sample_weight, *extras = (
            self._per_image(name, value, len(x))
            for name, value in [
                ("masks" if masks is not None else "y", y),
                ("sample_weight", sample_weight),
                *[(f"x[1][{i}]", e) for i, e in enumerate(extras)],
            ]
        )
        check_int("batch_size", batch_size, minimum=1)
        seed = check_seed(seed)
        augment = check_bool("augment", augment)
        if resident is not None:
            resident = check_bool("resident", resident)
        x, y, sample_weight, extras = self._subset(
            x, y, sample_weight, tuple(extras), subset, ignore_class_split
        )
        if len(x) == 0:
            part = "" if subset is None else f" (its {subset!r} subset is empty)"
            raise invalid("x", f"array of shape {tuple(x.shape)}{part}", "must hold an image")
        self._check_images(to_nchw(x, self.data_format), x)
        if sample_weight is not None and not bool(torch.isfinite(sample_weight).all()):
            raise invalid("sample_weight", "weights with NaN or inf", "must be finite")
        self._warn_channels(x)
        if masks is not None and self._spatial(y) != self._spatial(x):
            raise ValueError(
                "`masks` must have the height and width of the images. "
                f"Received: masks.shape={tuple(y.shape)}, x.shape={tuple(x.shape)}"
            )
        shuffle = check_bool("shuffle", shuffle)
        writer = None if save_to_dir is None else ImageWriter(save_to_dir, save_prefix, save_format)
        self._pipeline.contiguous = self._contiguous_batches
        return ArrayLoader(
            self._pipeline, x, y, sample_weight, extras, image_data_generator=self,
            batch_size=batch_size, shuffle=shuffle, seed=seed, y_is_mask=masks is not None,
            augment=augment, writer=writer, resident=resident, rank=rank, world_size=world_size,
        )  # fmt: skip

    @staticmethod
    def _per_image(name, value, count):
        """`value` as a CPU tensor with one entry per image (None stays None)."""
        if value is None:
            return None
        shape = shape_of(value)
        if not shape or shape[0] != count:
            raise ValueError(
                f"`{name}` must be an array with one entry per image in `x`. "
                f"Received: {name}.shape={shape}, len(x)={count}"
            )
        return as_tensor(value, "cpu", name)

    def _spatial(self, array):
        """(height, width) of a batch of images, or of (N, H, W) masks."""
        if np.ndim(array) == 3:
            return tuple(array.shape[1:3])
        return array.shape[self.row_axis], array.shape[self.col_axis]

    def flow_from_directory(
        self,
        directory,
        target_size=(256, 256),
        color_mode="rgb",
        classes=None,
        class_mode="categorical",
        batch_size=32,
        shuffle=True,
        seed=None,
        save_to_dir=None,
        save_prefix="",
        save_format="png",
        follow_links=False,
        subset=None,
        interpolation="nearest",
        keep_aspect_ratio=False,
        *,
        augment=True,
        num_workers=None,
        on_error="skip",
        decoder="auto",
        rank=None,
        world_size=None,
    ):
        """Batches from a folder with one subfolder per class, for `model.fit`.

        Keras's `flow_from_directory` (same arguments, same listing, labels and
        attributes), returning a `torch.utils.data.DataLoader` (a
        `FileLoader`): CPU worker processes read and decode the files with
        Keras's pixels (see `decoder`), and the uint8 batches are augmented and
        standardized on the generator's device.

        Args:
            directory: the root folder; each subfolder is a class (nested
                folders inside a class are searched too).
            target_size: (height, width) every image is resized to.
            color_mode: "grayscale", "rgb" or "rgba".
            classes: class folder names, in label order; default all, sorted.
            class_mode: "categorical" (one-hot), "binary" or "sparse" (the class
                index), "input" (the images themselves) or None (images only).
            batch_size: images per batch.
            shuffle: reorder the files every epoch.
            seed: makes a fresh loader serve the same order and augmentations.
            save_to_dir: folder where every served image is also saved, or None.
            save_prefix: file name prefix for saved images.
            save_format: "png", "jpeg", ...
            follow_links: follow symbolic links to folders inside class folders.
            subset: "training" or "validation", with `validation_split`: the
                first share of each class's files is validation, as in Keras.
            interpolation: PIL resampling for the resize: "nearest", "bilinear",
                "bicubic", "hamming", "box" or "lanczos".
            keep_aspect_ratio: crop the centre to the target aspect ratio first.
            augment: False serves standardized, unaugmented batches (kaug only).
            num_workers: decoding processes (kaug only); default: none for images
                under 64x64 on fewer than 8 CPUs (decoding them in the main process is
                faster there) or for fewer than 4 batches of files, else min(4, CPUs).
            on_error: "skip" (default) leaves unreadable files out, with one
                warning per epoch listing them; "raise" stops at the first one
                (kaug only; Keras crashes mid-epoch).
            decoder: (kaug only) "auto" (default): JPEGs are decoded on the
                device by torchvision.io when it is CUDA (nvJPEG, one call per
                batch) and torchvision imports, and resized there with PIL's
                arithmetic; on the CPU, 8-bit PNGs and JPEGs already at
                `target_size` are decoded by kornia-rs (bit-identical to PIL,
                5-6x faster), the rest by PIL as in Keras. "pil": PIL for every
                file, Keras's exact pixels everywhere. "torchvision": JPEGs
                decoded by torchvision.io on the generator's device, CPU included.
            rank, world_size: as in `flow`: each rank gets a disjoint shard.

        Returns:
            A `FileLoader` yielding `(x, y)` batches (`x` for class_mode None).
        """
        check_choice("class_mode", class_mode, CLASS_MODES)
        seed = check_seed(seed)
        follow_links = check_bool("follow_links", follow_links)
        self._check_file_arguments(
            color_mode, on_error, interpolation, target_size, batch_size, num_workers, decoder
        )
        split = self._file_split(subset)
        class_names, filenames, labels = list_class_folders(directory, classes, follow_links, split)
        if not filenames:
            raise invalid(
                "directory",
                os.fspath(directory),
                f"holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class subfolders",
            )
        print(f"Found {len(filenames)} images belonging to {len(class_names)} classes.")
        loader = self._file_loader(
            [os.path.join(directory, name) for name in filenames],
            labels, class_mode, len(class_names), None, save_to_dir, save_prefix,
            save_format, target_size=target_size, color_mode=color_mode,
            batch_size=batch_size, shuffle=shuffle, seed=seed, interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio, num_workers=num_workers, on_error=on_error,
            decoder=decoder, augment=augment, rank=rank, world_size=world_size,
        )  # fmt: skip
        loader.directory = os.fspath(directory)
        loader.filenames = filenames
        loader.classes = loader.labels = labels
        loader.class_indices = {name: index for index, name in enumerate(class_names)}
        loader.sample_weight = None
        return loader

    def flow_from_dataframe(
        self,
        dataframe,
        directory=None,
        x_col="filename",
        y_col="class",
        weight_col=None,
        target_size=(256, 256),
        color_mode="rgb",
        classes=None,
        class_mode="categorical",
        batch_size=32,
        shuffle=True,
        seed=None,
        save_to_dir=None,
        save_prefix="",
        save_format="png",
        subset=None,
        interpolation="nearest",
        validate_filenames=True,
        *,
        keep_aspect_ratio=False,
        augment=True,
        num_workers=None,
        on_error="skip",
        decoder="auto",
        rank=None,
        world_size=None,
    ):
        """Batches of the image files a pandas DataFrame lists, for `model.fit`.

        Keras's `flow_from_dataframe`: file names in `x_col` (relative to
        `directory`, or absolute with directory None), targets in `y_col`
        (class names for "categorical" -- lists for several labels --, "binary"
        and "sparse"; numbers for "raw"; a list of columns for "multi_output"),
        optional weights in `weight_col`. With `validate_filenames`, rows whose
        file is missing or not an image are dropped with a warning. Decoding,
        augmentation and the remaining arguments are as in `flow_from_directory`.
        pandas is not imported by kaug: pass any DataFrame.

        Returns:
            A `FileLoader` yielding `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        check_choice("class_mode", class_mode, FRAME_CLASS_MODES)
        seed = check_seed(seed)
        self._check_file_arguments(
            color_mode, on_error, interpolation, target_size, batch_size, num_workers, decoder
        )
        split = self._file_split(subset)
        listing = list_frame(
            dataframe, directory, x_col, y_col, weight_col, classes, class_mode, split,
            validate_filenames,
        )  # fmt: skip
        checked = "validated" if validate_filenames else "non-validated"
        names = listing["class_indices"]
        belonging = f" belonging to {len(names)} classes" if listing["classes"] is not None else ""
        print(f"Found {len(listing['filenames'])} {checked} image filenames{belonging}.")
        if not listing["filenames"]:
            raise invalid("dataframe", f"{len(dataframe)} rows", "lists no usable image files")
        loader = self._file_loader(
            listing["filepaths"], listing["targets"], class_mode, len(names),
            listing["sample_weight"], save_to_dir, save_prefix, save_format,
            target_size=target_size, color_mode=color_mode, batch_size=batch_size,
            shuffle=shuffle, seed=seed, interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio, num_workers=num_workers, on_error=on_error,
            decoder=decoder, augment=augment, rank=rank, world_size=world_size,
        )  # fmt: skip
        loader.directory = "" if directory is None else os.fspath(directory)
        loader.filenames = listing["filenames"]
        loader.class_indices = names
        loader.classes = listing["classes"]
        loader.labels = (
            listing["targets"] if class_mode in ("raw", "multi_output") else listing["classes"]
        )
        loader.sample_weight = listing["sample_weight"]
        return loader

    def _check_file_arguments(self, color_mode, on_error, interpolation, target_size, batch_size,
                              num_workers, decoder):  # fmt: skip
        check_choice("color_mode", color_mode, tuple(COLOR_MODES))
        check_choice("on_error", on_error, ("skip", "raise"))
        check_choice("decoder", decoder, DECODERS)
        check_interpolation(interpolation)
        if (
            not isinstance(target_size, (tuple, list))
            or len(target_size) != 2
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in target_size
            )
        ):
            raise invalid(
                "target_size", target_size, "must be a (height, width) pair of positive ints"
            )
        check_int("batch_size", batch_size, minimum=1)
        check_int("num_workers", num_workers, allow_none=True)

    def _file_split(self, subset):
        """Keras's (start, stop) fractions for a subset of files, or None."""
        if subset is None:
            return None
        check_choice("subset", subset, SUBSETS)
        if not self._validation_split:
            raise invalid(
                "subset", subset, "needs an ImageDataGenerator created with `validation_split`"
            )
        return (
            (0, self._validation_split) if subset == "validation" else (self._validation_split, 1)
        )

    def _file_loader(self, filepaths, targets, class_mode, num_classes, sample_weight,
                     save_to_dir, save_prefix, save_format, **kwargs):  # fmt: skip
        writer = None if save_to_dir is None else ImageWriter(save_to_dir, save_prefix, save_format)
        self._pipeline.contiguous = self._contiguous_batches
        return FileLoader(
            self._pipeline, filepaths, targets, class_mode, num_classes=num_classes,
            sample_weight=sample_weight, writer=writer, image_data_generator=self, **kwargs,
        )  # fmt: skip

    def _subset(self, x, y, sample_weight, extras, subset, ignore_class_split):
        """Keras's validation split: the first `validation_split` share is validation."""
        if subset is None:
            if self._validation_split:
                warnings.warn(
                    "This ImageDataGenerator has a `validation_split` but `flow` was called "
                    "without `subset`: it serves all the data, validation part included.",
                    stacklevel=3,
                )
            return x, y, sample_weight, extras
        check_choice("subset", subset, SUBSETS)
        if not self._validation_split:
            raise invalid(
                "subset", subset, "needs an ImageDataGenerator created with `validation_split`"
            )
        split = int(len(x) * self._validation_split)
        if y is not None and not ignore_class_split:
            labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
            if not np.array_equal(np.unique(labels[:split]), np.unique(labels[split:])):
                raise ValueError(
                    "Training and validation subsets have different number of classes after "
                    "the split. If your numpy arrays are sorted by the label, you might want "
                    "to shuffle them (or pass ignore_class_split=True). "
                    f"Received: subset={subset!r}, validation_split={self._validation_split}"
                )
        part = slice(None, split) if subset == "validation" else slice(split, None)
        pick = lambda a: None if a is None else a[part]  # noqa: E731
        return pick(x), pick(y), pick(sample_weight), tuple(pick(e) for e in extras)

    def _warn_channels(self, x):
        channels = x.shape[self.channel_axis]
        if channels not in (1, 3, 4):
            warnings.warn(
                "Expected input to be images (as Numpy array) following the data format "
                f'convention "{self.data_format}" (channels on axis {self.channel_axis}), '
                f"i.e. expected either 1, 3 or 4 channels on axis {self.channel_axis}. "
                f"However, it was passed an array with shape {tuple(x.shape)} "
                f"({channels} channels).",
                stacklevel=3,
            )

    def preview(self, x, n=9, path=None, seed=None, scale=1):
        """A grid of `n` augmented, standardized samples: look before you train.

        Args:
            x: images, rank 4; the first `n` are shown.
            n: number of samples (a square-ish grid).
            path: where to write the grid (PNG, or the format its extension
                names), or None. Missing folders are created.
            seed: optional int for the augmentation draws.
            scale: enlarge the grid this many times (nearest), for readable
                grids of small images (kaug only).

        Returns:
            The grid as an (H, W, C) uint8 numpy array (each image min-max scaled).
        """
        check_rank("x", x, 4, "a batch of images")
        check_int("n", n, minimum=1)
        scale = check_int("scale", scale, minimum=1, maximum=64)
        if len(x) == 0:
            raise invalid("x", f"empty array of shape {tuple(x.shape)}", "must hold an image")
        batch = self._to_batch(x[:n])
        batch, _ = self._pipeline.augment(batch, self._generator_for(seed))
        grid = image_grid(to_numpy(to_uint8_images(self._pipeline.standardize(batch))))
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
        if path is not None:
            folder = os.path.dirname(os.fspath(path))
            try:
                os.makedirs(folder or ".", exist_ok=True)
                save_image(grid, path)
            except OSError as error:
                raise invalid(
                    "path", os.fspath(path), f"must be a writable file ({error})"
                ) from None
        return grid

    def fit(self, x, augment=False, rounds=1, seed=None, *, shard=None, rank=None,
            world_size=None):  # fmt: skip
        """Compute the featurewise statistics and the ZCA matrix of sample data.

        Statistics are accumulated in float64 on the generator's device, batch by
        batch, after `rescale` and (with `augment`) random augmentation, as in
        Keras. Needed only for featurewise_center, featurewise_std_normalization
        and zca_whitening.

        Args:
            x: sample data: an array or tensor of rank 4, or anything that yields
                batches of images (a kaug loader, e.g. `flow_from_directory(...)`,
                whose raw unaugmented images are used; or any iterable of arrays
                or of (x, ...) tuples), streamed so it never needs to fit in memory.
            augment: fit on randomly augmented copies of the data.
            rounds: with `augment`, how many augmented passes over the data.
            seed: optional int for the augmentation draws.
            shard: in a distributed run (see `rank`), sum only this rank's share
                of an array `x` (every rank passes the same data); default True.
                Loaders are already sharded.
            rank, world_size: this process's rank and the number of ranks; by
                default from an initialised torch.distributed process group. The
                sums are all-reduced, so every rank ends with the statistics of the
                whole dataset.
        """
        check_int("rounds", rounds, minimum=1)
        rank, world_size = distributed.process_group(rank, world_size)
        if _is_array(x):
            check_rank("x", x, 4, "a batch of images")
            data = x if isinstance(x, torch.Tensor) else np.asarray(x)
            if len(data) == 0:
                raise invalid(
                    "x", f"empty array of shape {tuple(data.shape)}", "must hold at least one image"
                )
            if world_size > 1 and shard is not False:
                data = data[rank::world_size]
            passes = [data] * (rounds if augment else 1)
            steps = len(passes) * -(-len(data) // _FIT_CHUNK)
        else:
            if isinstance(x, (str, bytes, dict)) or not hasattr(x, "__iter__"):
                raise invalid(
                    "x", type(x).__name__, "must be an array of images or yield batches of them"
                )
            passes = [x] * (rounds if augment else 1)
            steps = len(passes) * len(x) if hasattr(x, "__len__") else None
        generator = self._generator_for(seed)
        accumulator = None
        progress = self._progress_bar(steps, rank)
        for source in passes:
            for batch in self._fit_batches(source, copy=augment):
                if accumulator is None:
                    accumulator = self._accumulator(batch, augment)
                elif tuple(batch.shape[1:]) != accumulator.shape:
                    raise invalid(
                        "x",
                        f"a batch of images of shape {self._image_shape(tuple(batch.shape[1:]))}",
                        "must yield images of one shape; the first batch's were "
                        f"{self._image_shape(accumulator.shape)}",
                    )
                if augment:
                    batch = batch.to(self._compute_dtype)
                    if self.rescale:
                        batch = batch * self.rescale
                    batch, _ = self._pipeline.augment(batch, generator)
                flat = from_nchw(batch, self.data_format).reshape(batch.shape[0], -1)
                accumulator.update(batch, flat if self.zca_whitening else None)
                if progress is not None:
                    progress.add(1)
        if accumulator is None:
            raise invalid("x", type(x).__name__, "must yield at least one batch of images")
        accumulator.all_reduce()
        self._store_fit(accumulator, self._image_shape(accumulator.shape))

    def _fit_batches(self, source, copy):
        """(B, C, H, W) tensors on the device, in chunks, from any kind of sample data."""
        if _is_array(source):
            for start in range(0, len(source), _FIT_CHUNK):
                yield self._to_batch(source[start : start + _FIT_CHUNK], copy=copy)
        elif hasattr(source, "raw_batches"):
            yield from source.raw_batches()
        else:
            for item in source:
                item = item[0] if isinstance(item, (tuple, list)) else item
                check_rank("x", item, 4, "batches of images")
                yield self._to_batch(item, copy=copy)

    def _accumulator(self, batch, augment):
        """Sums for batches like `batch`; without augmentation `rescale` is applied to
        the sums at the end (it is linear), so raw uint8 data are summed exactly."""
        channels, features = batch.shape[1], int(np.prod(batch.shape[1:]))
        if channels not in (1, 3, 4):
            self._warn_channels(from_nchw(batch, self.data_format))
        if self.zca_whitening and zca_memory_needed(features) > 0.8 * free_memory(self.device):
            raise invalid(
                "x",
                f"images of {features} features",
                f"are too large for ZCA whitening: its {features} x {features} matrices need "
                f"{zca_memory_needed(features) / 2**30:.1f} GiB on {self.device}; fit on "
                "smaller (resized) images, or use featurewise_std_normalization instead",
            )
        accumulator = StatsAccumulator(
            channels,
            features if self.zca_whitening else None,
            self.device,
            scale=1.0 if augment else (self.rescale or 1.0),
        )
        accumulator.shape = tuple(batch.shape[1:])
        return accumulator

    def _image_shape(self, chw):
        """A (C, H, W) shape in the generator's data_format."""
        return image_shape(chw, self.data_format)

    @staticmethod
    def _progress_bar(steps, rank):
        """Keras's progress bar for long passes (20 chunks or more), on rank 0."""
        if steps is None or steps < 20 or rank != 0:
            return None
        from keras.utils import Progbar

        return Progbar(steps, unit_name="chunk")

    def _store_fit(self, accumulator, image_shape):
        """Keep the fitted statistics as Keras does (numpy, (1, 1, C) or (C, 1, 1)),
        swapped in as one snapshot."""
        if not (torch.isfinite(accumulator.channel_sum).all() and
                torch.isfinite(accumulator.channel_sum_sq).all()):  # fmt: skip
            raise invalid(
                "x",
                "data with NaN or infinite values (or too large to square in float64)",
                "must hold finite values only to be fit",
            )
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = image_shape[self.channel_axis - 1]
        mean, std = accumulator.mean(), accumulator.std()
        fitted = {
            "mean": to_numpy(mean).reshape(shape) if self.featurewise_center else None,
            "std": to_numpy(std).reshape(shape) if self.featurewise_std_normalization else None,
            "zca_whitening_matrix": None,
        }
        if self.zca_whitening:
            height, width = image_shape[self.row_axis - 1], image_shape[self.col_axis - 1]

            def per_feature(values):  # (C,) -> (D,), in the data_format's flat order
                image = values.view(1, -1, 1, 1).expand(1, -1, height, width)
                return from_nchw(image, self.data_format).reshape(-1)

            center = mean if self.featurewise_center else torch.zeros_like(mean)
            scale = std + 1e-6 if self.featurewise_std_normalization else torch.ones_like(std)
            matrix = accumulator.zca_matrix(
                per_feature(center), per_feature(scale), self.zca_epsilon
            )
            fitted["zca_whitening_matrix"] = to_numpy(matrix)
        checked = {
            name: check_statistic(name, value, self._statistics_dtype)
            for name, value in fitted.items()
        }
        self._fitted = FittedStatistics(**checked)


def _is_array(x):
    return isinstance(x, (np.ndarray, torch.Tensor, list))


def load(path, safe_mode=True, **overrides):
    """An ImageDataGenerator saved with `save`, fitted statistics included.

    Loading never runs code the file names (Keras's `safe_mode`): transforms and
    functions resolve through kaug's registries only, and every value goes through
    the constructor's checks.

    Args:
        path: the saved file.
        safe_mode: True (default) refuses function names that are not registered
            with `kaug.transforms.register_function`; False imports the modules
            they name, which runs those modules' code: only for files you trust.
        **overrides: constructor arguments to replace, e.g. `device="cpu"` or the
            `preprocessing_function`, which is not saved.

    Returns:
        The ImageDataGenerator: same output as the saved one under the same seed.
    """
    config, statistics = _read_saved(path)
    arguments = inspect.signature(ImageDataGenerator).parameters
    for key in (*config, *overrides):
        if key not in arguments:
            raise invalid("config", key, "is not an ImageDataGenerator argument")
    with safe_mode_scope(safe_mode):
        generator = ImageDataGenerator.from_config({**config, **overrides})
    for name, value in statistics.items():
        setattr(generator, name, value)  # checked like hand-set statistics
    return generator


def _read_saved(path):
    """(config dict, {statistic name: array}) from a file `save` wrote; a ValueError
    naming `path` for anything else."""
    expected = "must be a file written by ImageDataGenerator.save"
    try:
        saved = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise invalid("path", os.fspath(path), "names no file") from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise invalid("path", os.fspath(path), f"{expected} ({error})") from error
    if not isinstance(saved, np.lib.npyio.NpzFile):
        raise invalid("path", os.fspath(path), f"{expected} (it holds one bare array)")
    with saved:
        unknown = sorted(set(saved.files) - {"config", *STATISTICS})
        if "config" not in saved.files or unknown:
            found = f"arrays {sorted(saved.files)}"
            raise invalid("path", os.fspath(path), f"{expected} ({found})")
        try:
            text = saved["config"]
            statistics = {name: saved[name] for name in STATISTICS if name in saved.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise invalid("path", os.fspath(path), f"{expected} ({error})") from error
    if text.shape != () or text.dtype.kind != "U":
        raise invalid("path", os.fspath(path), f"{expected} (its config is not one string)")
    try:
        config = json.loads(str(text))
    except (ValueError, RecursionError) as error:
        raise invalid("path", os.fspath(path), f"{expected} (config: {error})") from error
    if not isinstance(config, dict):
        raise invalid("path", os.fspath(path), f"{expected} (its config is not a JSON object)")
    return config, statistics
