"""Listing image files: Keras's order, without Keras's hangs and silent surprises."""

import os

import numpy as np
import pandas as pd
import pytest
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator
from PIL import Image

from kaug import ImageDataGenerator
from kaug.data.files import list_class_folders


def png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


@pytest.fixture
def looped(tmp_path):
    """Two classes; class "a" holds a link to itself and one to its parent."""
    for name in ("a", "b"):
        png(tmp_path / name / "one.png")
        png(tmp_path / name / "deep" / "two.png")
    os.symlink(tmp_path / "a", tmp_path / "a" / "self")
    os.symlink(tmp_path, tmp_path / "a" / "deep" / "root")
    return tmp_path


def test_symlink_loops_are_entered_once(looped):
    names, files, labels = list_class_folders(looped, follow_links=True)
    assert names == ["a", "b"]
    # Inside "a": its files, then the link to the root lists "b" (and "a" is not
    # entered again); "a/self" points back at "a" and is skipped.
    assert files == [
        "a/one.png",
        "a/deep/two.png",
        "a/deep/root/b/one.png",
        "a/deep/root/b/deep/two.png",
        "b/one.png",
        "b/deep/two.png",
    ]
    assert labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert list_class_folders(looped, follow_links=False)[1] == [
        "a/one.png", "a/deep/two.png", "b/one.png", "b/deep/two.png"
    ]  # fmt: skip


def test_listing_matches_keras_without_loops(tmp_path):
    for name in ("cats", "dogs"):
        for i in range(3):
            png(tmp_path / name / f"sub{i % 2}" / f"{i}.png")
            png(tmp_path / name / f"{i}.JPG")
    os.symlink(tmp_path / "cats" / "sub0", tmp_path / "dogs" / "linked")
    for follow in (False, True):
        keras = KerasGenerator().flow_from_directory(str(tmp_path), follow_links=follow)
        kaug = ImageDataGenerator(device="cpu").flow_from_directory(tmp_path, follow_links=follow)
        assert kaug.filenames == keras.filenames and list(kaug.classes) == list(keras.classes)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_never_blocks(tmp_path):
    png(tmp_path / "a" / "good.png")
    os.mkfifo(tmp_path / "a" / "pipe.png")
    names, files, _ = list_class_folders(tmp_path)
    assert files == ["a/good.png"]
    frame = pd.DataFrame({"filename": ["a/good.png", "a/pipe.png"], "class": ["x", "x"]})
    gen = ImageDataGenerator(device="cpu")
    loader = gen.flow_from_dataframe(frame, tmp_path, target_size=(8, 8), num_workers=0,
                                     validate_filenames=False)  # fmt: skip
    with pytest.warns(UserWarning, match=r"pipe.png \(OSError: .* is not a regular file\)"):
        batches = list(loader.epoch())  # a blocking open() would hang here
    assert sum(len(x) for x, _ in batches) == 1


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd.png", "a/../../outside.png"])
def test_dataframe_paths_stay_inside_their_directory(tmp_path, name):
    png(tmp_path / "outside.png")
    png(tmp_path / "data" / "a" / "in.png")
    frame = pd.DataFrame({"filename": ["a/in.png", name], "class": ["x", "y"]})
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match=r"must name files inside directory=.*Received: x_col="):
        gen.flow_from_dataframe(frame, tmp_path / "data", validate_filenames=False)
    absolute = pd.DataFrame({"filename": [str(tmp_path / "outside.png")], "class": ["x"]})
    assert gen.flow_from_dataframe(absolute, None, target_size=(8, 8)).n == 1  # no directory


@pytest.mark.parametrize("classes", [["a", "a"], ["a", "b", "a"], "ab", [1, 2]])
def test_classes_must_be_distinct_names(tmp_path, classes):
    png(tmp_path / "a" / "1.png")
    png(tmp_path / "b" / "1.png")
    gen = ImageDataGenerator(device="cpu")
    with pytest.raises(ValueError, match="Received: classes="):
        gen.flow_from_directory(tmp_path, classes=classes)
    frame = pd.DataFrame({"filename": ["a/1.png", "b/1.png"], "class": ["a", "b"]})
    with pytest.raises(ValueError, match="Received: classes="):
        gen.flow_from_dataframe(frame, tmp_path, classes=classes)


def test_a_dangling_link_is_listed_as_keras_lists_it_and_reported_when_read(tmp_path):
    """Keras counts a link to a missing file; kaug lists it too (the same filenames),
    and the loader names it when it cannot be read, instead of dropping it unsaid."""
    for i in range(3):
        png(tmp_path / "a" / f"{i}.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "a" / "9_dangling.png")
    keras = KerasGenerator().flow_from_directory(str(tmp_path), target_size=(8, 8))
    loader = ImageDataGenerator(device="cpu").flow_from_directory(
        tmp_path, target_size=(8, 8), num_workers=0, batch_size=8
    )
    assert loader.filenames == keras.filenames and len(loader.filenames) == 4
    with pytest.warns(UserWarning, match=r"(?s)Skipped 1 unreadable.*9_dangling.png"):
        batches = list(loader.epoch())
    assert sum(len(x) for x, _ in batches) == 3
