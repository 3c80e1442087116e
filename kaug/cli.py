"""The `kaug` command: look at your augmentations before you train.

    kaug preview [SOURCE] [--rotation-range 20 --zoom-range 0.1 ...] [-o grid.png] [--show]
    kaug --version

SOURCE is an .npz/.npy of images, an image file, or a folder of images; without
one, kaug's built-in MNIST digits. Every ImageDataGenerator argument is an option
(`kaug preview --help` lists them), or `--config` loads a saved generator.
"""

import argparse
import inspect
import os
import re
import sys
import zipfile
import zlib

import numpy as np

from kaug import __version__
from kaug.data.files import IMAGE_EXTENSIONS

# Generator arguments a command line cannot give: Python objects, or chosen here.
_NOT_OPTIONS = ("preprocessing_function", "transforms")
# Arguments that take one number or a list of them (Keras's shift and zoom forms).
_NUMBER_LISTS = ("width_shift_range", "height_shift_range", "zoom_range")
_CHOICES = {
    "fill_mode": ("constant", "nearest", "reflect", "wrap"),
    "data_format": ("channels_last", "channels_first"),
    "dtype": ("float16", "float32", "float64"),
    "interpolation_order": (0, 1),
    "zca_regularization": ("covariance", "keras3"),
}
ARRAY_KEYS = ("x_train", "x", "images", "x_test")


class CommandError(Exception):
    """A problem with what the command was given: printed without a traceback."""


def number(text):
    """An int for "3", a float for "0.2", "1e-3" or a fraction such as "1/255"."""
    try:
        if "/" in text:
            numerator, denominator = text.split("/")
            return float(numerator) / float(denominator)
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def generator_docs():
    """{argument: its description} from ImageDataGenerator's docstring."""
    from kaug import ImageDataGenerator

    docs, name = {}, None
    text = inspect.getdoc(ImageDataGenerator)
    args = text.split("Args:", 1)[1].split("\n\n", 1)[0]
    for line in args.splitlines():
        match = re.match(r"    (\w+): (.*)", line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name and line.startswith("        "):
            docs[name] += " " + line.strip()
    return docs


def add_generator_options(parser):
    """One option per ImageDataGenerator argument, named and documented as in Python."""
    from kaug import ImageDataGenerator

    docs = generator_docs()
    group = parser.add_argument_group(
        "generator options (ImageDataGenerator's arguments; default: Keras's defaults)"
    )
    for name, parameter in inspect.signature(ImageDataGenerator).parameters.items():
        if name in _NOT_OPTIONS:
            continue
        flag, default = "--" + name.replace("_", "-"), parameter.default
        help_text = docs.get(name, "").replace("%", "%%")
        if name in ("erosion", "salt_pepper"):
            group.add_argument(flag, nargs="?", const=True, type=number, help=help_text)
        elif default is False:
            group.add_argument(flag, action="store_true", default=None, help=help_text)
        elif name in _NUMBER_LISTS:
            group.add_argument(flag, nargs="+", type=number, metavar="N", help=help_text)
        elif name == "brightness_range":
            group.add_argument(flag, nargs=2, type=number, metavar=("LOW", "HIGH"),
                               help=help_text)  # fmt: skip
        elif name in _CHOICES:
            kind = type(_CHOICES[name][0])
            group.add_argument(flag, choices=_CHOICES[name], type=kind, help=help_text)
        elif name == "device":
            group.add_argument(flag, help=help_text)
        else:
            group.add_argument(flag, type=number, help=help_text)


def generator_arguments(args):
    """The generator options the user gave, as ImageDataGenerator arguments."""
    from kaug import ImageDataGenerator

    given = {}
    for name in inspect.signature(ImageDataGenerator).parameters:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name in _NUMBER_LISTS and len(value) == 1:
            value = value[0]
        given[name] = value
    return given


def parser():
    main = argparse.ArgumentParser(
        prog="kaug", description="kaug: Keras's ImageDataGenerator on whole batches, with torch."
    )
    main.add_argument("--version", action="version", version=f"kaug {__version__}")
    commands = main.add_subparsers(dest="command", metavar="COMMAND")
    preview = commands.add_parser(
        "preview",
        help="draw a grid of augmented samples",
        description="Draw a grid of augmented, standardized samples (look before you train). "
        "Generator options left out keep Keras's defaults.",
    )
    preview.add_argument(
        "source",
        nargs="?",
        help="an .npz/.npy of images (Keras layout), an image file, or a folder of images "
        "(searched recursively); default: kaug's built-in MNIST digits",
    )
    preview.add_argument("-o", "--output", default="preview.png",
                         help="where to write the grid (default: preview.png)")  # fmt: skip
    preview.add_argument("--show", action="store_true", help="open the grid on screen instead")
    preview.add_argument("-n", type=int, default=16, help="samples in the grid (default: 16)")
    preview.add_argument("--seed", type=int, help="seed for the augmentation draws")
    preview.add_argument(
        "--scale", type=int, help="enlarge the grid N times (default: to about 96 pixels an image)"
    )
    preview.add_argument("--config", help="a generator saved with ImageDataGenerator.save")
    preview.add_argument("--key", help="the array of an .npz to use (default: x_train, x, ...)")
    preview.add_argument(
        "--target-size", metavar="HxW", help="resize image files to this (default: the first's)"
    )
    preview.add_argument(
        "--color-mode", choices=tuple(MODES), help="for image files (default: the first one's)"
    )
    add_generator_options(preview)
    return main


# What reading a broken .npy/.npz raises: an empty or truncated file (EOFError), a
# file that is no zip (BadZipFile), a member that fails its CRC or does not inflate
# (BadZipFile, zlib.error), a bad header (ValueError), I/O (OSError).
_ARRAY_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def load_array_file(path, key):
    """(N, H, W, C) images from an .npz or .npy (Keras layout, channels last)."""
    try:
        images = _read_array_file(path, key)
    except _ARRAY_FILE_ERRORS as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    if images is None or images.ndim not in (2, 3, 4):
        raise CommandError(f"{path} holds no images (arrays of rank 2 to 4)")
    if images.ndim == 2:
        images = images[None]
    return images[..., None] if images.ndim == 3 else images


def _read_array_file(path, key):
    """The images array of an .npy, or of an .npz (by `key`, else the first of
    ARRAY_KEYS, else of any array of rank 2 to 4); None when there is none."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    with data:
        if key and key not in data.files:
            raise CommandError(f"{path} has no array {key!r} (it has {data.files})")
        keys = [key] if key else [k for k in ARRAY_KEYS if k in data.files] or data.files
        for name in keys:
            array = data[name]  # each member read once: a corrupt one raises here
            if array.ndim in (2, 3, 4):
                return array
    return None


def image_files(folder):
    found = []
    for root, _, files in sorted(os.walk(folder)):
        found += [os.path.join(root, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS)]  # fmt: skip
    return found


MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _pil_mode(mode):
    """The mode a file's images are shown in: grey stays grey, alpha stays."""
    if mode in ("1", "L", "I", "I;16", "F"):
        return "L"
    return "RGBA" if "A" in mode else "RGB"


def load_image_files(paths, target_size, color_mode):
    """(N, H, W, C) uint8 images from files, all resized like the first (or target_size)."""
    from PIL import Image

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                if not images:
                    mode = MODES[color_mode] if color_mode else _pil_mode(image.mode)
                    size = target_size or (image.height, image.width)
                image = image.convert(mode).resize((size[1], size[0]), Image.NEAREST)
                images.append(np.asarray(image))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            # A decompression bomb (an image beyond PIL's pixel limit) is refused
            # like any file PIL cannot read.
            raise CommandError(f"cannot read image {path}: {error}") from None
    stacked = np.stack(images)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def load_source(args):
    """The images to preview, (N, H, W, C), channels last."""
    target_size = None
    if args.target_size:
        match = re.fullmatch(r"(\d+)x(\d+)", args.target_size)
        if not match or min(int(v) for v in match.groups()) < 1:
            raise CommandError(f"--target-size must look like 28x28, not {args.target_size!r}")
        target_size = tuple(int(v) for v in match.groups())
    if args.source is None:
        from kaug.datasets import load_mnist_sample

        return load_mnist_sample()[0][0][..., None]
    if os.path.isdir(args.source):
        paths = image_files(args.source)[: args.n]
        if not paths:
            raise CommandError(f"{args.source} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return load_image_files(paths, target_size, args.color_mode)
    if not os.path.exists(args.source):
        raise CommandError(f"{args.source}: no such file or folder")
    if args.source.lower().endswith((".npz", ".npy")):
        return load_array_file(args.source, args.key)
    one = load_image_files([args.source], target_size, args.color_mode)
    return np.repeat(one, args.n, axis=0)  # n different augmentations of the one image


def preview(args):
    import kaug

    options = generator_arguments(args)
    if args.n < 1:
        raise CommandError(f"-n must be at least 1, not {args.n}")
    x = load_source(args)
    generator = (kaug.load(args.config, **options) if args.config
                 else kaug.ImageDataGenerator(**options))  # fmt: skip
    if generator.data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    unfitted = (
        (generator.featurewise_center and generator.mean is None)
        or (generator.featurewise_std_normalization and generator.std is None)
        or (generator.zca_whitening and generator.zca_whitening_matrix is None)
    )
    if unfitted:  # statistics from the images shown (a saved generator keeps its own)
        generator.fit(x)
    height, width = x.shape[generator.row_axis], x.shape[generator.col_axis]
    scale = args.scale if args.scale is not None else max(1, 96 // max(height, width))
    path = None if args.show else args.output
    grid = generator.preview(x, n=args.n, path=path, seed=args.seed, scale=scale)
    if args.show:
        from PIL import Image

        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).show()
    else:
        print(f"wrote {path}: {min(args.n, len(x))} samples, {grid.shape[1]}x{grid.shape[0]} px")


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    command = parser()
    args = command.parse_args(argv)
    if args.command is None:
        command.print_help()
        return 2
    try:
        preview(args)
    except (CommandError, ValueError, TypeError, OSError) as error:
        print(f"kaug {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
