"""`ImageDataGenerator`'s flow methods: the loaders it makes, with Keras's arguments.

`flow`, `flow_from_directory` and `flow_from_dataframe` check their arguments (in
Keras's words), list the data, and hand the generator's `Pipeline` to a loader
of `kaug.data`; the loaders never see the generator itself.
"""

import os
import warnings

import torch

from kaug._checks import check_bool, check_choice, check_int, check_seed, invalid, shape_of
from kaug.data.arguments import CLASS_MODES, check_file_arguments, file_split, flow_arrays
from kaug.data.directory import FileLoader
from kaug.data.files import (
    FRAME_CLASS_MODES,
    IMAGE_EXTENSIONS,
    list_class_folders,
    list_frame,
    match_masks,
)
from kaug.data.io import ImageWriter
from kaug.data.loader import OUTPUTS
from kaug.data.loaders import ArrayLoader


class Flows:
    """The flow methods of `ImageDataGenerator` (a mixin: they read its pipeline,
    `data_format`, `_validation_split` and `_contiguous_batches`)."""

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
        output=None,
    ):
        """Batches of augmented, standardized data, for `model.fit`.

        Keras's `flow`, returning a `torch.utils.data.DataLoader` (an
        `ArrayLoader`): pass it to `model.fit` as `x`, with no `y`. Each epoch
        reshuffles and draws new augmentations. `x` is never copied whole: on
        the CPU an in-memory array is used where it is, and a memory-mapped
        `.npy`, an h5py dataset or any array with `shape`, `dtype` and
        `__getitem__` is read a batch at a time (one read per batch, in
        background threads), so data larger than memory train with a few
        batches in memory; a GPU gets the data uploaded once when they fit in
        half its free memory. Making the loader costs the same whatever the
        size of `x` (it reads one batch's worth of rows, to check them).

        Args:
            x: images, rank 4: a numpy array (memory-mapped or not), a tensor,
                or anything with `shape`, `dtype` and `__getitem__` that takes a
                sorted 1-D int array (h5py datasets, zarr arrays); or Keras's
                tuple `(images, misc)` where misc (an array or a list of
                arrays) is served unchanged beside the images.
            y: optional targets, one per image (held in memory).
            batch_size: images per batch; the last batch may be smaller.
            shuffle: reorder the data every epoch.
            sample_weight: optional per-image weights.
            seed: makes a fresh loader serve the same batches in the same order,
                whatever kind of array holds `x`.
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
                seed). Held in memory.
            augment: False serves standardized but unaugmented batches, for
                validation or test data (kaug only; Keras users built a second
                generator for that).
            resident: True keeps `x` whole on the device (a GPU: uploaded once;
                the CPU: an in-memory array as it is, another source read into
                memory); False gathers every batch from `x`; None (default): on
                a GPU, True when the data fit in half its free memory; on the
                CPU, True for in-memory arrays (kaug only).
            rank: with `world_size`, serve this rank's disjoint shard of every
                epoch; by default both come from an initialised torch.distributed
                process group (torchrun), else a single process (kaug only).
            world_size: the number of ranks.
            output: what iterating the loader (`for`, `next`, `loader[i]`) serves
                (kaug only): None (default) follows `x`, numpy arrays for numpy
                data as Keras served them and device tensors for tensors; "numpy"
                or "torch" choose. `model.fit` / `evaluate` / `predict` and
                `loader.epoch()` take the device tensors either way, with no host
                copy.

        Returns:
            An `ArrayLoader` yielding `x`, `(x, y)` or `(x, y, sample_weight)`;
            iterating it never ends, as Keras's iterators (`loader.epoch()` is one
            epoch). Images with NaN or infinite values are refused with a
            ValueError naming their rows, when the batch holding them is read
            (data kept on a GPU: when they are uploaded).
        """
        images = x[0] if isinstance(x, (tuple, list)) and len(x) == 2 else x  # Keras's tuple
        output = _check_output(output, "torch" if isinstance(images, torch.Tensor) else "numpy")
        _check_lengths(x, y, sample_weight)
        x, y, sample_weight, extras = flow_arrays(
            x, y, sample_weight, masks, subset, self._validation_split, ignore_class_split,
            self.data_format,
        )  # fmt: skip
        check_int("batch_size", batch_size, minimum=1)
        seed = check_seed(seed)
        augment = check_bool("augment", augment)
        if resident is not None:
            resident = check_bool("resident", resident)
        shuffle = check_bool("shuffle", shuffle)
        writer = None if save_to_dir is None else ImageWriter(save_to_dir, save_prefix, save_format)
        self._pipeline.contiguous = self._contiguous_batches
        loader = ArrayLoader(
            self._pipeline, x, y, sample_weight, extras, image_data_generator=self,
            batch_size=batch_size, shuffle=shuffle, seed=seed, y_is_mask=masks is not None,
            augment=augment, writer=writer, resident=resident, rank=rank, world_size=world_size,
        )  # fmt: skip
        loader.output = output
        return loader

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
        mask_directory=None,
        num_workers=None,
        on_error="skip",
        decoder="auto",
        rank=None,
        world_size=None,
        output=None,
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
            mask_directory: (kaug only) a folder of segmentation masks mirroring
                `directory`: each image's mask is the file at its relative path
                with its stem (any image extension), a one-channel label image
                (PIL mode 1, L, P or I: values kept, nearest resize). Each mask
                gets its image's geometric augmentation and is served as y,
                (B, H, W, 1) per data_format, never standardized; needs
                class_mode=None. Images without a mask fail up front.
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
            output: what iterating the loader serves (kaug only): "numpy"
                (default, as Keras's iterators) or "torch" (device tensors);
                `model.fit` and `loader.epoch()` take the device tensors either way.

        Returns:
            A `FileLoader` yielding `(x, y)` batches (`x` for class_mode None).
        """
        check_choice("class_mode", class_mode, CLASS_MODES)
        output = _check_output(output, "numpy")
        seed = check_seed(seed)
        follow_links = check_bool("follow_links", follow_links)
        check_file_arguments(
            color_mode, on_error, interpolation, target_size, batch_size, num_workers, decoder
        )
        _check_masks("mask_directory", mask_directory, class_mode)
        split = file_split(subset, self._validation_split)
        class_names, filenames, labels = list_class_folders(directory, classes, follow_links, split)
        if not filenames:
            raise invalid(
                "directory",
                os.fspath(directory),
                f"holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class subfolders",
            )
        masks = None
        if mask_directory is not None:
            masks = match_masks(directory, filenames, mask_directory)
        print(f"Found {len(filenames)} images belonging to {len(class_names)} classes.")
        loader = self._file_loader(
            [os.path.join(directory, name) for name in filenames],
            labels, class_mode, len(class_names), None, masks, save_to_dir, save_prefix,
            save_format, target_size=target_size, color_mode=color_mode,
            batch_size=batch_size, shuffle=shuffle, seed=seed, interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio, num_workers=num_workers, on_error=on_error,
            decoder=decoder, augment=augment, rank=rank, world_size=world_size,
        )  # fmt: skip
        loader.output = output
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
        mask_col=None,
        num_workers=None,
        on_error="skip",
        decoder="auto",
        rank=None,
        world_size=None,
        output=None,
        **deprecated,
    ):
        """Batches of the image files a pandas DataFrame lists, for `model.fit`.

        Keras's `flow_from_dataframe`: file names in `x_col` (relative to
        `directory`, or absolute with directory None), targets in `y_col`
        (class names for "categorical" -- lists for several labels --, "binary"
        and "sparse"; numbers for "raw"; a list of columns for "multi_output"),
        optional weights in `weight_col`, optional mask files in `mask_col` (kaug
        only: as `mask_directory` in `flow_from_directory`, named like `x_col`'s
        files). With `validate_filenames`, rows whose
        file is missing or not an image are dropped with a warning. Decoding,
        augmentation and the remaining arguments are as in `flow_from_directory`.
        pandas is not imported by kaug: pass any DataFrame.

        Keras's deprecated arguments `has_ext`, `sort` and `drop_duplicates` are
        accepted and ignored, and `class_mode="other"` means "raw", each with
        Keras's DeprecationWarning; any other unknown argument is a TypeError.
        A dataframe that lists no usable file (all missing, say) gives an empty
        loader, as Keras: `n == 0`, `class_indices` from `classes`; iterating it
        raises a ValueError (Keras served empty batches without end).

        Returns:
            A `FileLoader` yielding `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        class_mode = _deprecated_frame_arguments(deprecated, class_mode)
        check_choice("class_mode", class_mode, FRAME_CLASS_MODES)
        output = _check_output(output, "numpy")
        seed = check_seed(seed)
        check_file_arguments(
            color_mode, on_error, interpolation, target_size, batch_size, num_workers, decoder
        )
        _check_masks("mask_col", mask_col, class_mode)
        split = file_split(subset, self._validation_split)
        listing = list_frame(
            dataframe, directory, x_col, y_col, weight_col, classes, class_mode, split,
            validate_filenames, mask_col,
        )  # fmt: skip
        checked = "validated" if validate_filenames else "non-validated"
        names = listing["class_indices"]
        belonging = f" belonging to {len(names)} classes" if listing["classes"] is not None else ""
        print(f"Found {len(listing['filenames'])} {checked} image filenames{belonging}.")
        loader = self._file_loader(
            listing["filepaths"], listing["targets"], class_mode, len(names),
            listing["sample_weight"], listing.get("maskpaths"), save_to_dir, save_prefix,
            save_format,
            target_size=target_size, color_mode=color_mode, batch_size=batch_size,
            shuffle=shuffle, seed=seed, interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio, num_workers=num_workers, on_error=on_error,
            decoder=decoder, augment=augment, rank=rank, world_size=world_size,
        )  # fmt: skip
        loader.output = output
        loader.directory = "" if directory is None else os.fspath(directory)
        loader.filenames = listing["filenames"]
        loader.class_indices = names
        loader.classes = listing["classes"]
        loader.labels = (
            listing["targets"] if class_mode in ("raw", "multi_output") else listing["classes"]
        )
        loader.sample_weight = listing["sample_weight"]
        return loader

    def _file_loader(self, filepaths, targets, class_mode, num_classes, sample_weight,
                     mask_paths, save_to_dir, save_prefix, save_format, **kwargs):  # fmt: skip
        writer = None if save_to_dir is None else ImageWriter(save_to_dir, save_prefix, save_format)
        self._pipeline.contiguous = self._contiguous_batches
        return FileLoader(
            self._pipeline, filepaths, targets, class_mode, num_classes=num_classes,
            sample_weight=sample_weight, mask_paths=mask_paths, writer=writer,
            image_data_generator=self, **kwargs,
        )  # fmt: skip


# Keras's deprecated `flow_from_dataframe` arguments, ignored with its warnings.
DEPRECATED_FRAME_ARGUMENTS = {
    "has_ext": "has_ext is deprecated, filenames in the dataframe have to match the exact "
    "filenames in disk.",
    "sort": "sort is deprecated, batches will be created in the same order than the "
    "filenames provided if `shuffle` is set to `False`.",
    "drop_duplicates": "drop_duplicates is deprecated, you can drop duplicates by using the "
    "pandas.DataFrame.drop_duplicates method.",
}


def _deprecated_frame_arguments(arguments, class_mode):
    """Keras's warnings for its deprecated arguments (in its order); the class_mode
    to use ("other" is "raw"). An argument Keras never had is a TypeError."""
    unknown = sorted(set(arguments) - set(DEPRECATED_FRAME_ARGUMENTS))
    if unknown:
        raise TypeError(
            f"flow_from_dataframe() got an unexpected keyword argument {unknown[0]!r}. "
            f"Received: {unknown[0]}={arguments[unknown[0]]!r}"
        )
    stack = 3  # the warning points at the caller of flow_from_dataframe
    for name in ("has_ext", "sort"):
        if name in arguments:
            warnings.warn(DEPRECATED_FRAME_ARGUMENTS[name], DeprecationWarning, stacklevel=stack)
    if isinstance(class_mode, str) and class_mode == "other":
        warnings.warn(
            '`class_mode="other"` is deprecated, please use `class_mode="raw"`.',
            DeprecationWarning,
            stacklevel=stack,
        )
        class_mode = "raw"
    if "drop_duplicates" in arguments:
        warnings.warn(
            DEPRECATED_FRAME_ARGUMENTS["drop_duplicates"], DeprecationWarning, stacklevel=stack
        )
    return class_mode


def _check_lengths(x, y, sample_weight):
    """Keras's errors for arrays whose lengths differ from the images' (its words, which
    code matches, then kaug's "Received:"). Arrays without a length are left to
    `flow_arrays`'s checks."""
    images, misc = x if isinstance(x, (tuple, list)) and len(x) == 2 else (x, None)
    image_shape = shape_of(images)
    if not image_shape:  # no shape (ragged) or a scalar: flow_arrays names it
        return
    count = image_shape[0]
    for index, array in enumerate(misc if isinstance(misc, list) else [misc]):
        shape = None if array is None else shape_of(array)
        if shape and shape[0] != count:
            raise ValueError(
                "All of the arrays in `x` should have the same length. Found a pair with: "
                f"len(x[0]) = {count}, len(x[?]) = {shape[0]}. "
                f"Received: x[1][{index}].shape={shape}, len(x[0])={count}"
            )
    for name, what, array in (("y", "labels", y), ("sample_weight", None, sample_weight)):
        shape = None if array is None else shape_of(array)
        if shape is not None and (not shape or shape[0] != count):
            subject = f"`{name}` ({what})" if what else f"`{name}`"
            raise ValueError(
                f"`x` (images tensor) and {subject} should have the same length. "
                f"Found: x.shape = {tuple(image_shape)}, {name}.shape = {shape}. "
                f"Received: {name}.shape={shape}, len(x)={count}"
            )


def _check_output(output, default):
    """`output`: "numpy", "torch", or None for `default`."""
    return default if output is None else check_choice("output", output, OUTPUTS)


def _check_masks(name, value, class_mode):
    if value is not None and class_mode is not None:
        raise invalid(
            "class_mode", class_mode, f"must be None with `{name}`: the masks are served as y"
        )
