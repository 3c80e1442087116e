"""save_to_dir and preview files: no image lost or overwritten, no temp file left."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from kaug import ImageDataGenerator
from kaug.data.io import ImageWriter, save_image


@pytest.fixture(scope="module")
def five(mnist):
    return mnist["x_train"][:5, :, :, None]


def test_names_never_collide_across_epochs_and_loaders(five, tmp_path):
    """5 images x 200 epochs: Keras's 0..9999 hash overwrote ~1% of them."""
    gen = ImageDataGenerator(rotation_range=10, device="cpu")
    loaders = [gen.flow(five, batch_size=5, save_to_dir=tmp_path, save_prefix="aug")
               for _ in range(2)]  # fmt: skip
    for _ in range(100):
        for loader in loaders:
            list(loader.epoch())
    names = os.listdir(tmp_path)
    assert len(names) == 1000
    assert all(name.startswith("aug_") and name.endswith(".png") for name in names)
    prefix, index, token = names[0][: -len(".png")].split("_")
    assert prefix == "aug" and 0 <= int(index) < 5 and len(token) == 8  # Keras's pattern, wider


def test_an_existing_file_is_never_replaced(tmp_path, monkeypatch):
    image = np.zeros((4, 4, 1), np.uint8)
    (tmp_path / "taken.png").write_bytes(b"the user's own file")
    with pytest.raises(FileExistsError):
        save_image(image, tmp_path / "taken.png", overwrite=False)
    assert (tmp_path / "taken.png").read_bytes() == b"the user's own file"
    # The writer draws another name when its first one is taken.
    tokens = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr("kaug.data.io.secrets.token_hex", lambda n: next(tokens))
    writer = ImageWriter(tmp_path, "x")
    writer._write(np.zeros((2, 4, 4, 1), np.uint8), [0, 0])
    assert sorted(os.listdir(tmp_path)) == ["taken.png", "x_0_aaaaaaaa.png", "x_0_bbbbbbbb.png"]


SCRIPT = """
import numpy as np, sys
from kaug import ImageDataGenerator
x = np.random.default_rng(0).uniform(0, 255, (64, 32, 32, 3)).astype("float32")
loader = ImageDataGenerator(rotation_range=10, device="cpu").flow(
    x, batch_size=32, save_to_dir=sys.argv[1])
{body}
"""


@pytest.mark.parametrize(
    "body",
    [
        "next(loader); next(loader)",  # the tutorials' next(), then the script ends
        "for i, batch in enumerate(loader):\n    if i == 1: break",
        "it = iter(loader); next(it); next(it); del it, loader",
    ],
    ids=["next", "break", "garbage-collected"],
)
def test_every_queued_image_is_written_before_the_process_exits(tmp_path, body):
    out = tmp_path / "out"
    script = textwrap.dedent(SCRIPT).format(body=body)
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, "-c", script, str(out)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = os.listdir(out)
    assert len(names) == 64, names
    assert not [name for name in names if name.startswith(".")]  # no temp file left
    for name in names:
        with Image.open(out / name) as image:
            image.load()


def test_files_respect_the_umask(five, tmp_path):
    previous = os.umask(0o027)
    try:
        list(ImageDataGenerator(device="cpu").flow(five, save_to_dir=tmp_path / "saved").epoch())
        ImageDataGenerator(device="cpu").preview(five, path=tmp_path / "grid.png")
    finally:
        os.umask(previous)
    modes = {os.stat(path).st_mode & 0o777 for path in (tmp_path / "saved").iterdir()}
    assert modes == {0o640}
    assert os.stat(tmp_path / "grid.png").st_mode & 0o777 == 0o640


def test_preview_creates_its_folder_and_names_the_path_it_cannot_write(five, tmp_path):
    gen = ImageDataGenerator(device="cpu")
    gen.preview(five, path=tmp_path / "new" / "folder" / "grid.png")
    assert (tmp_path / "new" / "folder" / "grid.png").exists()
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.raises(ValueError, match=r"Received: path=.*a_file/grid.png"):
        gen.preview(five, path=blocked / "grid.png")
