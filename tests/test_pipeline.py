"""The batch pipeline: transforms defined outside kaug that mix labels or crop images
and masks, through `model.fit(datagen.flow(...))`; the pipeline never touches the facade."""

import ast
import pathlib

import keras
import numpy as np
import pytest
import torch

from kaug import ImageDataGenerator
from kaug.batch import Batch
from kaug.pipeline import Pipeline
from kaug.sampling import uniform
from kaug.transforms import BatchTransform, KerasAugmentation
from tests.helpers import small_cnn

KAUG = pathlib.Path(__file__).resolve().parents[1] / "kaug"


class MixPairs(BatchTransform):
    """A user's MixUp: each image blended with another of the batch, labels alike."""

    reads = writes = ("images", "labels")

    def __init__(self, low=0.6, p=1.0):
        super().__init__(p=p)
        self.low = low

    def sample(self, shape, generator):
        partner = torch.randperm(shape[0], generator=generator, device=generator.device)
        return {"partner": partner, "share": uniform((shape[0],), generator, self.low, 1.0)}

    def apply_batch(self, batch, params):
        def mix(a):
            share = params["share"].view(-1, *[1] * (a.ndim - 1))
            return share * a + (1 - share) * a[params["partner"]]

        return batch.replace(images=mix(batch.images), labels=mix(batch.labels))


class CropTo(BatchTransform):
    """A user's centre crop of images and masks to size x size."""

    writes = ("images", "masks")

    def __init__(self, size=20):
        super().__init__(p=1.0)
        self.size = size

    def crop(self, x):
        top = (x.shape[2] - self.size) // 2
        left = (x.shape[3] - self.size) // 2
        return x[:, :, top : top + self.size, left : left + self.size]

    def apply(self, x, params):
        return self.crop(x)

    def apply_batch(self, batch, params):
        masks = None if batch.masks is None else self.crop(batch.masks)
        return batch.replace(images=self.crop(batch.images), masks=masks)


def test_a_label_mixing_transform_trains_through_model_fit(mnist):
    x, y = mnist["x_train"][:3000, :, :, None], mnist["y_train"][:3000]
    one_hot = np.eye(10, dtype="float32")[y]
    datagen = ImageDataGenerator(rescale=1 / 255, transforms=[MixPairs()], device="cpu")
    loader = datagen.flow(x, one_hot, batch_size=64, seed=0)
    images, labels = next(iter(loader))  # numpy, as Keras served them
    assert np.allclose(labels.sum(1), 1) and (labels.max(1) >= 0.6).all()
    assert ((labels > 0).sum(1) == 2).sum() > 40  # most rows now hold two classes
    keras.utils.set_random_seed(0)
    model = small_cnn((28, 28, 1))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    model.fit(loader, epochs=3, verbose=0)
    test = ImageDataGenerator(rescale=1 / 255, device="cpu").flow(
        mnist["x_test"][:1000, :, :, None], np.eye(10, dtype="float32")[mnist["y_test"][:1000]]
    )
    assert model.evaluate(test, verbose=0)[1] > 0.85


def test_a_cropping_transform_moves_masks_and_trains_at_the_new_size(mnist):
    x, y = mnist["x_train"][:3000, :, :, None], mnist["y_train"][:3000]
    masks = (x[..., 0] > 128).astype("uint8")
    flips = ImageDataGenerator(horizontal_flip=True, transforms=[CropTo(20)], device="cpu")
    images, served_masks = next(iter(flips.flow(x, masks=masks, batch_size=32, seed=1)))
    assert images.shape == (32, 20, 20, 1) and served_masks.shape == (32, 20, 20)
    assert served_masks.dtype == np.uint8
    np.testing.assert_array_equal(served_masks, images[..., 0] > 128)  # still aligned

    keras.utils.set_random_seed(0)
    model = small_cnn((20, 20, 1))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    crop = ImageDataGenerator(rotation_range=10, rescale=1 / 255, transforms=[CropTo(20)],
                              device="cpu")  # fmt: skip
    model.fit(crop.flow(x, y, batch_size=64, seed=0), epochs=3, verbose=0)
    center = ImageDataGenerator(rescale=1 / 255, transforms=[CropTo(20)], device="cpu")
    test = center.flow(mnist["x_test"][:1000, :, :, None], mnist["y_test"][:1000])
    assert model.evaluate(test, verbose=0)[1] > 0.8  # chance: 0.1


def test_a_batch_carries_weights_through_and_never_changes_in_place():
    images = torch.rand(4, 1, 6, 6)
    batch = Batch(images, labels=torch.arange(4.0), sample_weight=torch.ones(4))
    mix = MixPairs(p=0.5)
    params = mix.draw(images.shape, torch.Generator().manual_seed(3))
    out = mix.transform_batch(batch, params)
    assert out is not batch and torch.equal(batch.images, images)
    assert torch.equal(out.sample_weight, batch.sample_weight)
    kept = ~params["applied"]  # images not drawn keep their image and their label
    assert kept.any() and (~kept).any()
    assert torch.equal(out.images[kept], images[kept])
    assert torch.equal(out.labels[kept], batch.labels[kept])
    pipeline = Pipeline()
    pipeline.transforms = [mix]
    served = pipeline.augment_batch(batch, torch.Generator().manual_seed(3))
    assert torch.equal(served.labels, out.labels)  # the pipeline runs the same draw


def _imports(nodes):
    return {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in nodes
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [None])
    }


def test_the_pipeline_and_the_loaders_never_import_the_facade_or_keras():
    """Only the Keras adapter of the loaders touches keras, and only when Keras calls it
    (inside functions: `import kaug` never imports keras)."""
    for path in [KAUG / "pipeline.py", KAUG / "standardize.py", KAUG / "batch.py",
                 *sorted((KAUG / "data").glob("*.py"))]:  # fmt: skip
        tree = ast.parse(path.read_text())
        everywhere, top_level = _imports(ast.walk(tree)), _imports(tree.body)
        assert "kaug.image_data_generator" not in everywhere, path
        keras_anywhere = path.name != "keras_adapter.py"
        keras = everywhere if keras_anywhere else top_level
        assert not any(name and name.split(".")[0] == "keras" for name in keras), path


class Undeclared(MixPairs):
    """MixPairs that forgets to declare the labels it changes."""

    reads = ("images", "labels")
    writes = ("images",)


def test_transforms_are_held_to_the_fields_they_declare():
    images = torch.rand(6, 1, 8, 8)
    labels = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="needs batches with labels.*MixPairs"):
        MixPairs().call_batch(Batch(images), generator)
    with pytest.raises(ValueError, match="changed labels, which it does not declare.*Undeclared"):
        Undeclared().call_batch(Batch(images, labels=labels), generator)
    mixed = MixPairs().call_batch(Batch(images, labels=labels), generator)
    torch.testing.assert_close(mixed.labels.sum(1), torch.ones(6))  # mixed labels still sum to 1
    assert KerasAugmentation.writes == ("images", "masks", "boxes", "keypoints")
    assert BatchTransform.writes == ("images",)


@pytest.mark.parametrize("photometric", [False, True])
def test_the_keras_warp_joins_the_geometric_run_after_it(mnist, monkeypatch, photometric):
    """Rotation, zoom and flips fold into the crop run that follows them (one
    grid_sample for the images, one for the masks), with the same draws, fill and
    output as the Keras stage then the run; a channel shift keeps them apart."""
    from kaug.functional import geometric as G
    from kaug.sampling import make_generator
    from kaug.transforms import RandomCrop
    from kaug.transforms.geometric import call_stages

    keras_settings = dict(rotation_range=30, zoom_range=0.2, horizontal_flip=True,
                          fill_mode="constant", cval=7.0, interpolation_order=0,
                          channel_shift_range=20.0 if photometric else 0.0)  # fmt: skip
    crops = [RandomCrop(24, padding=3, fill_value=2.0), RandomCrop(20, fill_mode="reflect")]
    datagen = ImageDataGenerator(**keras_settings, transforms=crops, device="cpu")
    x = torch.from_numpy(mnist["x_train"][:32]).unsqueeze(1)
    masks = (x > 127).to(torch.uint8)
    calls = []
    grid_sample, gather_points = torch.nn.functional.grid_sample, G.gather_points
    monkeypatch.setattr(
        G.F, "grid_sample", lambda *a, **k: calls.append("images") or grid_sample(*a, **k)
    )
    monkeypatch.setattr(G, "gather_points", lambda *a: calls.append("masks") or gather_points(*a))
    served = datagen._pipeline.augment_batch(Batch(x, masks), make_generator("cpu", 5))
    # One resampling of the images and one gather of the masks per run (two runs when
    # the channel shift keeps the Keras stage apart).
    assert sorted(calls) == sorted(["images", "masks"] * (2 if photometric else 1))
    generator = make_generator("cpu", 5)
    stage = KerasAugmentation(**keras_settings)
    stepped = call_stages(crops, stage.call_batch(Batch(x, masks), generator), generator)
    assert served.images.shape == (32, 1, 20, 20)
    assert torch.equal(served.images, stepped.images)
    assert torch.equal(served.masks, stepped.masks)
    if not photometric:
        assert torch.equal(served.masks, (served.images > 127).to(torch.uint8))
