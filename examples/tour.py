"""What the tour scripts import in place of `keras.datasets.mnist` and matplotlib.

The tour scripts (`tour_*.py`) are the code blocks of the classic "image
augmentation with Keras" tutorial on MNIST as written, with only their imports
changed: `from kaug import ImageDataGenerator`, and from here

- `mnist`, whose `load_data()` returns what `keras.datasets.mnist.load_data()`
  returns: the full MNIST with `--data mnist.npz` (or $KAUG_MNIST, or Keras's
  cached download), else kaug's built-in sample of real digits; nothing is
  downloaded;
- `pyplot`, the four matplotlib.pyplot calls the tutorial makes (`subplot`,
  `imshow`, `get_cmap`, `show`), drawing into a PNG instead of a window, so the
  tour runs without matplotlib or a display. `imshow` reads its image with
  `np.asarray`, as matplotlib does (a CUDA tensor fails there too), and scales
  each image to its own min..max, as matplotlib's `imshow` shows a 2-D array;
  `show()` writes the grid to `<out>/<script>.png`, each image about 96 pixels
  wide, and what was plotted to `<out>/<script>.npz` (the values shown and the
  type of each array, for the tests).

Options every tour script takes: `--data PATH`, `--out FOLDER` (default out),
`--seed N` (seeds torch's global generator, from which kaug seeds its draws;
default: a fresh draw each run, as in the tutorial).
"""

import argparse
import pathlib
import sys

import numpy as np
from mnist_data import GRID_PIXELS, find_mnist  # also makes torch Keras's default backend


def _options():
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    parser.add_argument(
        "--data", help="local mnist.npz (default: $KAUG_MNIST, Keras's cache, kaug's sample)"
    )
    parser.add_argument("--out", default="out", help="folder for the grid (default: out)")
    parser.add_argument("--seed", type=int, help="seed for the augmentation draws")
    args = parser.parse_args()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
    return args


ARGS = _options()


class _MNIST:
    """`keras.datasets.mnist`, reading the tour's data source."""

    @staticmethod
    def load_data():
        return find_mnist(ARGS.data)


mnist = _MNIST()


class _Pyplot:
    """The tutorial's pyplot calls, drawn into a grid written by `show()`."""

    def __init__(self, name):
        self.name = name
        self._clear()

    def _clear(self):
        self._layout, self._cell, self._images = (1, 1), 1, {}

    def get_cmap(self, name):
        if name != "gray":
            raise ValueError(f"the tour draws grey images only, not cmap {name!r}")
        return name

    def subplot(self, *args):
        """`subplot(330 + 1 + i)` or `subplot(3, 3, i + 1)`: cell i + 1 of a 3 x 3 grid."""
        if len(args) == 1:
            code = int(args[0])
            args = (code // 100, code // 10 % 10, code % 10)
        rows, columns, index = (int(a) for a in args)
        if not 1 <= index <= rows * columns:
            raise ValueError(f"subplot index {index} outside a {rows} x {columns} grid")
        self._layout, self._cell = (rows, columns), index

    def imshow(self, image, cmap=None):
        kind = f"{type(image).__module__}.{type(image).__name__}"
        array = np.asarray(image)  # matplotlib's conversion: a CUDA tensor fails here
        if array.ndim != 2:
            raise TypeError(f"Invalid shape {array.shape} for image data")
        self._images[self._cell] = (np.array(array, dtype=np.float64), kind)

    def show(self):
        rows, columns = self._layout
        cells = sorted(self._images)
        images = np.stack([self._images[cell][0] for cell in cells])
        height, width = images.shape[1:]
        scale = max(1, GRID_PIXELS // max(height, width))
        pad = 2 * scale
        grid = np.full(
            (rows * (height * scale + pad) + pad, columns * (width * scale + pad) + pad),
            255,
            dtype=np.uint8,
        )
        for cell, image in zip(cells, images, strict=True):
            low, high = image.min(), image.max()
            levels = (image - low) / (high - low) if high > low else np.zeros_like(image)
            shown = np.round(levels * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
            top = pad + (cell - 1) // columns * (height * scale + pad)
            left = pad + (cell - 1) % columns * (width * scale + pad)
            grid[top : top + height * scale, left : left + width * scale] = shown
        from PIL import Image

        path = pathlib.Path(ARGS.out) / f"{self.name}.png"
        Image.fromarray(grid).save(path)
        kinds = [self._images[cell][1] for cell in cells]
        np.savez(path.with_suffix(".npz"), images=images, cells=np.array(cells),
                 kinds=np.array(kinds), scale=scale)  # fmt: skip
        print(
            f"{len(cells)} images shown, values {images.min():.2f} to {images.max():.2f} "
            f"({', '.join(sorted(set(kinds)))}): {path}"
        )
        self._clear()


pyplot = _Pyplot(pathlib.Path(sys.argv[0]).stem)
