"""MixUp and CutMix: mixed labels sum to 1 and match the mixed pixel share (CutMix: the
box area), shares follow Beta(alpha, alpha), masks follow CutMix's box, and both train
through model.fit with a categorical loss."""

import keras
import numpy as np
import pytest
import torch
from scipy import stats

from kaug import ImageDataGenerator
from kaug.batch import Batch
from kaug.transforms import CutMix, MixUp
from tests.helpers import small_cnn


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def flat_images(count, size=16):
    """Image i is the constant i + 1, so every pixel says which image it came from."""
    return (
        (torch.arange(count, dtype=torch.float32) + 1)
        .view(-1, 1, 1, 1)
        .expand(count, 1, size, size)
        .clone()
    )


def test_mixup_blends_pixels_and_labels_in_the_same_share():
    x, labels = flat_images(64), torch.arange(64) % 10
    mixup = MixUp(alpha=0.4, num_classes=10)
    params = mixup.draw(x.shape, generator())
    partner, share = params["partner"], params["share"].float()
    out = mixup.transform_batch(Batch(x, labels=labels, sample_weight=torch.ones(64)), params)
    assert not torch.any(partner == torch.arange(64))  # never mixed with itself
    expected = share * (torch.arange(64) + 1) + (1 - share) * (partner + 1).float()
    torch.testing.assert_close(out.images[:, 0, 0, 0], expected)
    torch.testing.assert_close(out.labels.sum(1), torch.ones(64))
    own = out.labels[torch.arange(64), labels]
    same_class = labels == labels[partner]
    torch.testing.assert_close(own[~same_class], share[~same_class])
    assert torch.equal(out.sample_weight, torch.ones(64))  # weights kept


def test_cutmix_labels_follow_the_pasted_area():
    x, labels = flat_images(64, size=20), torch.nn.functional.one_hot(torch.arange(64), 64)
    cutmix = CutMix(alpha=1.0)  # one-hot float labels: mixed as they are
    out = cutmix.call_batch(Batch(x, labels=labels.float()), generator(1))
    own_pixels = (out.images[:, 0] == (torch.arange(64) + 1).view(-1, 1, 1)).float().mean((1, 2))
    torch.testing.assert_close(out.labels.sum(1), torch.ones(64))
    torch.testing.assert_close(out.labels[torch.arange(64), torch.arange(64)], own_pixels)
    assert 0.2 < float(own_pixels.mean()) < 0.8 and float(own_pixels.min()) < 0.5


def test_cutmix_moves_masks_with_the_box(mnist):
    x = torch.from_numpy(mnist["x_train"][:32, None].astype("float32"))
    masks = (x > 100).to(torch.uint8)
    out = CutMix(num_classes=10).call_batch(
        Batch(x, masks=masks, labels=torch.from_numpy(mnist["y_train"][:32])), generator(2)
    )
    assert torch.equal(out.masks, (out.images > 100).to(torch.uint8))
    assert not torch.equal(out.images, x)


@pytest.mark.parametrize("cls,alpha", [(MixUp, 0.2), (MixUp, 1.0), (CutMix, 1.0)])
def test_shares_follow_beta_and_p_is_per_image(cls, alpha):
    params = cls(alpha=alpha, num_classes=3).draw((20000, 1, 100, 100), generator(3))
    drawn = params["share"] if cls is MixUp else params["lam"]
    assert stats.kstest(drawn.numpy(), "beta", args=(alpha, alpha)).pvalue > 1e-3
    if cls is CutMix:  # whole pixels and the border only take area away from the box
        assert bool((params["share"] >= drawn - 1e-12).all())
    unmixed = (params["share"] == 1).float().mean()  # CutMix: boxes of no whole pixel
    kept = cls(alpha=alpha, p=0.3).draw((20000, 1, 100, 100), generator(4))["share"] == 1
    assert abs(float(kept.float().mean()) - (0.7 + 0.3 * unmixed)) < 0.02


def test_sparse_labels_need_num_classes():
    x, labels = flat_images(4), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="`num_classes` is needed for MixUp"):
        MixUp().call_batch(Batch(x, labels=labels), generator())
    with pytest.raises(ValueError, match="needs batches with labels"):
        CutMix(num_classes=4).call_batch(Batch(x), generator())
    with pytest.raises(ValueError, match="num_classes=3"):
        MixUp(num_classes=3).call_batch(Batch(x, labels=labels), generator())


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_class_indices_of_any_dtype_become_one_hot_rows(cls):
    """Float class indices (`class_mode="sparse"`) are indices, never mixed as numbers:
    without num_classes they are refused; with it they become one-hot rows."""
    x, indices = flat_images(8), torch.arange(8) % 4
    for labels in (indices, indices.float(), indices.view(-1, 1).double()):
        with pytest.raises(ValueError, match="`num_classes` is needed"):
            cls(alpha=1.0).call_batch(Batch(x, labels=labels), generator())
        out = cls(alpha=1.0, num_classes=4).call_batch(Batch(x, labels=labels), generator())
        assert out.labels.shape == (8, 4)
        torch.testing.assert_close(out.labels.sum(1), torch.ones(8, dtype=out.labels.dtype))


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_one_hot_rows_of_any_dtype_mix_with_or_without_num_classes(cls):
    x, rows = flat_images(8), torch.nn.functional.one_hot(torch.arange(8) % 4, 4)
    for num_classes in (None, 4):
        out = cls(alpha=1.0, num_classes=num_classes).call_batch(Batch(x, labels=rows), generator())
        assert out.labels.shape == (8, 4) and out.labels.dtype == torch.float32
        torch.testing.assert_close(out.labels.sum(1), torch.ones(8))
    with pytest.raises(ValueError, match="must match the 4 columns"):
        cls(num_classes=3).call_batch(Batch(x, labels=rows), generator())


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_labels_have_one_shape_at_every_p(cls):
    """A model compiled for the mixed labels' shape keeps working when mixing is off."""
    x, labels = flat_images(8), torch.arange(8) % 4
    shapes = set()
    for p in (0.0, 0.5, 1.0):
        for batch in (Batch(x, labels=labels), Batch(x[:0], labels=labels[:0])):
            out = cls(alpha=1.0, num_classes=4, p=p).call_batch(batch, generator())
            shapes.add(out.labels.shape[1:])
    assert shapes == {(4,)}
    kept = cls(num_classes=4, p=0.0).call_batch(Batch(x, labels=labels), generator())
    assert torch.equal(kept.images, x)
    assert torch.equal(kept.labels, torch.nn.functional.one_hot(labels, 4).float())


def test_binary_targets_mix_as_probabilities_with_num_classes_1():
    x, targets = flat_images(64), (torch.arange(64) % 2).float().view(-1, 1)
    mixup = MixUp(alpha=1.0, num_classes=1)
    params = mixup.draw(x.shape, generator())
    out = mixup.transform_batch(Batch(x, labels=targets), params)
    share = params["share"].float().view(-1, 1)
    assert out.labels.shape == (64, 1)
    expected = share * targets + (1 - share) * targets[params["partner"]]
    torch.testing.assert_close(out.labels, expected)
    with pytest.raises(ValueError, match="binary targets, which must lie in"):
        mixup.call_batch(Batch(x, labels=targets * 2), generator())


def test_cutmix_mixes_images_and_masks_without_labels(mnist):
    """Segmentation: `flow(x, masks=m)` with CutMix pastes the same box into both."""
    x = torch.from_numpy(mnist["x_train"][:32, None].astype("float32"))
    masks = (x > 100).to(torch.uint8)
    out = CutMix().call_batch(Batch(x, masks=masks), generator(2))
    assert out.labels is None
    assert torch.equal(out.masks, (out.images > 100).to(torch.uint8))
    assert not torch.equal(out.images, x)
    served = ImageDataGenerator(transforms=[CutMix()], device="cpu").flow(
        mnist["x_train"][:32, :, :, None], masks=(mnist["x_train"][:32] > 100), batch_size=32
    )
    images, served_masks = (np.asarray(part) for part in served[0])
    np.testing.assert_array_equal(served_masks, images[..., 0] > 100)


def test_mixing_trains_through_model_fit_with_a_categorical_loss(mnist):
    x, y = mnist["x_train"][:2000, :, :, None], mnist["y_train"][:2000]
    datagen = ImageDataGenerator(
        rescale=1 / 255, transforms=[MixUp(num_classes=10, p=0.5), CutMix(num_classes=10, p=0.5)]
    )
    loader = datagen.flow(x, y, batch_size=64, seed=0)
    images, labels = loader[0]
    assert labels.shape == (64, 10)
    np.testing.assert_allclose(labels.sum(1), 1.0, rtol=1e-6)
    keras.utils.set_random_seed(0)
    model = small_cnn(filters=(8,))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(loader, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    test = ImageDataGenerator(rescale=1 / 255).flow(
        mnist["x_test"][:500, :, :, None], keras.utils.to_categorical(mnist["y_test"][:500], 10)
    )
    assert model.evaluate(test, verbose=0)[1] > 0.6
