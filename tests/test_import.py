"""`import kaug` is light: no keras, and it survives a broken torchvision."""

import subprocess
import sys


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
