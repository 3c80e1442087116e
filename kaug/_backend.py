"""Keras's backend when kaug is imported first: torch, where Keras's own choice would fail.

Keras 3 reads `KERAS_BACKEND`, else the "backend" of `$KERAS_HOME/keras.json`
(`~/.keras/keras.json`), else takes tensorflow. kaug's loaders are torch
DataLoaders, fastest under the torch backend, and kaug installs no TensorFlow: so
when the user has chosen nothing (no variable, no keras.json backend other than
Keras's default) and TensorFlow is not installed, `import kaug` sets
`KERAS_BACKEND=torch` before Keras is imported. Any choice of the user's wins.
"""

import importlib.util
import json
import os
import sys


def _keras_json_backend():
    """The backend keras.json names, or None (no file, unreadable, no key)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as file:
            backend = json.load(file).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def default_to_torch():
    """Set KERAS_BACKEND=torch if the user chose no backend and Keras's default
    (tensorflow) is not installed; returns whether it did."""
    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return False
    if _keras_json_backend() not in (None, "tensorflow") or _installed("tensorflow"):
        return False
    os.environ["KERAS_BACKEND"] = "torch"
    return True
