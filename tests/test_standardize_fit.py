"""standardize() and fit() against Keras's legacy generator."""

import warnings

import numpy as np
import pytest
import torch
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator

from kaug import ImageDataGenerator
from kaug import load as kaug_load
from kaug.stats import StatsAccumulator

# kaug's ZCA defaults to Keras 2.0's regularisation; Keras 3's is the parity reference.
KERAS3_ZCA = {"zca_regularization": "keras3"}


def pair(kaug_only=None, **kwargs):
    """A Keras generator and a kaug generator with the same arguments (and kaug's
    own `kaug_only` ones)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kaug = ImageDataGenerator(**kwargs, **(kaug_only or {}), device="cpu")
        return KerasGenerator(**kwargs), kaug


def keras_standardize_each(keras, images):
    """What Keras's flow does: standardize one image at a time (on a copy)."""
    return np.stack([keras.standardize(image.copy()) for image in images])


@pytest.fixture(scope="module")
def train(mnist):
    return mnist["x_train"][:10000, :, :, None].astype("float32")


@pytest.fixture(scope="module")
def test_digits(mnist):
    return mnist["x_test"][:32, :, :, None].astype("float32")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(rescale=1 / 255),
        dict(samplewise_center=True),
        dict(samplewise_center=True, samplewise_std_normalization=True, rescale=1 / 255),
        dict(preprocessing_function=lambda im: np.sqrt(im) - im.mean(), rescale=0.5),
    ],
    ids=["rescale", "samplewise_center", "samplewise_std", "preprocessing_function"],
)
def test_standardize_matches_keras_per_image(digits, kwargs):
    keras, kaug = pair(**kwargs)
    expected = keras_standardize_each(keras, digits)
    np.testing.assert_allclose(kaug.standardize(digits), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kaug.standardize(digits[3]), expected[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_fit_featurewise_matches_keras(train, test_digits, rgb_images, data_format):
    for data, fresh in [(train, test_digits), (rgb_images[:12], rgb_images[12:])]:
        if data_format == "channels_first":
            data, fresh = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (data, fresh))
        keras, kaug = pair(
            featurewise_center=True, featurewise_std_normalization=True,
            rescale=1 / 255, data_format=data_format,
        )  # fmt: skip
        keras.fit(data)
        kaug.fit(data)
        assert kaug.mean.shape == keras.mean.shape and kaug.std.shape == keras.std.shape
        # kaug accumulates in float64; Keras's float32 std is off by up to ~1e-4.
        axes = (0, 2, 3) if data_format == "channels_first" else (0, 1, 2)
        exact = data.astype(np.float64) * (1 / 255)
        np.testing.assert_allclose(kaug.mean.ravel(), exact.mean(axes), rtol=1e-6)
        np.testing.assert_allclose(kaug.std.ravel(), exact.std(axes), rtol=1e-6)
        np.testing.assert_allclose(kaug.mean, keras.mean, rtol=1e-5)
        np.testing.assert_allclose(kaug.std, keras.std, rtol=2e-4)
        np.testing.assert_allclose(
            kaug.standardize(fresh), keras_standardize_each(keras, fresh), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("epsilon", [1e-1, 1e-2, 1e-3])
def test_fit_zca_matches_keras_on_mnist(train, test_digits, epsilon):
    """float64 X^T X + eigh agrees with Keras's SVD, also where float32 would not."""
    keras, kaug = pair(KERAS3_ZCA, zca_whitening=True, zca_epsilon=epsilon, rescale=1 / 255)
    keras.fit(train)
    kaug.fit(train)
    ref = keras.zca_whitening_matrix
    error = np.abs(kaug.zca_whitening_matrix - ref).max() / np.abs(ref).max()
    assert error < 1e-5
    # The whitened data against the float64 product of the same centred input:
    # kaug multiplies in float64; Keras's float32 product loses ~1e-5 / epsilon.
    out, expected = kaug.standardize(test_digits), keras_standardize_each(keras, test_digits)
    centred = (test_digits * np.float32(1 / 255) - kaug.mean).reshape(len(test_digits), -1)
    exact = centred.astype(np.float64) @ kaug.zca_whitening_matrix.astype(np.float64)
    scale = np.abs(exact).max()
    assert np.abs(out.reshape(exact.shape) - exact).max() / scale < 1e-6
    assert np.abs(out - expected).max() / scale < 2e-6 / epsilon


def test_fit_zca_matches_keras_on_rgb(rgb_images):
    images = np.concatenate([rgb_images[:, ::2, ::2]] * 20)  # 320 images, D = 768
    images = images + np.random.default_rng(0).normal(0, 5, images.shape).astype("float32")
    keras, kaug = pair(KERAS3_ZCA, zca_whitening=True, zca_epsilon=1e-2)
    keras.fit(images)
    kaug.fit(images)
    ref = keras.zca_whitening_matrix
    assert np.abs(kaug.zca_whitening_matrix - ref).max() / np.abs(ref).max() < 1e-5


def test_fit_zca_with_fewer_images_than_features(rgb_images):
    """N < D: keep min(N, D) components, as Keras's thin SVD does."""
    images = rgb_images[:10, ::4, ::4]  # 10 images, D = 192
    keras, kaug = pair(KERAS3_ZCA, zca_whitening=True, zca_epsilon=1e-1)
    keras.fit(images)
    kaug.fit(images)
    np.testing.assert_allclose(
        kaug.zca_whitening_matrix, keras.zca_whitening_matrix, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("regularization", ["covariance", "keras3"])
def test_default_epsilon_zca_on_mnist_is_finite(train, test_digits, regularization):
    kaug = pair({"zca_regularization": regularization}, zca_whitening=True)[1]
    kaug.fit(train[:2000])
    assert np.all(np.isfinite(kaug.zca_whitening_matrix))
    assert np.all(np.isfinite(kaug.standardize(test_digits)))


def covariance_zca(x, epsilon):
    """Keras 2.0's ZCA matrix of flat data x (the tutorials' form), in numpy: the
    eigendecomposition of the covariance, epsilon added to every eigenvalue."""
    centred = x - x.mean()
    sigma = centred.T @ centred / len(x)
    eigenvalues, u = np.linalg.eigh(sigma)
    return (u / np.sqrt(np.clip(eigenvalues, 0, None) + epsilon)) @ u.T


@pytest.mark.parametrize("count", [400, 60], ids=["more images than pixels", "fewer"])
@pytest.mark.parametrize("epsilon", [1e-6, 1e-2])
def test_default_zca_is_the_covariance_form(train, count, epsilon):
    """W = U diag(1 / sqrt(lambda + eps)) U^T over all D eigenpairs of X^T X / n."""
    x = train[:count, ::2, ::2] / 255  # D = 196 pixels; one channel: one mean
    kaug = pair(zca_whitening=True, zca_epsilon=epsilon)[1]
    assert kaug.zca_regularization == "covariance"
    kaug.fit(x)
    expected = covariance_zca(x.reshape(count, -1).astype(np.float64), epsilon)
    error = np.abs(kaug.zca_whitening_matrix - expected).max() / np.abs(expected).max()
    assert error < 1e-6


def test_zca_regularization_is_checked_saved_and_live(tmp_path):
    with pytest.raises(ValueError, match="Received: zca_regularization='svd'"):
        ImageDataGenerator(zca_regularization="svd")
    gen = pair({"zca_regularization": "keras3"}, zca_whitening=True)[1]
    assert gen.get_config()["zca_regularization"] == "keras3"
    gen.save(tmp_path / "gen.npz")
    assert kaug_load(tmp_path / "gen.npz").zca_regularization == "keras3"
    gen.zca_regularization = "covariance"  # a setting, checked when set, as the others
    assert gen.get_config()["zca_regularization"] == "covariance"
    with pytest.raises(ValueError, match="zca_regularization"):
        gen.zca_regularization = None


@pytest.fixture(scope="module")
def tutorial_zca(train):
    """The tutorial's ZCA section on the built-in sample: float 0..255 digits,
    `ImageDataGenerator(zca_whitening=True)` (so featurewise_center), default epsilon;
    the first nine digits whitened, under each regularisation."""
    whitened = {}
    for regularization in ("covariance", "keras3"):
        gen = pair({"zca_regularization": regularization}, zca_whitening=True)[1]
        gen.fit(train)
        whitened[regularization] = gen.standardize(train[:9])
    return whitened


def test_default_zca_keeps_the_tutorials_range_on_mnist(tutorial_zca):
    """The tutorial's picture: whitened digits up to ~16 with flat borders; Keras 3's
    form at the default epsilon: ~220 on every digit, its borders noise."""
    def border(x):  # the 4-pixel frame MNIST's digits never reach
        frame = np.ones((28, 28), bool)
        frame[4:24, 4:24] = False
        return np.abs(x[:, frame, 0]).mean()

    covariance, keras3 = tutorial_zca["covariance"], tutorial_zca["keras3"]
    peaks = np.abs(covariance).max(axis=(1, 2, 3))
    assert peaks.max() < 20 and np.median(peaks) < 10  # 15.7 and 5.5 measured
    assert np.abs(keras3).max(axis=(1, 2, 3)).min() > 200  # 216.5 measured
    assert border(covariance) < 0.5 < 20 < border(keras3)  # 0.21 and 44.5 measured


def test_fit_does_not_depend_on_chunking(train):
    whole = StatsAccumulator(1, 784, "cpu")
    parts = StatsAccumulator(1, 784, "cpu")
    x = torch.from_numpy(train[:3000]).permute(0, 3, 1, 2)
    whole.update(x, x.reshape(3000, -1))
    for chunk in x.split(700):
        parts.update(chunk, chunk.reshape(len(chunk), -1))
    torch.testing.assert_close(parts.mean(), whole.mean())
    torch.testing.assert_close(parts.std(), whole.std())
    center, scale = torch.full((784,), 33.0), torch.ones(784)
    torch.testing.assert_close(
        parts.zca_matrix(center, scale, 0.1), whole.zca_matrix(center, scale, 0.1)
    )


def test_fit_with_augmentation(train):
    kaug = pair(
        featurewise_center=True, featurewise_std_normalization=True,
        rotation_range=90, fill_mode="constant", cval=255.0,
    )[1]  # fmt: skip
    kaug.fit(train[:500], augment=True, rounds=2, seed=1)
    augmented = kaug.mean.copy()
    kaug.fit(train[:500], augment=True, rounds=2, seed=1)
    np.testing.assert_array_equal(kaug.mean, augmented)
    kaug.fit(train[:500])
    plain = kaug.mean
    # Rotated corners fill with 255: the augmented mean is far brighter.
    assert augmented.item() > plain.item() + 20


def test_fit_and_standardize_do_not_modify_input(train):
    x = train[:100].copy()
    kaug = pair(zca_whitening=True, zca_epsilon=0.1, rescale=1 / 255, samplewise_center=True)[1]
    kaug.fit(x)
    kaug.standardize(x)
    kaug.standardize(x[0])
    np.testing.assert_array_equal(x, train[:100])


def test_standardize_before_fit_warns_like_keras(digits):
    kaug = pair(featurewise_center=True, featurewise_std_normalization=True)[1]
    with pytest.warns(UserWarning, match="hasn't been fit on any training data"):
        out = kaug.standardize(digits[:2])
    np.testing.assert_array_equal(out, digits[:2])  # nothing to apply yet
    kaug = pair(zca_whitening=True)[1]
    with pytest.warns(UserWarning) as record:
        kaug.standardize(digits[:2])
    messages = " ".join(str(w.message) for w in record)
    assert "`zca_whitening`, but it hasn't been fit" in messages
    assert "`featurewise_center`, but it hasn't been fit" in messages


def test_user_set_statistics_are_used(digits):
    """Keras users set mean/std by hand (e.g. ImageNet means); that works."""
    kaug = pair(featurewise_center=True, featurewise_std_normalization=True)[1]
    kaug.mean = np.array([100.0], dtype="float32").reshape((1, 1, 1))
    kaug.std = np.array([[[50.0]]], dtype="float32")
    np.testing.assert_allclose(
        kaug.standardize(digits[:2]), (digits[:2] - 100) / (50 + 1e-6), rtol=1e-5
    )
    kaug.mean = np.full((28, 28, 1), 10.0)  # per-pixel, broadcast like Keras
    np.testing.assert_allclose(
        kaug.standardize(digits[:1]), (digits[:1] - 10) / (50 + 1e-6), rtol=1e-5
    )


def test_flag_coupling_follows_keras():
    cases = [
        dict(zca_whitening=True),
        dict(zca_whitening=True, featurewise_std_normalization=True),
        dict(featurewise_std_normalization=True),
        dict(samplewise_std_normalization=True),
    ]
    flags = ["featurewise_center", "featurewise_std_normalization", "samplewise_center"]
    for kwargs in cases:
        with pytest.warns(UserWarning, match="overrides setting of"):
            kaug = ImageDataGenerator(**kwargs, device="cpu")
        keras = pair(**kwargs)[0]
        assert [getattr(kaug, f) for f in flags] == [getattr(keras, f) for f in flags]


def test_defaults_do_nothing():
    """Every standardization default is off (the tour article's claim is wrong)."""
    kaug = ImageDataGenerator(device="cpu")
    flags = ["featurewise_center", "samplewise_center", "featurewise_std_normalization",
             "samplewise_std_normalization", "zca_whitening"]  # fmt: skip
    assert not any(getattr(kaug, flag) for flag in flags)
    assert kaug.rescale is None and kaug.preprocessing_function is None


def test_uint8_sums_are_exact(mnist):
    """uint8 batches take the int8-product route: the same integers as float64."""
    x = torch.from_numpy(mnist["x_train"][:3000, None])
    flat = x.reshape(3000, -1)
    exact, floats = StatsAccumulator(1, 784, "cpu"), StatsAccumulator(1, 784, "cpu")
    for chunk, rows in zip(x.split(1000), flat.split(1000), strict=True):
        exact.update(chunk, rows)
        floats.update(chunk.double(), rows.double())
    assert torch.equal(exact.gram, floats.gram)
    assert torch.equal(exact.feature_sum, floats.feature_sum)


def test_fit_on_uint8_equals_fit_on_the_same_floats(mnist):
    x = mnist["x_train"][:5000, :, :, None]
    kwargs = dict(zca_whitening=True, zca_epsilon=1e-2, rescale=1 / 255)
    from_uint8, from_float = pair(**kwargs)[1], pair(**kwargs)[1]
    from_uint8.fit(x)
    from_float.fit(x.astype("float32"))
    np.testing.assert_allclose(from_uint8.mean, from_float.mean, rtol=1e-6)
    scale = np.abs(from_float.zca_whitening_matrix).max()
    assert (
        np.abs(from_uint8.zca_whitening_matrix - from_float.zca_whitening_matrix).max()
        < 1e-5 * scale
    )
