"""Image files: listing class folders the way Keras does, and decoding them.

Listing follows Keras's legacy DirectoryIterator exactly (sorted class folders,
a sorted recursive walk, Keras's extensions, the validation split taken within
each class), so `filenames`, `classes` and `class_indices` match Keras's; the
same for a dataframe's rows and Keras's DataFrameIterator. Decoding is in
`decoding`.
"""

import os
import warnings

import numpy as np

from kaug._checks import invalid

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")


def _walk(directory, follow_links):
    """(root, file names) of every folder below `directory`, as `os.walk` lists them,
    except that a folder is not entered again below itself: a symbolic link loop
    cannot hang the listing or repeat its files (Keras follows such loops until
    the OS refuses the path)."""
    pending = [(directory, frozenset())]
    while pending:
        root, ancestors = pending.pop()
        try:
            real = os.path.realpath(root)
            entries = sorted(os.scandir(root), key=lambda entry: entry.name, reverse=True)
        except OSError:  # unreadable folder: os.walk skips it too
            continue
        if real in ancestors:
            continue
        ancestors = ancestors | {real}
        files = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=follow_links):
                    pending.append((entry.path, ancestors))
                elif not entry.is_dir():
                    files.append(entry.name)
            except OSError:
                continue
        yield root, files


def _valid_files(directory, follow_links):
    """(root, filename) of every image file below `directory`, in Keras's order.

    Regular files and links to them count, and so do dangling links, as Keras lists
    them: reading one fails at once, and the loader reports it by name (`on_error`)
    instead of the listing dropping it without a word. A FIFO or a device named
    `x.png` does not count: it would block the epoch that opens it.
    """
    for root, files in sorted(_walk(directory, follow_links), key=lambda entry: entry[0]):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.lower().endswith(IMAGE_EXTENSIONS) and (
                os.path.isfile(path) or (os.path.islink(path) and not os.path.exists(path))
            ):
                yield root, name


def list_class_folders(directory, classes=None, follow_links=False, split=None):
    """The images of a class-per-folder tree.

    Args:
        directory: the root; each subfolder is a class.
        classes: class folder names to use, in label order; default all
            subfolders, sorted.
        follow_links: follow symbolic links to folders below the class folders.
        split: (start, stop) fractions of each class's files to keep (Keras's
            validation split), or None for all.

    Returns:
        (class_names, filenames, labels): filenames relative to `directory`
        ("class/sub/file.png"), labels an int32 array of class indices.
    """
    if not os.path.isdir(directory):
        raise invalid("directory", os.fspath(directory), "must be an existing folder")
    subfolders = sorted(
        name for name in os.listdir(directory) if os.path.isdir(os.path.join(directory, name))
    )
    if classes:
        classes = _check_classes(classes)
        missing = [name for name in classes if name not in subfolders]
        if missing:
            raise invalid(
                "classes", list(classes), f"names folders missing from {directory}: {missing}"
            )
        subfolders = list(classes)
    filenames, labels = [], []
    for label, name in enumerate(subfolders):
        folder = os.path.join(directory, name)
        found = list(_valid_files(folder, follow_links))
        if split is not None:
            found = found[int(split[0] * len(found)) : int(split[1] * len(found))]
        for root, file in found:
            filenames.append(os.path.join(name, os.path.relpath(os.path.join(root, file), folder)))
            labels.append(label)
    return subfolders, filenames, np.asarray(labels, dtype=np.int32)


def _check_classes(classes):
    """Class names: a list (or tuple) of distinct strings."""
    if isinstance(classes, str) or not isinstance(classes, (list, tuple)):
        raise invalid("classes", classes, "must be a list of class names")
    if not all(isinstance(name, str) for name in classes):
        raise invalid("classes", classes, "must hold strings (folder or class names)")
    if len(set(classes)) != len(classes):
        repeated = sorted({name for name in classes if classes.count(name) > 1})
        raise invalid("classes", classes, f"must name each class once; repeated: {repeated}")
    return list(classes)


_RESAMPLE = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def check_interpolation(interpolation):
    if interpolation not in _RESAMPLE:
        raise invalid("interpolation", interpolation, f"must be one of {', '.join(_RESAMPLE)}")
    return interpolation


FRAME_CLASS_MODES = ("binary", "categorical", "input", "multi_output", "raw", "sparse", None)


def list_frame(frame, directory, x_col, y_col, weight_col, classes, class_mode, split,
               validate_filenames, mask_col=None):  # fmt: skip
    """The files, targets and weights a dataframe describes, as Keras's DataFrameIterator.

    Returns a dict: filenames, filepaths, targets (class indices, multi-hot rows,
    raw values or a list of arrays), class_indices, classes, sample_weight, and
    with `mask_col` maskpaths (its files, relative to `directory` as `x_col`'s).
    """
    if not (hasattr(frame, "columns") and hasattr(frame, "copy")):
        raise invalid("dataframe", type(frame).__name__, "must be a pandas DataFrame")
    frame = frame.copy()
    if classes:
        classes = _check_classes(classes)
    _check_frame(frame, x_col, y_col, weight_col, classes, class_mode)
    if mask_col is not None:
        if mask_col not in frame.columns:
            raise invalid("mask_col", mask_col, "must name a column of the dataframe")
        if not all(isinstance(name, str) for name in frame[mask_col]):
            raise invalid("mask_col", mask_col, "must name a column of file names (strings)")
    if directory is not None:
        directory = os.fspath(directory)
        _check_inside(frame[x_col], directory, x_col)
        if mask_col is not None:
            _check_inside(frame[mask_col], directory, mask_col)
    directory = "" if directory is None else directory
    if validate_filenames:
        paths = frame[x_col].map(lambda name: os.path.join(directory, name))
        valid = paths.map(lambda p: p.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(p))
        if (~valid).sum():
            warnings.warn(
                f'Found {int((~valid).sum())} invalid image filename(s) in x_col="{x_col}". '
                "These filename(s) will be ignored.",
                stacklevel=3,
            )
        frame = frame[valid.astype(bool)]
    labelled = class_mode in ("binary", "categorical", "sparse")
    class_indices = {}
    if labelled:
        frame, names = _keep_classes(frame, y_col, classes)
        class_indices = {name: index for index, name in enumerate(names)}
    if split is not None:
        frame = frame.iloc[int(split[0] * len(frame)) : int(split[1] * len(frame))]
    result = {
        "filenames": frame[x_col].tolist(),
        "class_indices": class_indices,
        "classes": None,
        "sample_weight": frame[weight_col].values if weight_col else None,
    }
    result["filepaths"] = [os.path.join(directory, name) for name in result["filenames"]]
    if mask_col is not None:
        result["maskpaths"] = [os.path.join(directory, name) for name in frame[mask_col]]
    if labelled:
        result["classes"] = [
            [class_indices[c] for c in label] if isinstance(label, (list, tuple))
            else class_indices[label]
            for label in frame[y_col]
        ]  # fmt: skip
        result["targets"] = _encode(result["classes"], len(class_indices))
    elif class_mode == "raw":
        result["targets"] = frame[y_col].values
    elif class_mode == "multi_output":
        result["targets"] = [np.array(frame[column].tolist()) for column in y_col]
    else:
        result["targets"] = None
    return result


def match_masks(directory, filenames, mask_directory):
    """The mask file of each image: the file of `mask_directory` at the image's
    relative path with the same stem (any image extension). A ValueError up front
    names images without a mask, or with several."""
    if not os.path.isdir(mask_directory):
        raise invalid("mask_directory", os.fspath(mask_directory), "must be an existing folder")
    paths, missing, ambiguous = [], [], []
    listings = {}
    for name in filenames:
        folder, file = os.path.split(name)
        stem = os.path.splitext(file)[0]
        if folder not in listings:
            where = os.path.join(mask_directory, folder)
            listings[folder] = sorted(os.listdir(where)) if os.path.isdir(where) else []
        found = [
            candidate
            for candidate in listings[folder]
            if os.path.splitext(candidate)[0] == stem
            and candidate.lower().endswith(IMAGE_EXTENSIONS)
        ]
        if not found:
            missing.append(name)
        elif len(found) > 1:
            ambiguous.append(name)
        else:
            paths.append(os.path.join(mask_directory, folder, found[0]))
    for problem, names in (("have no mask", missing), ("match several masks", ambiguous)):
        if names:
            raise invalid(
                "mask_directory",
                os.fspath(mask_directory),
                f"must hold one mask per image, at the image's relative path and stem; "
                f"{len(names)} image(s) {problem}, such as {names[:3]}",
            )
    return paths


def _check_inside(names, directory, x_col):
    """With a `directory`, file names are relative paths that stay inside it (Keras
    silently serves "../" and absolute paths from anywhere)."""
    outside = [
        name
        for name in names
        if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == os.pardir
    ]
    if outside:
        raise invalid(
            "x_col",
            x_col,
            f"must name files inside directory={directory!r} (relative paths without '..'), "
            f"or pass directory=None for absolute paths; {len(outside)} do not, such as "
            f"{outside[0]!r}",
        )


def _check_frame(frame, x_col, y_col, weight_col, classes, class_mode):
    columns = [x_col, *(y_col if isinstance(y_col, list) else [y_col])]
    if class_mode is None or class_mode == "input":
        columns = [x_col]
    for column in [*columns, *([weight_col] if weight_col else [])]:
        if column not in frame.columns:
            raise invalid(
                "column", column, f"is not a column of the dataframe ({list(frame.columns)})"
            )
    # Keras's exception types and words (code catches them), then kaug's "Received:".
    if class_mode == "multi_output" and not isinstance(y_col, list):
        raise TypeError(
            f'If class_mode="{class_mode}", y_col must be a list. Received '
            f"{type(y_col).__name__}. Received: y_col={y_col!r}"
        )
    if not all(isinstance(name, str) for name in frame[x_col]):
        raise TypeError(
            f"All values in column x_col={x_col} must be strings. Received: x_col={x_col!r}"
        )
    if class_mode in ("binary", "sparse") and not all(isinstance(v, str) for v in frame[y_col]):
        raise TypeError(
            f'If class_mode="{class_mode}", y_col="{y_col}" column values must be strings. '
            f"Received: y_col={y_col!r}"
        )
    if class_mode == "categorical" and not all(
        isinstance(v, (str, list, tuple)) for v in frame[y_col]
    ):
        raise TypeError(
            f'If class_mode="{class_mode}", y_col="{y_col}" column values must be type '
            f"string, list or tuple. Received: y_col={y_col!r}"
        )
    if class_mode == "binary":
        if classes:
            count = len(set(classes))
            found = f"{count} class/es were given"
        else:
            count = frame[y_col].nunique()
            found = f"Found {count} classes"
        if count != 2:
            raise ValueError(
                f'If class_mode="binary" there must be 2 classes. {found}. '
                f"Received: classes={classes!r}"
            )
    if classes and class_mode in ("input", "multi_output", "raw", None):
        warnings.warn(
            f'`classes` will be ignored given the class_mode="{class_mode}"', stacklevel=4
        )
    if weight_col and not np.issubdtype(np.asarray(frame[weight_col]).dtype, np.number):
        raise TypeError(
            f"Column weight_col={weight_col} must be numeric. Received: weight_col={weight_col!r}"
        )


def _keep_classes(frame, y_col, classes):
    """Keras's class filter: given classes (in order) or all, sorted; rows left empty go."""
    frame = frame.copy()
    if classes:
        names = list(dict.fromkeys(classes))

        def keep(label):
            if isinstance(label, (list, tuple)):
                return [c for c in label if c in names] or None
            return label if label in names else None

        frame[y_col] = frame[y_col].apply(keep)
    else:
        names = set()
        for label in frame[y_col]:
            if isinstance(label, (list, tuple)):
                names.update(label)
            else:
                names.add(label)
        names = sorted(names)
    return frame.dropna(subset=[y_col]), names


def _encode(classes, count):
    """Class indices as an int array, or multi-hot rows when any label is a list."""
    if not any(isinstance(c, list) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    rows = np.zeros((len(classes), count), dtype=np.float32)
    for row, label in zip(rows, classes, strict=True):
        row[label if isinstance(label, list) else [label]] = 1.0
    return rows
