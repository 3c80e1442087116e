"""`save` and `load`: a generator's configuration and fitted statistics in one file.

One `.npz` (a JSON config plus the statistics' arrays, no pickle). Loading never
runs code the file names (Keras's `safe_mode`): transforms and functions resolve
through kaug's registries only, and every value goes through the constructor's
checks.
"""

import inspect
import json
import os
import warnings
import zipfile
import zlib

import numpy as np

from kaug._checks import invalid
from kaug.stats import STATISTICS
from kaug.transforms.base import safe_mode_scope


def save(generator, path):
    """Write `generator`'s config (without the device and the preprocessing_function)
    and fitted statistics to `path`."""
    config = generator._config()
    config.pop("device")
    if config.pop("preprocessing_function") is not None:
        warnings.warn(
            "`preprocessing_function` is not saved: pass it to `kaug.load(path, "
            "preprocessing_function=...)`.",
            stacklevel=3,
        )
    arrays = {
        name: getattr(generator, name)
        for name in STATISTICS
        if getattr(generator, name) is not None
    }
    with open(path, "wb") as file:
        np.savez(file, config=np.array(json.dumps(config)), **arrays)


def load(path, safe_mode=True, **overrides):
    """An ImageDataGenerator saved with `save`, fitted statistics included.

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
    from kaug.image_data_generator import ImageDataGenerator

    config, statistics = read_saved(path)
    arguments = inspect.signature(ImageDataGenerator).parameters
    for key in (*config, *overrides):
        if key not in arguments:
            raise invalid("config", key, "is not an ImageDataGenerator argument")
    with safe_mode_scope(safe_mode):
        generator = ImageDataGenerator.from_config({**config, **overrides})
    for name, value in statistics.items():
        setattr(generator, name, value)  # checked like hand-set statistics
    return generator


def read_saved(path):
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
