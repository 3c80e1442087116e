"""`ImageDataGenerator`: Keras's class, computed on whole batches with torch.

The facade: Keras's API, its argument docs and checks. Settings live in the
`Pipeline` (see `kaug.settings`), `fit` is `kaug.fitting`, `save`/`load` are
`kaug.saving`, and the loaders hold the pipeline, never this class.
"""

import functools
import json

import numpy as np
import torch

from kaug import fitting, saving
from kaug._checks import (
    check_int,
    check_number,
    check_rank,
    check_seed,
    invalid,
    scalar,
    shape_of,
)
from kaug._tensors import to_numpy
from kaug.batch import Batch
from kaug.data.io import image_grid, save_preview, to_uint8_images
from kaug.flows import Flows
from kaug.inputs import channel_axis, from_batch, to_batch
from kaug.pipeline import Pipeline
from kaug.sampling import make_generator
from kaug.settings import (
    AUGMENTATION_SETTINGS,
    SETTINGS,
    STANDARDIZER_SETTINGS,
    check_transforms,
    couple_standardization_flags,
    keras_backend,
    keras_config,
    shortcut,
)
from kaug.stats import check_statistic
from kaug.transforms.base import function_name, serialize
from kaug.transforms.keras import KerasAugmentation

load = saving.load


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
        value = check_statistic(self.name, value, generator._pipeline.standardizer.statistics_dtype)
        generator._fitted = generator._fitted.replace(**{self.name: value})


class ImageDataGenerator(Flows):
    """Generate batches of augmented images, like `keras.preprocessing.image.ImageDataGenerator`.

    Takes Keras's arguments with Keras's names, defaults and meaning (see its
    documentation), plus `device`. Every batch is augmented at once on the
    device: all random parameters in one draw, rotation, shift, shear, zoom and
    flips in one warp, then channel shift, brightness and standardization as
    batch tensor ops.

    Differences from Keras, on purpose: `width_shift_range` shifts along the
    width and `height_shift_range` along the height (Keras swaps them); rotation,
    shear and zoom turn about the true centre of non-square images;
    `brightness_range` works on data in [0, 1]; inputs are never modified;
    ZCA is regularised as in Keras 2.0 unless `zca_regularization="keras3"`.

    Args:
        featurewise_center: subtract the dataset's per-channel mean (see `fit`).
        samplewise_center: subtract each image's mean.
        featurewise_std_normalization: divide by the dataset's per-channel std.
        samplewise_std_normalization: divide each image by its std.
        zca_whitening: apply ZCA whitening (see `fit`).
        zca_epsilon: epsilon of the ZCA whitening's regularisation (see
            `zca_regularization`).
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
        zca_regularization: how `zca_epsilon` regularises ZCA (kaug only).
            "covariance" (default): W = U diag(1 / sqrt(lambda + eps)) U^T on the
            eigenvalues of the covariance, as Keras 2.0 and its tutorials: flat
            pixels stay flat, whitened digits show their outlines. "keras3":
            W = U diag(sqrt(n) / (s + eps)) U^T on the data's singular values,
            as Keras 3 (keras-preprocessing since 2021), whose default epsilon
            turns near-constant pixels into noise.

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
        zca_regularization="covariance",
    ):
        self._pipeline = Pipeline()
        if data_format is None or dtype is None:
            keras_format, keras_floatx = keras_config()
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
        self.zca_regularization = zca_regularization
        couple_standardization_flags(self)
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
        extras = [shortcut(name, value) for name, value in self._shortcuts.items()]
        self._user_transforms = check_transforms(transforms)
        self._pipeline.transforms = [t for t in extras if t is not None] + self._user_transforms

    def __setattr__(self, name, value):
        """Keras's attributes are checked (and put in Keras's form) whenever they are set,
        and live in the pipeline, so the next batch uses them, as in Keras: the
        augmentation stage is rebuilt when one of its settings (or `dtype`) changes."""
        pipeline = self.__dict__.get("_pipeline")
        if name in STANDARDIZER_SETTINGS:
            setattr(pipeline.standardizer, name, STANDARDIZER_SETTINGS[name](value))
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
        if pipeline is not None and name in STANDARDIZER_SETTINGS:
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
        return channel_axis(self.data_format)

    @property
    def row_axis(self):
        return 2 if self.data_format == "channels_first" else 1

    @property
    def col_axis(self):
        return 3 if self.data_format == "channels_first" else 2

    @functools.cached_property
    def _contiguous_batches(self):
        """Serve contiguous batches: Keras hands DataLoader batches to jax and
        tensorflow as `np.asarray(x.cpu())`, where a permuted view costs a second
        copy; the torch backend takes the view as it is."""
        return keras_backend() != "torch"

    def get_config(self):
        """The constructor arguments (Keras's convention), from the live attributes, as
        plain JSON data: `from_config` rebuilds the generator as it is now.

        Transforms appear as `{"class_name", "config"}` dicts and functions by name
        (registered, or "module:qualname"); an unregistered transform or a lambda is
        named in a ValueError. Fitted statistics are not part of the config; `save`
        keeps them too.
        """
        config = self._config()
        function = config["preprocessing_function"]
        if function is not None:
            config["preprocessing_function"] = function_name(function, "preprocessing_function")
        return config

    def _config(self):
        """The configuration, transforms serialized, preprocessing_function as it is."""
        config = {name: getattr(self, name) for name in SETTINGS}
        config.update(
            device=str(self.device),
            validation_split=self._validation_split,
            transforms=[serialize(t) for t in self._user_transforms],
            **self._shortcuts,
        )
        for transform in config["transforms"]:
            try:
                json.dumps(transform)
            except (TypeError, ValueError) as error:
                raise invalid(
                    "transforms", transform["class_name"], f"must have a JSON config ({error})"
                ) from None
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
        saving.save(self, path)

    # -- fitted statistics: numpy in Keras's shapes, cached on the device ----------

    mean = _FittedStatistic()
    std = _FittedStatistic()
    zca_whitening_matrix = _FittedStatistic()

    # -- the public API: the kind of array in is the kind out ----------------------

    def _to_batch(self, x, rank=4, what="a batch of images"):
        return to_batch(x, self.device, self.data_format, rank, what)

    def _from_batch(self, batch, like, rank=4):
        return from_batch(batch, like, self.data_format, self._pipeline.dtype, rank)

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

        NaN or infinite values are refused (a ValueError counting them), as in
        every method: they would spread through the warp and every statistic.
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
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x)  # nested lists too, as Keras takes them
        return self.augment(x[None], seed)[0]

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
        images = self._to_batch(x[:n])
        batch = Batch(images, labels=self._stand_in_labels(len(images), images.device))
        batch = self._pipeline.augment_batch(batch, self._generator_for(seed)).images
        grid = image_grid(to_numpy(to_uint8_images(self._pipeline.standardize(batch))))
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
        if path is not None:
            save_preview(grid, path)
        return grid

    def _stand_in_labels(self, count, device):
        """Labels for `preview`'s images when a transform mixes labels (MixUp, CutMix):
        the grid shows images only, so every image is class 0, in the form the first
        such transform takes (one-hot rows without `num_classes`, else an index)."""
        mixing = [t for t in self._pipeline.transforms if "labels" in t.writes]
        if not mixing:
            return None
        if getattr(mixing[0], "num_classes", None) is None:
            classes = torch.zeros(count, dtype=torch.long, device=device)
            return torch.nn.functional.one_hot(classes, 2)
        return torch.zeros(count, device=device)

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
        self._fitted = fitting.fit_statistics(
            self._pipeline, x, augment, rounds, self._generator_for(seed), shard, rank, world_size
        )
