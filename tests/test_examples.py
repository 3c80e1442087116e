"""Every example runs end to end on real MNIST and says what it did."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MNIST_SAMPLE
from tests.helpers import script_env

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
TOUR = sorted(EXAMPLES.glob("tour_*.py"))


def run_example(script, tmp_path, *args):
    """Run an example in `tmp_path` (its --out), on kaug's MNIST sample; its stdout."""
    mnist = MNIST_SAMPLE
    env = script_env(KAUG_MNIST=str(mnist), KERAS_BACKEND="torch")
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), *args],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_tour_has_its_seven_sections():
    assert len(TOUR) == 7


# -- what the tutorial's reader sees in each grid ----------------------------------------


@pytest.fixture(scope="module")
def train_digits(mnist):
    return mnist["x_train"].astype(np.float64)


def minmax_levels(image):
    """An image as the tour's pyplot.imshow shows it: scaled to its own min..max."""
    low, high = image.min(), image.max()
    return np.round((image - low) / (high - low) * 255) if high > low else np.zeros_like(image)


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def first_nine(shown, digits, tmp_path):
    """The first nine training digits, unchanged."""
    np.testing.assert_array_equal(shown, digits[:9])


def featurewise(shown, digits, tmp_path):
    """Nine training digits standardized with the dataset's mean and std: the pictures
    look like the digits; the values have mean about 0 and std about 1 overall."""
    mean, std = digits.mean(), digits.std()
    restored = np.round(shown * (std + 1e-6) + mean)
    assert np.abs(shown * (std + 1e-6) + mean - restored).max() < 0.01
    known = {digit.astype(np.uint8).tobytes() for digit in digits}
    assert all(image.astype(np.uint8).tobytes() in known for image in restored)
    assert shown.min() == pytest.approx(-mean / std, rel=1e-4)


def zca(shown, digits, tmp_path):
    """Nine training digits whitened by the tutorial's ZCA (U diag(1/sqrt(lambda+eps)) U^T
    of the covariance, after the featurewise centering zca_whitening implies): values
    within that form's range on MNIST (Keras 3's form: ~220 on every digit) and flat
    borders, so the grid shows outlines."""
    flat = digits.reshape(len(digits), -1)
    centred = flat - flat.mean()
    eigenvalues, u = np.linalg.eigh(centred.T @ centred / len(flat))
    whitened = centred @ ((u / np.sqrt(np.clip(eigenvalues, 0, None) + 1e-6)) @ u.T)
    for image in shown.reshape(9, -1):
        distance = np.abs(whitened - image).max(axis=1)
        assert distance.min() < 1e-3 * np.abs(image).max()  # some digit, whitened
    assert np.abs(shown).max() < np.abs(whitened).max() + 1e-3 < 100  # 91.7 on the sample
    frame = np.ones((28, 28), bool)
    frame[4:24, 4:24] = False
    assert np.abs(shown[:, frame]).mean() < 0.5  # flat borders: 0.2 (Keras 3's form: 44)


def radial_profile(images):
    """Ink per distance from the centre (1-pixel rings): the same for a rotated digit."""
    side = images.shape[-1]
    rows, columns = np.mgrid[:side, :side]
    ring = np.minimum(np.hypot(rows - (side - 1) / 2, columns - (side - 1) / 2), 19).astype(int)
    profile = np.stack([(images * (ring == r)).sum((-2, -1)) for r in range(20)], -1)
    return profile / profile.sum(-1, keepdims=True)


def rotation(shown, digits, tmp_path):
    """Nine training digits each rotated by up to 90 degrees: found by the ink's
    radial profile (rotation keeps it), then the angle that matches best."""
    from scipy import ndimage

    profiles, angles = radial_profile(digits), []
    for image in shown:
        candidates = np.argsort(np.abs(profiles - radial_profile(image)).sum(1))[:20]
        score, angle = max(
            (correlation(ndimage.rotate(digits[c], a, reshape=False, order=1), image), a)
            for c in candidates
            for a in range(-90, 91, 2)
        )
        assert score > 0.95  # 0.997 or more measured
        angles.append(angle)
    assert sum(abs(a) >= 6 for a in angles) >= 6, angles  # rotated, most visibly


def shifts(shown, digits, tmp_path):
    """Nine training digits each shifted by up to 20 % (5.6 pixels) along each axis:
    found by the magnitude of their spectrum (a shift keeps it), then the shift that
    matches best."""
    spectra = np.fft.rfft2(digits, s=(56, 56))
    magnitudes = np.abs(spectra).reshape(len(digits), -1)
    magnitudes /= np.linalg.norm(magnitudes, axis=1, keepdims=True)
    near = np.r_[0:8, 49:56]  # shifts -7..7 of the padded cross-correlation
    offsets, moved = np.r_[0:8, -7:0], []
    for image in shown:
        spectrum = np.fft.rfft2(image, s=(56, 56))
        magnitude = np.abs(spectrum).ravel() / np.linalg.norm(np.abs(spectrum))
        candidates = np.argsort(-(magnitudes @ magnitude))[:20]
        cross = np.fft.irfft2(np.conj(spectra[candidates]) * spectrum, s=(56, 56))
        cross = cross[:, near][:, :, near] / np.sqrt(
            (digits[candidates] ** 2).sum((1, 2)) * (image**2).sum()
        )[:, None, None]
        _, row, column = np.unravel_index(np.argmax(cross), cross.shape)
        assert cross.max() > 0.9  # 0.94 or more measured (bilinear resampling blurs)
        dy, dx = offsets[row], offsets[column]
        assert max(abs(dy), abs(dx)) <= 6
        moved.append(abs(dy) + abs(dx) >= 2)
    assert sum(moved) >= 6


def flips(shown, digits, tmp_path):
    """Nine training digits, each as it is or flipped left-right and/or upside down."""
    forms = {
        name: {flip(d).tobytes() for d in digits}
        for name, flip in [("none", lambda d: d), ("horizontal", lambda d: d[:, ::-1]),
                           ("vertical", lambda d: d[::-1]), ("both", lambda d: d[::-1, ::-1])]
    }  # fmt: skip
    found = [[name for name, known in forms.items() if image.tobytes() in known] for image in shown]
    assert all(found)  # each image is a training digit in one of the four forms
    assert sum("none" not in names for names in found) >= 3  # about 3/4 flipped


def save_to_dir(shown, digits, tmp_path):
    """Nine training digits, unchanged, and the same nine saved as aug_*.png in ./images."""
    known = {digit.tobytes() for digit in digits}
    assert all(image.tobytes() in known for image in shown)
    files = sorted((tmp_path / "images").iterdir())
    assert len(files) == 9 and all(f.name.startswith("aug_") and f.suffix == ".png" for f in files)
    saved = []
    for path in files:
        with Image.open(path) as image:
            saved.append(np.asarray(image, dtype=np.float64).reshape(28, 28))
    levels = [minmax_levels(image) for image in shown]
    for image in saved:  # Keras's save scaling truncates where the grid rounds: 1 level
        assert min(np.abs(image - level).max() for level in levels) <= 1


TOUR_CHECKS = [first_nine, featurewise, zca, rotation, shifts, flips, save_to_dir]


@pytest.mark.parametrize(
    "script,check", list(zip(TOUR, TOUR_CHECKS, strict=True)), ids=[p.stem for p in TOUR]
)
def test_tour_example_shows_what_the_tutorial_shows(script, check, tmp_path, train_digits):
    """Each tour script, the tutorial's code block with only the imports changed, runs
    and draws its 3 x 3 grid from numpy batches; the grid holds what the tutorial's
    reader is shown there."""
    stdout = run_example(script, tmp_path, "--seed", "0")
    record = np.load(tmp_path / f"{script.stem}.npz")
    assert list(record["cells"]) == list(range(1, 10))
    assert set(record["kinds"]) == {"numpy.ndarray"}, stdout  # what the loop got
    shown = record["images"]
    with Image.open(tmp_path / f"{script.stem}.png") as image:
        grid = np.asarray(image, dtype=np.float64)
    scale = int(record["scale"])
    assert scale * 28 >= 84 and grid.shape[1] >= 3 * 28 * scale  # readable, as kaug preview's
    step = 28 * scale + 2 * scale
    for cell, image in enumerate(shown):  # the picture is the values plotted
        top, left = 2 * scale + cell // 3 * step, 2 * scale + cell % 3 * step
        drawn = grid[top : top + 28 * scale : scale, left : left + 28 * scale : scale]
        np.testing.assert_array_equal(drawn, minmax_levels(image))
    check(shown, train_digits, tmp_path)


@pytest.mark.slow
def test_the_main_job_trains_on_the_built_in_digits(tmp_path):
    """The README's run command, as a fresh offline clone runs it: kaug's own digits."""
    env = script_env(KERAS_HOME=str(tmp_path / "no_keras_cache"))
    env.pop("KAUG_MNIST", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_mnist.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "train_mnist.json").read_text())
    assert report["train_images"] == 10000 and report["test_images"] == 2000
    assert report["accuracy"] >= 0.95  # 0.964 measured (5 epochs, 2-core CPU)
    assert len(report["seconds_per_epoch"]) == 5
    with Image.open(tmp_path / "train_mnist_augmented.png") as image:
        grid = np.asarray(image)
    # 16 digits, 4 x 4, each drawn about 96 pixels wide as `kaug preview` draws them (was 28)
    assert grid.shape[:2] == (4 * (84 + 6) + 6,) * 2 and len(np.unique(grid)) > 2


@pytest.mark.slow
def test_custom_augmentation_example(tmp_path):
    run_example(EXAMPLES / "custom_augmentation.py", tmp_path, "--epochs", "1", "--limit", "2000")
    report = json.loads((tmp_path / "custom_augmentation.json").read_text())
    assert report["train_images"] == 2000
    assert set(report["accuracy"]) == {"no extras", "erosion", "salt-and-pepper"}
    for scores in report["accuracy"].values():
        assert set(scores) == {"clean", "noisy", "eroded"}
        assert all(0.1 < value <= 1 for value in scores.values())  # chance is 0.1
    assert (tmp_path / "custom_augmentation_noisy.png").exists()
    assert (tmp_path / "custom_augmentation_eroded.png").exists()


# The full Fashion-MNIST beside the checkout when there is one; else kaug's own sample.
SHARED_FASHION_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared/data/fashion_mnist.npz"


@pytest.mark.slow
def test_fashion_mnist_trains_with_and_without_randaugment_mixup(tmp_path):
    args = ["--epochs", "3", "--limit", "2000"]
    if SHARED_FASHION_MNIST.exists():
        args += ["--data", str(SHARED_FASHION_MNIST)]
    run_example(EXAMPLES / "train_fashion_mnist.py", tmp_path, *args)
    report = json.loads((tmp_path / "train_fashion_mnist.json").read_text())
    assert report["train_images"] == 2000 and report["epochs"] == 3
    assert report["test_images"] == (10000 if SHARED_FASHION_MNIST.exists() else 1000)
    assert set(report["runs"]) == {"baseline", "randaugment_mixup"}
    for run in report["runs"].values():
        assert 0.5 < run["accuracy"] <= 1  # chance is 0.1
        assert len(run["seconds_per_epoch"]) == 3
    with Image.open(tmp_path / "train_fashion_mnist_augmented.png") as image:
        assert len(np.unique(np.asarray(image))) > 2
