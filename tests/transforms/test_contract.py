"""The contract, checked on every registered transform, user transforms included.

`UserInvert` below is a user transform declared here, outside kaug: it is
registered, so the contract applies to it as to the built-ins, and it must work
in `flow()` and survive a save/load round trip.
"""

import inspect

import numpy as np
import pytest
import torch

import kaug
from kaug.sampling import uniform
from kaug.transforms import (
    BatchFunction,
    BatchTransform,
    CenterCrop,
    ColorJitter,
    KerasAugmentation,
    MixUp,
    RandomCrop,
    RandomResizedCrop,
    deserialize,
    register_function,
    register_transform,
    registered_transforms,
    serialize,
)


@register_transform
class UserInvert(BatchTransform):
    """A user transform: invert each image within [0, high], with per-image strength."""

    def __init__(self, high=255.0, strength=(0.5, 1.0), p=0.5):
        super().__init__(p=p)
        self.high = high
        self.strength = list(strength)

    def sample(self, shape, generator):
        low, high = self.strength
        return {"strength": uniform((shape[0],), generator, low, high)}

    def apply(self, x, params):
        strength = params["strength"].to(x.dtype).view(-1, 1, 1, 1)
        return x + strength * (self.high - 2 * x)


@register_function
def halve_ink(x):
    """A plain batch function, registered so that saved generators may name it."""
    return x * 0.5


# Registered classes that need constructor arguments get an example here; a new
# registered transform without defaults fails test_every_transform_has_an_example.
EXAMPLES = {
    BatchFunction: lambda p: BatchFunction(halve_ink, p=p),
    KerasAugmentation: lambda p: KerasAugmentation(
        rotation_range=30, zoom_range=0.2, horizontal_flip=True, brightness_range=[0.5, 1.5], p=p
    ),
    MixUp: lambda p: MixUp(alpha=1.0, p=p),  # Beta(0.2, 0.2) shares can round to exactly 1
    ColorJitter: lambda p: ColorJitter(0.4, 0.4, 0.4, 0.1, p=p),  # the default jitters nothing
    RandomCrop: lambda p: RandomCrop((24, 20), padding=2, p=p),
    CenterCrop: lambda p: CenterCrop((20, 24), p=p),
    RandomResizedCrop: lambda p: RandomResizedCrop(28, p=p),
}
TRANSFORMS = sorted(registered_transforms().items())


def make(cls, p):
    if cls in EXAMPLES:
        return EXAMPLES[cls](p)
    return cls(**{**cls().get_config(), "p": p})


@pytest.fixture(scope="module")
def batch(mnist):
    """16 real RGB images (B, 3, 28, 28), values in 0..255: three digits per image as
    its channels, at different contrasts, so colour and tone ops all have work."""
    digits = torch.from_numpy(mnist["x_train"][:48].astype("float32")).view(3, 16, 28, 28)
    red, green, blue = digits[0], 30 + 0.7 * digits[1], 220 - 0.6 * digits[2]
    return torch.stack([red, green, blue], 1)


def generator(seed=0, device="cpu"):
    return torch.Generator(device).manual_seed(seed)


def out_shape(transform, shape):
    """The batch shape `transform` gives for `shape`: crops choose their own size."""
    size = transform.output_size(*shape[2:]) if hasattr(transform, "output_size") else shape[2:]
    return (*shape[:2], *size)


def test_every_transform_has_an_example():
    names = {name for name, _ in TRANSFORMS}
    assert {"RandomErosion", "RandomDilation", "RandomSaltAndPepper", "UserInvert"} <= names
    for _, cls in TRANSFORMS:
        assert isinstance(make(cls, 1.0), BatchTransform)


@pytest.mark.parametrize("name,cls", TRANSFORMS, ids=[n for n, _ in TRANSFORMS])
class TestContract:
    def test_input_is_not_modified(self, name, cls, batch, device):
        x = batch.to(device)
        before = x.clone()
        make(cls, 1.0)(x, generator(device=device))
        assert torch.equal(x, before)

    @pytest.mark.parametrize(
        "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str
    )
    def test_dtype_and_device_are_kept(self, name, cls, batch, dtype, device):
        """Every float dtype, half precision included: the dtype and device come back,
        and finite images stay finite."""
        transform = make(cls, 0.5)
        out = transform(batch.to(device, dtype), generator(device=device))
        assert out.dtype == dtype and out.device.type == device.type
        assert out.shape == out_shape(transform, batch.shape)
        assert torch.isfinite(out).all()

    def test_empty_batch(self, name, cls, batch):
        transform = make(cls, 1.0)
        assert transform(batch[:0], generator()).shape == out_shape(transform, batch[:0].shape)

    def test_p0_is_the_identity_and_p1_changes_every_image(self, name, cls, batch):
        """p=0 leaves every image as it is, or, for a transform that changes the size,
        gives each its neutral form (a centre crop, a whole-image resize) whatever
        the seed; p=1 changes every image from that."""
        neutral = make(cls, 0.0)(batch, generator())
        assert torch.equal(make(cls, 0.0)(batch, generator(1)), neutral)
        if neutral.shape == batch.shape:
            assert torch.equal(neutral, batch)
        out = make(cls, 1.0)(batch, generator())
        changed = (out != neutral).flatten(1).any(1)
        if getattr(cls, "includes_identity", False):  # policies may draw "Identity"
            assert changed.float().mean() > 0.5
        else:
            assert changed.all()

    def test_config_keys_are_the_constructor_arguments(self, name, cls, batch):
        transform = make(cls, 0.5)
        signature = inspect.signature(type(transform).__init__).parameters
        assert set(transform.get_config()) == set(signature) - {"self"}

    def test_reloaded_transforms_give_the_same_output(self, name, cls, batch):
        transform = make(cls, 0.5)
        for copy in (type(transform).from_config(transform.get_config()),
                     deserialize(serialize(transform))):  # fmt: skip
            assert torch.equal(copy(batch, generator(3)), transform(batch, generator(3)))


PER_IMAGE = [(n, c) for n, c in TRANSFORMS if not getattr(c, "mixes_batch", False)]


@pytest.mark.parametrize("name,cls", PER_IMAGE, ids=[n for n, _ in PER_IMAGE])
def test_a_batch_equals_its_images_one_by_one(name, cls, batch):
    """Every transform but the batch-mixing ones (MixUp, CutMix: an image's output
    depends on its partner by definition; tests/transforms/test_mixing.py)."""
    transform = make(cls, 0.5)
    params = transform.draw(batch.shape, generator())
    whole = transform.transform(batch, params)
    for i in range(len(batch)):
        one = {key: value[i : i + 1] for key, value in params.items()}
        assert torch.equal(transform.transform(batch[i : i + 1], one), whole[i : i + 1])


def test_p_is_a_per_image_probability(batch):
    transform = UserInvert(p=0.3)
    applied = transform.draw((10000, 1, 2, 2), generator())["applied"]
    assert abs(applied.float().mean().item() - 0.3) < 0.02


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="Received: p=1.5"):
        UserInvert(p=1.5)
    with pytest.raises(ValueError, match="must be a module-level function"):
        BatchFunction(lambda x: x).get_config()
    with pytest.raises(ValueError, match="is already registered"):

        @register_transform(name="RandomErosion")
        class Impostor(BatchTransform):
            pass

    with pytest.raises(ValueError, match="import the module that defines it"):
        deserialize({"class_name": "NoSuchTransform", "config": {}})


def test_a_user_transform_works_in_flow_and_survives_save_and_load(mnist, tmp_path):
    x = mnist["x_train"][:64, :, :, None]
    datagen = kaug.ImageDataGenerator(
        rotation_range=10, transforms=[UserInvert(p=1.0), halve_ink], device="cpu"
    )
    inverted, _ = next(iter(datagen.flow(x, mnist["y_train"][:64], batch_size=64, seed=0)))
    assert inverted.mean() > 1.5 * x.mean()  # black backgrounds turned bright (then halved)
    datagen.save(tmp_path / "gen.npz")
    reloaded = kaug.load(tmp_path / "gen.npz")
    reloaded_types = [type(t) for t in reloaded._pipeline.transforms]
    assert reloaded_types == [UserInvert, BatchFunction]
    np.testing.assert_array_equal(reloaded.augment(x, seed=4), datagen.augment(x, seed=4))
