"""fit() on data that never has to be in memory at once: iterables and loaders."""

import numpy as np
import pytest

from kaug import ImageDataGenerator

FIT = dict(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255)


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist["x_train"][:20000, :, :, None]


def fitted(source, **kwargs):
    gen = ImageDataGenerator(**{**FIT, **kwargs}, device="cpu")
    gen.fit(source)
    return gen


@pytest.mark.filterwarnings("ignore:This ImageDataGenerator specifies `zca_whitening`")
def test_streamed_chunks_equal_the_in_memory_fit(digits):
    whole = fitted(digits, zca_whitening=True, zca_epsilon=0.1)
    chunks = (digits[i : i + 1000] for i in range(0, len(digits), 1000))
    streamed = fitted(chunks, zca_whitening=True, zca_epsilon=0.1)
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-9)
    scale = np.abs(whole.zca_whitening_matrix).max()
    assert np.abs(streamed.zca_whitening_matrix - whole.zca_whitening_matrix).max() < 1e-6 * scale
    labelled = ((digits[i : i + 500], None) for i in range(0, 5000, 500))  # (x, y) tuples
    np.testing.assert_allclose(fitted(labelled).mean, fitted(digits[:5000]).mean, rtol=1e-9)


def test_fit_on_a_loader_uses_its_raw_images(digits, capsys):
    gen = ImageDataGenerator(rotation_range=90, **FIT, device="cpu")
    gen.fit(gen.flow(digits[:4000], batch_size=100))  # 40 batches: a progress bar
    reference = fitted(digits[:4000])
    np.testing.assert_allclose(gen.mean, reference.mean, rtol=1e-9)
    np.testing.assert_allclose(gen.std, reference.std, rtol=1e-9)
    assert "40/40" in capsys.readouterr().out


def test_fit_refuses_an_empty_stream():
    with pytest.raises(ValueError, match="must yield at least one batch"):
        ImageDataGenerator(featurewise_center=True, device="cpu").fit(iter([]))
