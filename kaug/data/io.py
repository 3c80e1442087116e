"""Images to disk: 8-bit conversion, preview grids and the save_to_dir writer."""

import math
import os
import queue
import secrets
import tempfile
import threading

import numpy as np
import torch

from kaug._checks import invalid


def to_uint8_images(batch):
    """(B, C, H, W) floats -> (B, H, W, C) uint8, each image min-max scaled to 0..255.

    Keras's `array_to_img(x, scale=True)`, for a whole batch on its device.
    """
    batch = batch.permute(0, 2, 3, 1)
    if batch.shape[0] == 0:
        return batch.to(torch.uint8)
    flat = batch.reshape(batch.shape[0], -1)
    low = flat.amin(1).view(-1, 1, 1, 1)
    span = flat.amax(1).view(-1, 1, 1, 1) - low
    span = torch.where(span != 0, span, torch.ones_like(span))
    return ((batch - low) / span * 255).to(torch.uint8)


def _pil_image(array):
    from PIL import Image

    channels = array.shape[-1]
    if channels == 1:
        return Image.fromarray(array[..., 0], "L")
    if channels in (3, 4):
        return Image.fromarray(array, "RGB" if channels == 3 else "RGBA")
    raise invalid("x", f"images with {channels} channels", "must have 1, 3 or 4 channels to save")


def image_grid(images, columns=None, padding=2):
    """Tile (N, H, W, C) uint8 images into one (H', W', C) uint8 grid."""
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        255,
        dtype=np.uint8,
    )
    for i, image in enumerate(images):
        top = padding + (i // columns) * (height + padding)
        left = padding + (i % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def pil_format(save_format):
    """PIL's format name for an extension such as "png" or "jpg"."""
    from PIL import Image

    formats = Image.registered_extensions()
    name = formats.get("." + str(save_format).lower())
    if name is None or name not in Image.SAVE:
        raise invalid("save_format", save_format, "must be an image format PIL can write")
    return name


def _umask():
    """The process's umask (files kaug writes get 0o666 less it, like open())."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no portable read-only call before Python 3.13
    os.umask(mask)
    return mask


def save_image(array, path, save_format=None, overwrite=True):
    """Write one (H, W, C) uint8 image atomically: a temporary name, then a rename.

    With `overwrite=False` an existing file at `path` is never replaced:
    FileExistsError is raised instead (the image is published with a hard link,
    or, where the file system has none, into a name reserved with O_EXCL).
    """
    directory, name = os.path.split(os.fspath(path))
    save_format = save_format or pil_format(os.path.splitext(name)[1].lstrip("."))
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory or ".")
    try:
        with os.fdopen(handle, "wb") as file:
            _pil_image(array).save(file, format=save_format)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0o600 would ignore the umask
        if overwrite:
            os.replace(temporary, path)
        else:
            _publish_new(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def save_preview(grid, path):
    """Write a preview grid at `path`, in the format its extension names, creating
    missing folders; a bad path is refused by name."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise invalid("path", path, "must name an image file such as 'grid.png', not a folder")
    try:
        save_format = pil_format(os.path.splitext(path)[1].lstrip("."))
    except ValueError:
        raise invalid(
            "path", path, "must end in an image extension PIL writes, such as .png or .jpg"
        ) from None
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        save_image(grid, path, save_format)
    except OSError as error:
        raise invalid("path", path, f"must be a writable file ({error})") from None


def _publish_new(temporary, path):
    """Give the finished file `temporary` the name `path`, which must not exist yet."""
    try:
        os.link(temporary, path)  # fails with FileExistsError, never overwrites
    except FileExistsError:
        raise
    except OSError:  # no hard links here: reserve the name, then fill it atomically
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(temporary, path)


# A writer that has had nothing to do for this long ends its thread (a new one
# starts with the next batch); the interpreter waits for a running one at exit.
_IDLE_SECONDS = 0.5


class ImageWriter:
    """Writes served batches to a folder on a background thread.

    Files are named like Keras's, `{prefix}_{index}_{hash}.{format}`, with a
    wider hash (8 hex digits, not Keras's 0..9999), and are never overwritten: a
    name that exists is drawn again, so no image of any epoch or loader is lost.
    Each is written atomically with the umask's permissions. The training loop
    never waits on the disk: `submit` only queues a uint8 batch still on the
    device. The thread is not a daemon: images still queued when the loop stops
    (a `break`, `next(loader)` then exit) are written before the process ends.
    A failed write is raised by the next `submit` or `flush`, never dropped.

    Args:
        directory: existing or creatable, writable folder.
        prefix: file name prefix.
        save_format: "png", "jpeg", ... (anything PIL writes).
    """

    def __init__(self, directory, prefix="", save_format="png"):
        self.format = pil_format(save_format)
        self.extension = str(save_format).lower()
        self.directory = os.fspath(directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as error:
            raise invalid(
                "save_to_dir", directory, f"must be a writable folder ({error})"
            ) from error
        self.prefix = str(prefix)
        if os.sep in self.prefix or (os.altsep and os.altsep in self.prefix):
            raise invalid("save_prefix", prefix, "must be a file name prefix, without folders")
        self._queue = queue.Queue(maxsize=64)
        self._lock = threading.Lock()  # guards starting and ending the thread
        self._error = None
        self._thread = None

    def submit(self, images, indices):
        """Queue (B, H, W, C) uint8 images and their (B,) sample indices."""
        self.check()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kaug-image-writer")
                self._thread.start()
            # Under the lock: the thread cannot decide the queue is idle and end
            # between this check and the put. A full queue does not deadlock, as
            # the thread only takes the lock once the queue is empty.
            self._queue.put((images, indices))

    def flush(self):
        """Wait until everything submitted is on disk; raise the first write error."""
        self._queue.join()
        self.check()

    close = flush

    def check(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise OSError(f"kaug could not save an augmented image to {self.directory}") from error

    def _run(self):
        while True:
            try:
                images, indices = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                if self._error is None:
                    self._write(images.cpu().numpy(), indices.cpu().tolist())
            except Exception as error:  # reported to the training loop by check()
                self._error = error
            finally:
                self._queue.task_done()

    def _write(self, images, indices):
        for image, index in zip(images, indices, strict=True):
            while True:
                name = f"{self.prefix}_{index}_{secrets.token_hex(4)}.{self.extension}"
                try:
                    save_image(image, os.path.join(self.directory, name), self.format, False)
                    break
                except FileExistsError:
                    continue  # drawn before: draw another name
