"""The `kaug` command: preview grids from every kind of source, clear errors."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kaug
from kaug import ImageDataGenerator
from kaug.cli import main


def grid_of(path):
    with Image.open(path) as image:
        return np.asarray(image)


def test_preview_of_the_built_in_digits_is_the_library_grid(tmp_path, capsys):
    out = tmp_path / "grids" / "digits.png"
    code = main(["preview", "--rotation-range", "30", "--zoom-range", "0.1", "--seed", "3",
                 "-n", "9", "-o", str(out)])  # fmt: skip
    assert code == 0 and "wrote" in capsys.readouterr().out
    x = kaug.datasets.load_mnist_sample()[0][0][:9, :, :, None]
    expected = ImageDataGenerator(rotation_range=30, zoom_range=0.1).preview(
        x, n=9, seed=3, scale=3
    )  # default scale: about 96 pixels an image
    np.testing.assert_array_equal(grid_of(out), expected[..., 0])
    assert grid_of(out).shape == (3 * 30 * 3 + 6, 3 * 30 * 3 + 6)


def test_preview_of_a_folder_of_pngs(tmp_path, mnist):
    for i, image in enumerate(mnist["x_train"][:6]):
        folder = tmp_path / "digits" / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "folder.png"
    assert main(["preview", str(tmp_path / "digits"), "--horizontal-flip", "--scale", "2",
                 "-n", "4", "--seed", "0", "-o", str(out)]) == 0  # fmt: skip
    # The folder's first four files, in sorted order: 0/0.png, 0/2.png, 0/4.png, 1/1.png.
    x = mnist["x_train"][[0, 2, 4, 1], :, :, None]
    expected = ImageDataGenerator(horizontal_flip=True).preview(x, n=4, seed=0, scale=2)
    np.testing.assert_array_equal(grid_of(out), expected[..., 0])


def test_preview_of_an_npz_an_image_and_a_saved_config(tmp_path, rgb_images):
    np.savez(tmp_path / "rgb.npz", images=rgb_images)
    assert main(["preview", str(tmp_path / "rgb.npz"), "--brightness-range", "0.5", "1.5",
                 "--width-shift-range", "3", "-o", str(tmp_path / "a.png")]) == 0  # fmt: skip
    assert grid_of(tmp_path / "a.png").shape[-1] == 3
    Image.fromarray(rgb_images[0].astype(np.uint8)).save(tmp_path / "one.png")
    ImageDataGenerator(rotation_range=40, featurewise_center=True).save(tmp_path / "g.npz")
    assert (
        main(
            [
                "preview",
                str(tmp_path / "one.png"),
                "--config",
                str(tmp_path / "g.npz"),
                "-n",
                "4",
                "--seed",
                "1",
                "--scale",
                "1",
                "-o",
                str(tmp_path / "b.png"),
            ]
        )
        == 0
    )
    loaded = kaug.load(tmp_path / "g.npz")
    four = np.repeat(rgb_images[:1].astype(np.uint8), 4, axis=0)
    loaded.fit(four)  # the file has no statistics: the command fits on what it shows
    expected = loaded.preview(four, n=4, seed=1)
    np.testing.assert_array_equal(grid_of(tmp_path / "b.png"), expected)


def test_featurewise_options_fit_on_the_source(tmp_path):
    assert main(["preview", "--featurewise-std-normalization", "--featurewise-center",
                 "-o", str(tmp_path / "std.png")]) == 0  # fmt: skip


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["missing_folder"], "no such file or folder"),
        (["--rotation-range", "-5"], "Received: rotation_range=-5"),
        (["--fill-mode", "mirror"], None),  # argparse's own "invalid choice"
        (["--zoom-range", "1.5", "0.5"], "lower <= upper"),
        (["--device", "toaster"], "Received: device='toaster'"),
        (["--target-size", "big"], "must look like 28x28"),
        (["-n", "0"], "-n must be at least 1"),
        (["--config", "nothing.npz"], "Received: path='nothing.npz'"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, capsys, arguments, message):
    os.chdir(tmp_path)
    if message is None:
        with pytest.raises(SystemExit) as raised:
            main(["preview", *arguments])
        assert raised.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
        return
    assert main(["preview", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kaug preview: error:") and message in error
    assert "Traceback" not in error and not (tmp_path / "preview.png").exists()


@pytest.mark.parametrize(
    "name,content",
    [
        ("empty.npy", b""),
        ("truncated.npz", None),  # the first half of a real .npz
        ("garbage.npz", b"PK\x03\x04" + bytes(300)),
        ("header.npy", b"\x93NUMPY\x01\x00garbage"),
    ],
)
def test_broken_array_files_are_one_clear_line(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content is None:
        np.savez(path, x=np.zeros((4, 8, 8), np.uint8))
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    assert main(["preview", str(path), "-o", str(tmp_path / "grid.png")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kaug preview: error: cannot read {path}") and error.count("\n") == 1


def test_a_corrupt_member_and_a_decompression_bomb_are_one_clear_line(tmp_path, capsys):
    path = tmp_path / "corrupt.npz"
    np.savez_compressed(path, x=np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8))
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 16] = bytes(16)
    path.write_bytes(bytes(data))
    bomb = tmp_path / "bomb.png"
    Image.new("1", (15000, 15000)).save(bomb)  # more pixels than PIL will decode
    for source, message in ((path, "cannot read"), (bomb, "decompression bomb")):
        assert main(["preview", str(source), "-o", str(tmp_path / "grid.png")]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and "Traceback" not in error


def test_help_lists_every_generator_option(capsys):
    with pytest.raises(SystemExit):
        main(["preview", "--help"])
    text = capsys.readouterr().out
    for name in inspect.signature(ImageDataGenerator).parameters:
        if name not in ("preprocessing_function", "transforms"):
            assert "--" + name.replace("_", "-") in text, name
    assert "degrees of random rotation" in text  # each option carries the argument's doc


def test_the_console_script_and_python_m_run(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    script = os.path.join(os.path.dirname(sys.executable), "kaug")  # pip install's console script
    for command in ([script], [sys.executable, "-m", "kaug"]):
        version = subprocess.run([*command, "--version"], capture_output=True, text=True,
                                 env=env, timeout=120)  # fmt: skip
        assert version.returncode == 0 and version.stdout.strip() == f"kaug {kaug.__version__}"
    out = tmp_path / "m.png"
    result = subprocess.run([sys.executable, "-m", "kaug", "preview", "-n", "4", "-o", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.exists()
