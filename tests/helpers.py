"""What several test modules share: the small CNN they train, and running a script
under a chosen Keras backend (Keras picks its backend once per process)."""

import os
import pathlib
import subprocess
import sys

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


def script_env(**variables):
    """`os.environ` plus `variables`, with this checkout first on PYTHONPATH: a script
    run in a subprocess (whose path starts at its own folder) imports the kaug under
    test, not another installed copy."""
    path = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **variables, "PYTHONPATH": path}


def small_cnn(shape=(28, 28, 1), classes=10, filters=(16,)):
    """Conv-pool blocks of `filters`, then a softmax over `classes`."""
    import keras

    layers = [keras.Input(shape)]
    for count in filters:
        layers += [keras.layers.Conv2D(count, 3, activation="relu"), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(classes, activation="softmax")]
    return keras.Sequential(layers)


def run_under_backend(backend, script, *args):
    """Run `script` with `args` in a fresh process under KERAS_BACKEND=`backend` (no GPU);
    the finished process, its failure shown in the assertion."""
    result = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True, text=True, timeout=600,
        env=script_env(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES=""),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result
