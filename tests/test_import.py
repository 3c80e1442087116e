"""`import kaug` is light: no keras, and it survives a broken torchvision."""

import json
import os
import subprocess
import sys

import pytest


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_works_without_torchvision_and_does_not_import_keras():
    result = run_python(
        "import sys; sys.modules['torchvision'] = None\n"  # any import of it now fails
        "import kaug\n"
        "assert 'keras' not in sys.modules, 'kaug imported keras eagerly'\n"
        "gen = kaug.ImageDataGenerator(rotation_range=10, data_format='channels_last',"
        " dtype='float32', device='cpu')\n"
        "import numpy as np; print(gen.augment(np.zeros((2, 8, 8, 1))).shape)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 8, 8, 1)"


def test_defaults_come_from_keras_config():
    result = run_python(
        "import os; os.environ['KERAS_BACKEND'] = 'torch'\n"
        "import keras; keras.config.set_image_data_format('channels_first')\n"
        "keras.config.set_floatx('float64')\n"
        "import kaug; g = kaug.ImageDataGenerator(device='cpu')\n"
        "print(g.data_format, g.dtype, g.channel_axis)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["channels_first", "float64", "1"]


BACKEND = (
    "import sys, os\n"
    "{hide}"
    "import kaug, keras\n"
    "print(keras.backend.backend(), os.environ.get('KERAS_BACKEND'))"
)


@pytest.mark.parametrize(
    "variable,keras_json,hide_tensorflow,expected",
    [
        (None, None, True, "torch"),  # nothing chosen, Keras's default missing: torch
        (None, {"backend": "tensorflow"}, True, "torch"),  # Keras would fail: torch
        ("jax", None, True, "jax"),  # the user's variable wins
        (None, {"backend": "jax"}, True, "jax"),  # the user's keras.json wins
        (None, None, False, "tensorflow"),  # TensorFlow is there: Keras's default stands
    ],
)
def test_kaug_makes_torch_the_backend_only_where_keras_would_fail(
    tmp_path, variable, keras_json, hide_tensorflow, expected
):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    if variable:
        env["KERAS_BACKEND"] = variable
    if keras_json:
        (tmp_path / "keras.json").write_text(json.dumps(keras_json))
    hide = "sys.modules['tensorflow'] = None\n" if hide_tensorflow else ""
    result = subprocess.run([sys.executable, "-c", BACKEND.format(hide=hide)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[0] == expected
