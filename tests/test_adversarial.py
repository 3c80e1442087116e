"""kaug's adversarial suite: hypothesis over everything a user or a file can hand kaug.

The promises, checked on every case:
- invalid input raises a ValueError or TypeError in Keras wording ("Received: ..."),
  never another exception, never a hang;
- a configuration the constructor accepts never crashes on valid images;
- finite images never come out NaN (nor inf in float32/float64 outputs);
- no user array is ever modified;
- loading a file never runs code it names.

Cases and failures per category are printed at the end of the run (conftest).
"""

import contextlib
import json
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kaug
from kaug import ImageDataGenerator

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same cases on every run, so two versions of kaug compare
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Junk any argument may receive instead of a sensible value.
JUNK = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2)), max_size=3),
    st.just(np.array([1.0, 2.0])),
    st.just(np.array(0.5)),
    st.just({"a": 1}),
    st.just(float("nan")),
)


def sometimes_junk(valid):
    return st.one_of(valid, valid, valid, JUNK)


def pair(low, high):
    return st.tuples(st.floats(low, high), st.floats(low, high)).map(sorted).map(list)


TRANSFORMS = st.lists(
    st.sampled_from(
        [
            {"class_name": "RandomErosion", "config": {"kernel_size": 2, "p": 0.5}},
            {"class_name": "RandomDilation", "config": {"kernel_size": [1, 3], "p": 1.0}},
            {"class_name": "RandomSaltAndPepper", "config": {"amount": 0.1, "p": 0.5}},
            {"class_name": "RandomSaltAndPepper", "config": {"count": 3, "p": 1.0}},
            {"class_name": "RandomErosion", "config": {"footprint": [[0, 1], [1, 1]]}},
            {
                "class_name": "RandomPerspective",
                "config": {"distortion_scale": 1.0, "fill_mode": "reflect"},
            },
            {
                "class_name": "RandomElasticTransform",
                "config": {"alpha": 30, "sigma": 2, "fill_mode": "wrap"},
            },
        ]
    ),
    max_size=2,
)

CONFIG_VALUES = {
    "featurewise_center": st.booleans(),
    "samplewise_center": st.booleans(),
    "featurewise_std_normalization": st.booleans(),
    "samplewise_std_normalization": st.booleans(),
    "zca_whitening": st.booleans(),
    "zca_epsilon": st.floats(1e-6, 1.0),
    "rotation_range": st.one_of(st.floats(0, 360), st.integers(0, 180)),
    "width_shift_range": st.one_of(
        st.floats(0, 1),
        st.integers(0, 12),
        st.lists(st.integers(-4, 4), min_size=1, max_size=3),
        st.lists(st.floats(-0.9, 0.9), min_size=1, max_size=3),
        st.floats(1, 20),
    ),  # fmt: skip
    "height_shift_range": st.one_of(st.floats(0, 1), st.integers(0, 12), st.just([0])),
    "brightness_range": st.one_of(st.none(), pair(0, 3)),
    "shear_range": st.floats(0, 89),
    "zoom_range": st.one_of(st.floats(0, 1), pair(0.05, 4)),
    "channel_shift_range": st.floats(0, 300),
    "fill_mode": st.sampled_from(["constant", "nearest", "reflect", "wrap"]),
    "cval": st.floats(-1000, 1000),
    "horizontal_flip": st.booleans(),
    "vertical_flip": st.booleans(),
    "rescale": st.one_of(st.none(), st.floats(-10, 10), st.just(1 / 255)),
    "data_format": st.sampled_from(["channels_last", "channels_first"]),
    "validation_split": st.one_of(st.just(0.0), st.floats(0.1, 0.9)),
    "interpolation_order": st.sampled_from([0, 1]),
    "dtype": st.sampled_from(["float16", "float32", "float64"]),
    "transforms": st.one_of(st.none(), TRANSFORMS),
    "erosion": st.one_of(st.booleans(), st.floats(0, 1)),
    "salt_pepper": st.one_of(st.booleans(), st.floats(0, 1), st.just({"amount": 0.2})),
}

CONFIGS = st.fixed_dictionaries(
    {}, optional={name: sometimes_junk(values) for name, values in CONFIG_VALUES.items()}
)
VALID_CONFIGS = st.fixed_dictionaries({}, optional=CONFIG_VALUES)

DTYPES = ["uint8", "int16", "int32", "uint16", "float16", "float32", "float64", "bool"]
LAYOUTS = {
    "contiguous": lambda a: a,
    "flipped columns": lambda a: np.flip(a, 2),
    "flipped batch": lambda a: a[::-1],
    "strided": lambda a: a[:, ::2],
    "fortran": np.asfortranarray,
}


CHANNELS = st.sampled_from([1, 3, 4, 2])


@st.composite
def images(draw, channels=CHANNELS, max_side=9):
    """A finite batch in any dtype, layout and magnitude, with its shape's data_format."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, max_side)),
             draw(st.integers(1, max_side)), draw(channels))  # fmt: skip
    if dtype.kind == "f":
        limit = {2: 6e4, 4: 1e30, 8: 1e30}[dtype.itemsize]
        magnitude = float(dtype.type(draw(st.sampled_from([1.0, 255.0, 1e4, limit]))))
        elements = st.floats(-magnitude, magnitude, width=8 * dtype.itemsize)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -(2**20)), min(info.max, 2**20))
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    return LAYOUTS[layout](x)


def keras_worded(error):
    """Invalid input is refused with a ValueError/TypeError that names what it got."""
    return isinstance(error, (ValueError, TypeError)) and "Received: " in str(error)


def build(census, category, config):
    """The generator for `config`, or None when it is refused as Keras would word it."""
    census.tried[category] += 1
    try:
        with quiet():
            return ImageDataGenerator(**{"device": "cpu", **config})
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{config!r} raised {type(error).__name__}: {error}")
        return None


@contextlib.contextmanager
def quiet():
    """Keras's warnings (flag overrides, unfitted statistics) are expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def to_format(x, gen):
    """x (NHWC by construction) in the generator's data_format."""
    return np.moveaxis(x, 3, 1) if gen.data_format == "channels_first" else x


def check_output(census, category, out, like, gen, what):
    out = np.asarray(out.cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
    if out.shape != tuple(like.shape):
        census.fail(category, f"{what}: shape {out.shape}, expected {tuple(like.shape)}")
    elif np.isnan(out).any():
        census.fail(category, f"{what}: NaN from finite input, config {gen.get_config()!r}")
    elif gen.dtype != "float16" and not np.isfinite(out).all():
        census.fail(category, f"{what}: inf from finite input, config {gen.get_config()!r}")


def exercise(census, category, gen, x, seed):
    """Every public entry point on valid, finite images: no crash, no NaN, no mutation."""
    x = to_format(x, gen)
    before = x.copy()
    try:
        with quiet():
            if gen.featurewise_center or gen.featurewise_std_normalization or gen.zca_whitening:
                gen.fit(x, augment=bool(seed % 2), seed=seed)
            check_output(census, category, gen.augment(x, seed=seed), x, gen, "augment")
            check_output(census, category, gen.standardize(x), x, gen, "standardize")
            check_output(census, category, gen.random_transform(x[0], seed=seed), x[0], gen,
                         "random_transform")  # fmt: skip
            params = gen.get_random_transform(x[0].shape, seed=seed)
            check_output(census, category, gen.apply_transform(x[0], params), x[0], gen,
                         "apply_transform")  # fmt: skip
            batch = next(iter(gen.flow(x, np.arange(len(x)), batch_size=len(x), seed=seed)))
            check_output(census, category, batch[0], x, gen, "flow")
            gen.preview(x, n=2, seed=seed)
    except Exception as error:
        census.fail(category, f"{type(error).__name__}: {error} (config {gen.get_config()!r}, "
                              f"x {x.dtype} {x.shape} strides {x.strides})")  # fmt: skip
    if not np.array_equal(x, before, equal_nan=True):
        census.fail(category, f"the caller's array was modified (config {gen.get_config()!r})")


@FUZZ
@given(config=CONFIGS)
def test_the_constructor_accepts_or_refuses_in_keras_wording(census, config):
    gen = build(census, "constructor configs", config)
    if gen is not None:
        census.tried["accepted configs round-trip"] += 1
        copy = build(census, "accepted configs round-trip", gen.get_config())
        if copy is None:
            census.fail("accepted configs round-trip", f"get_config() did not rebuild {config!r}")


@settings(FUZZ, max_examples=600)
@given(config=VALID_CONFIGS, x=images(), seed=st.integers(0, 2**63 - 1))
def test_valid_configurations_never_crash_on_valid_images(census, config, x, seed):
    gen = build(census, "valid configs x images", config)
    if gen is not None:
        exercise(census, "valid configs x images", gen, x, seed)


BAD_ARRAYS = st.one_of(
    hnp.arrays(
        st.sampled_from(["float32", "float64"]),
        st.just((2, 4, 4, 1)),
        elements=st.sampled_from([np.nan, np.inf, -np.inf, 1.0]),
    ),  # fmt: skip
    st.sampled_from(
        [
            np.zeros((2, 0, 4, 1)),
            np.zeros((2, 4, 4, 0)),
            np.zeros((4, 4, 1)),
            np.zeros((1, 2, 4, 4, 1)),
            np.zeros((2, 4, 4, 1), "complex64"),
            np.full((2, 4, 4, 1), "a"),
            np.array(3.0),
            [[1, 2], [3]],
            "images",
            None,
            5,
            np.zeros((2, 4, 4, 1), object),
            torch.zeros((2, 4, 4, 1), dtype=torch.complex64),
        ]
    ),  # fmt: skip
)


@FUZZ
@given(x=BAD_ARRAYS, method=st.sampled_from(["augment", "standardize", "fit", "flow", "preview",
                                             "random_transform", "apply_transform"]))  # fmt: skip
def test_bad_arrays_are_refused_in_keras_wording(census, x, method):
    category = "bad arrays"
    census.tried[category] += 1
    gen = ImageDataGenerator(rotation_range=10, featurewise_center=True, device="cpu")
    call = {
        "random_transform": lambda: gen.random_transform(x),
        "apply_transform": lambda: gen.apply_transform(x, {"theta": 10}),
        "standardize": lambda: gen.standardize(x),
    }.get(method, lambda: getattr(gen, method)(x))
    try:
        with quiet():
            call()
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{method}({x!r:.60}) raised {type(error).__name__}: {error}")
        return
    # Finite images of the rank a method takes are valid input: accepting them is right.
    valid = (
        isinstance(x, np.ndarray)
        and x.dtype.kind == "f"
        and x.size > 0
        and np.isfinite(x).all()
        and x.ndim in RANKS[method]
    )
    if not valid:
        census.fail(category, f"{method} accepted {x!r:.80}")


RANKS = {"augment": (4,), "fit": (4,), "flow": (4,), "preview": (4,), "standardize": (3, 4),
         "random_transform": (3,), "apply_transform": (3,)}  # fmt: skip


PARAMETER_KEYS = ["theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal", "flip_vertical",
                  "channel_shift_intensity", "brightness", "unknown"]  # fmt: skip


@FUZZ
@given(
    params=st.one_of(
        st.dictionaries(
            st.sampled_from(PARAMETER_KEYS), st.one_of(st.floats(-100, 100), JUNK), max_size=5
        ),  # fmt: skip
        JUNK,
    ),
    config=VALID_CONFIGS,
)
def test_apply_transform_parameters(census, params, config):
    category = "apply_transform parameters"
    gen = build(census, category, config)
    if gen is None:
        return
    image = to_format(np.random.default_rng(0).uniform(0, 255, (1, 6, 5, 3)), gen)[0]
    before = image.copy()
    try:
        out = gen.apply_transform(image, params)
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{params!r} raised {type(error).__name__}: {error}")
        return
    check_output(census, category, out, image, gen, f"apply_transform({params!r})")
    if not np.array_equal(image, before):
        census.fail(category, "the caller's image was modified")


FLOW_ARGUMENTS = {
    "batch_size": sometimes_junk(st.integers(1, 40)),
    "shuffle": sometimes_junk(st.booleans()),
    "seed": sometimes_junk(st.one_of(st.none(), st.integers(0, 2**63 - 1))),
    "subset": sometimes_junk(st.sampled_from([None, "training", "validation"])),
    "sample_weight": sometimes_junk(st.just(np.ones(8))),
    "y": sometimes_junk(st.one_of(st.none(), st.just(np.arange(8) % 2))),
    "augment": sometimes_junk(st.booleans()),
    "ignore_class_split": st.booleans(),
}


@FUZZ
@given(arguments=st.fixed_dictionaries({}, optional=FLOW_ARGUMENTS),
       split=st.sampled_from([0.0, 0.25, 0.5]))  # fmt: skip
def test_flow_arguments(census, arguments, split):
    category = "flow arguments"
    census.tried[category] += 1
    gen = ImageDataGenerator(rotation_range=10, validation_split=split, device="cpu")
    x = np.random.default_rng(1).uniform(0, 255, (8, 5, 5, 1)).astype("float32")
    try:
        with quiet():
            loader = gen.flow(x, **arguments)
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{arguments!r} raised {type(error).__name__}: {error}")
        return
    try:
        sizes = [len(b[0] if isinstance(b, tuple) else b) for b in loader.epoch()]
    except Exception as error:
        census.fail(category, f"{arguments!r}: iterating raised {type(error).__name__}: {error}")
        return
    if len(sizes) != len(loader) or 0 in sizes:
        census.fail(category, f"{arguments!r}: batch sizes {sizes}, len {len(loader)}")


def jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return value  # json writes NaN/Infinity, and reads them back
    return value


SAVED_SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
SAVED_SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
STATISTIC_ARRAYS = st.dictionaries(
    st.sampled_from(["mean", "std", "zca_whitening_matrix", "device", "rescale", "evil"]),
    st.one_of(
        hnp.arrays(st.sampled_from(["float32", "float64"]), SAVED_SHAPES,
                   elements=st.floats(-10, 10) | st.just(np.nan)),
        hnp.arrays(st.sampled_from(["int64", "bool", "U1"]), SAVED_SHAPES),
    ),
    max_size=3,
)  # fmt: skip


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """An importable module whose import leaves a marker file: no load may import it."""
    folder = tmp_path_factory.mktemp("planted")
    marker = folder / "module_ran"
    (folder / "kaug_planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef run(x):\n    return x\n"
    )
    sys.path.insert(0, str(folder))
    yield marker
    sys.path.remove(str(folder))


NAMED_FUNCTIONS = [None, "os:system", "builtins:exec", "subprocess:call", "kaug:load",
                   "kaug_planted:run", "tests.test_saving:brighten"]  # fmt: skip


@FUZZ
@given(config=CONFIGS, arrays=STATISTIC_ARRAYS, function=st.sampled_from(NAMED_FUNCTIONS))
def test_crafted_save_files(census, planted, tmp_path_factory, config, arrays, function):
    category = "crafted save files"
    census.tried[category] += 1
    config = {key: jsonable(value) for key, value in config.items()}
    if function is not None:
        step = {"class_name": "BatchFunction", "config": {"function": function, "p": 1.0}}
        given = config.get("transforms")
        config["transforms"] = (given[:1] if isinstance(given, list) else []) + [step]
    path = tmp_path_factory.mktemp("saved") / "crafted.npz"
    try:
        text = json.dumps(config)
    except (TypeError, ValueError):
        return
    with open(path, "wb") as file:
        np.savez(file, config=np.array(text), **arrays)
    try:
        with quiet():
            gen = kaug.load(path, device="cpu")
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{config!r} {list(arrays)} raised "
                                  f"{type(error).__name__}: {error}")  # fmt: skip
        return
    finally:
        if planted.exists() or "kaug_planted" in sys.modules:
            census.fail(category, f"loading {function!r} imported the module it names")
            planted.unlink(missing_ok=True)  # ready to catch the next case
            sys.modules.pop("kaug_planted", None)
    if function not in (None, "tests.test_saving:brighten"):
        census.fail(category, f"loaded a file naming {function!r}")
    # What loads, works: statistics that do not suit the images are refused by name.
    x = to_format(np.random.default_rng(2).uniform(0, 255, (2, 4, 4, 1)), gen)
    try:
        with quiet():
            check_output(census, category, gen.standardize(x), x, gen, "standardize")
            check_output(census, category, gen.augment(x), x, gen, "augment")
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"the loaded generator raised {type(error).__name__}: {error}")


# ---------------------------------------------------------------------------
# The catalogue: every registered transform, alone and in fused runs, on tiny
# images of every float dtype, with masks of every integer width and labels of
# every kind, at extreme but finite parameters.

from kaug.batch import Batch  # noqa: E402
from kaug.transforms import registered_transforms  # noqa: E402

# Constructor arguments for the transforms that have no defaults for them.
BASE_CONFIGS = {
    "RandomCrop": {"size": 3, "pad_if_needed": True},
    "CenterCrop": {"size": [2, 3]},
    "RandomResizedCrop": {"size": 4},
    "BatchFunction": {"function": "tests.test_adversarial:double"},
    "MixUp": {"num_classes": 3},
    "CutMix": {"num_classes": 3},
}
# Finite values at the edges of what a float32 holds, and past them.
EXTREMES = st.sampled_from(
    [0, 0.0, 1e-50, -1e-50, 1e-30, 1e30, -1e30, 3.5e38, -3.5e38, 1e39, 1e300, 2**63, 10**20,
     -(10**20), 1, 2, 0.5, 255.0, 65504.0]
)  # fmt: skip
KAUG_CATALOGUE = sorted(
    name for name, cls in registered_transforms().items() if cls.__module__.startswith("kaug.")
)


def double(x):
    return x * 2


kaug.transforms.register_function(double, name="tests.test_adversarial:double")


@st.composite
def catalogue_configs(draw, name):
    """A configuration of transform `name`: its defaults (or BASE_CONFIGS), some numbers
    (or numbers inside pairs) replaced by extreme ones."""
    cls = registered_transforms()[name]
    base = BASE_CONFIGS.get(name, {})
    config = {**(cls(**base).get_config() if name != "KerasAugmentation" else {}), **base}
    if name == "KerasAugmentation":
        config = {"rotation_range": 30, "zoom_range": [0.5, 1.5], "fill_mode": "constant",
                  "cval": 0.0, "channel_shift_range": 10.0,
                  "brightness_range": [0.5, 1.5]}  # fmt: skip
    for key, value in list(config.items()):
        if key == "p" or not draw(st.booleans()):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            config[key] = draw(EXTREMES)
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            config[key] = sorted(draw(EXTREMES) for _ in value)
    config["p"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    return config


MASK_WIDTHS = {
    "uint8": (torch.uint8, 255),
    "int8": (torch.int8, -128),
    "int16": (torch.int16, 2**15 - 1),
    "int32": (torch.int32, 2**31 - 1),
    "int64": (torch.int64, 2**63 - 1),
    "bool": (torch.bool, True),
}
LABEL_KINDS = ("none", "sparse int", "sparse float", "one-hot int", "one-hot float", "binary")


def labels_of(kind, batch, num_classes=3):
    classes = torch.arange(batch) % num_classes
    if kind == "none":
        return None
    if kind.startswith("sparse"):
        return classes if kind == "sparse int" else classes.float()
    if kind == "binary":
        return (classes % 2).float().view(-1, 1)
    rows = torch.nn.functional.one_hot(classes, num_classes)
    return rows if kind == "one-hot int" else rows.float()


@st.composite
def float_images(draw):
    """(B, C, H, W) finite images: tiny sizes, 1/3/4/5 channels, every float dtype."""
    dtype = draw(st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]))
    shape = (draw(st.integers(0, 3)), draw(st.sampled_from([1, 3, 4, 5])),
             draw(st.integers(1, 7)), draw(st.integers(1, 7)))  # fmt: skip
    high = draw(st.sampled_from([1.0, 255.0, 6e4]))
    seed = draw(st.integers(0, 2**16))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x * high).to(dtype)


def check_targets(census, category, transform, batch, out, what):
    """Masks: dtype kept, every value one that went in (or 0), size of the images;
    images: no NaN from finite data, dtype kept; labels: one label shape at any p."""
    if out.images.dtype != batch.images.dtype:
        census.fail(category, f"{what}: images {batch.images.dtype} came out {out.images.dtype}")
    if torch.isnan(out.images.float()).any():
        census.fail(category, f"{what}: NaN from finite images")
    if batch.masks is not None:
        masks = out.masks
        if masks is None or masks.dtype != batch.masks.dtype:
            census.fail(category, f"{what}: masks {batch.masks.dtype} came out {masks!r:.60}")
        elif masks.shape[2:] != out.images.shape[2:] or len(masks) != len(out.images):
            census.fail(category, f"{what}: masks {tuple(masks.shape)} for images "
                                  f"{tuple(out.images.shape)}")  # fmt: skip
        elif not set(masks.unique().tolist()) <= set(batch.masks.unique().tolist()) | {0}:
            census.fail(category, f"{what}: mask values changed")
    if batch.labels is not None and out.labels is not None and len(out.labels):
        if torch.isnan(out.labels.float()).any():
            census.fail(category, f"{what}: NaN labels")


def run_catalogue_case(census, category, transforms, batch, seed):
    """The transforms in turn on `batch` (call_batch): a refusal must be Keras-worded."""
    before = [None if t is None else t.clone() for t in (batch.images, batch.masks, batch.labels)]
    out = batch
    what = f"{[type(t).__name__ for t in transforms]} on {tuple(batch.images.shape)} " \
           f"{batch.images.dtype}"  # fmt: skip
    try:
        with quiet():
            generator = torch.Generator().manual_seed(seed)
            for transform in transforms:
                out = transform.call_batch(out, generator)
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{what} raised {type(error).__name__}: {error}")
        return None
    check_targets(census, category, transforms[0], batch, out, what)
    after = (batch.images, batch.masks, batch.labels)
    if not all(a is None or torch.equal(a, b) for a, b in zip(after, before, strict=True)):
        census.fail(category, f"{what}: the input batch was modified")
    return out


@st.composite
def target_batches(draw):
    images = draw(float_images())
    masks = None
    width = draw(st.sampled_from([None, *MASK_WIDTHS]))
    if width is not None:
        dtype, extreme = MASK_WIDTHS[width]
        labels = torch.randint(0, 3, (len(images), 1, *images.shape[2:]),
                               generator=torch.Generator().manual_seed(1))  # fmt: skip
        masks = torch.where(labels == 2, extreme, labels).to(dtype)
    kind = draw(st.sampled_from(LABEL_KINDS))
    return Batch(images, masks, labels_of(kind, len(images)))


@settings(FUZZ, max_examples=600)
@given(data=st.data(), name=st.sampled_from(KAUG_CATALOGUE), batch=target_batches(),
       seed=st.integers(0, 2**32))  # fmt: skip
def test_the_catalogue_keeps_its_promises_on_every_target(census, data, name, batch, seed):
    category = "catalogue x dtypes x targets"
    census.tried[category] += 1
    config = data.draw(catalogue_configs(name))
    try:
        with quiet():
            transform = registered_transforms()[name](**config)
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{name}({config!r}) raised {type(error).__name__}: {error}")
        return
    run_catalogue_case(census, category, [transform], batch, seed)


FUSABLE = ["RandomCrop", "CenterCrop", "RandomResizedCrop", "RandomPerspective",
           "RandomElasticTransform", "RandAugment", "TrivialAugmentWide", "CutMix",
           "ColorJitter", "RandomErosion", "RandomEqualize", "MixUp"]  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(data=st.data(), names=st.lists(st.sampled_from(FUSABLE), min_size=1, max_size=4),
       keras=st.fixed_dictionaries({}, optional={"rotation_range": st.floats(0, 90),
                                                 "zoom_range": st.floats(0, 0.5),
                                                 "horizontal_flip": st.booleans(),
                                                 "fill_mode": st.sampled_from(["constant", "wrap"]),
                                                 "brightness_range": pair(0.5, 1.5)}),
       batch=target_batches(), seed=st.integers(0, 2**32))  # fmt: skip
def test_fused_runs_carry_every_target(census, data, names, keras, batch, seed):
    """Runs of transforms through the pipeline (the Keras stage fused with the
    geometric run after it), with masks and labels: exact masks, no NaN, no crash."""
    category = "fused runs x targets"
    census.tried[category] += 1
    try:
        with quiet():
            configs = [(n, data.draw(catalogue_configs(n))) for n in names]
            transforms = [registered_transforms()[n](**config) for n, config in configs]
            datagen = ImageDataGenerator(device="cpu", transforms=transforms, **keras)
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{names} {keras} raised {type(error).__name__}: {error}")
        return
    before = [t.clone() for t in (batch.images, batch.masks, batch.labels) if t is not None]
    what = f"{names} + {keras} on {tuple(batch.images.shape)} {batch.images.dtype}"
    try:
        with quiet():
            out = datagen._pipeline.augment_batch(batch, torch.Generator().manual_seed(seed))
    except Exception as error:
        if not keras_worded(error):
            census.fail(category, f"{what} raised {type(error).__name__}: {error}")
        return
    if torch.isnan(out.images.float()).any():
        census.fail(category, f"{what}: NaN from finite images")
    if batch.masks is not None and (
        out.masks.dtype != batch.masks.dtype
        or not set(out.masks.unique().tolist()) <= set(batch.masks.unique().tolist()) | {0}
    ):
        census.fail(category, f"{what}: mask values or dtype changed")
    after = [t for t in (batch.images, batch.masks, batch.labels) if t is not None]
    if not all(torch.equal(a, b) for a, b in zip(after, before, strict=True)):
        census.fail(category, f"{what}: the input batch was modified")


@settings(FUZZ, max_examples=200)
@given(name=st.sampled_from(["MixUp", "CutMix"]), kind=st.sampled_from(LABEL_KINDS[1:]),
       num_classes=st.sampled_from([None, 1, 3]), batch=st.integers(0, 5))  # fmt: skip
def test_mixed_labels_have_one_shape_at_every_p(census, name, kind, num_classes, batch):
    """MixUp/CutMix either refuse a label kind in Keras wording or serve one label shape
    whatever `p` (0, 0.5, 1), sums and values in range."""
    category = "mixing x label kinds"
    census.tried[category] += 1
    images = torch.rand(batch, 3, 6, 6) * 255
    labels = labels_of(kind, batch)
    shapes = set()
    for p in (0.0, 0.5, 1.0):
        transform = registered_transforms()[name](num_classes=num_classes, p=p)
        try:
            out = transform.call_batch(Batch(images, labels=labels), torch.Generator())
        except Exception as error:
            if not keras_worded(error):
                census.fail(category, f"{name} {kind} p={p} raised {type(error).__name__}: {error}")
            return
        shapes.add(tuple(out.labels.shape))
        if not out.labels.is_floating_point() or torch.isnan(out.labels).any():
            census.fail(category, f"{name} {kind} p={p}: labels {out.labels!r:.80}")
        if len(out.labels) and (out.labels.min() < 0 or out.labels.max() > 1 + 1e-6):
            census.fail(category, f"{name} {kind} p={p}: labels outside [0, 1]")
    if len(shapes) != 1:
        census.fail(category, f"{name} {kind} num_classes={num_classes}: shapes {shapes} by p")


BROKEN_FILES = st.sampled_from(["empty", "truncated", "garbage", "corrupt member", "bomb",
                                "not an array", "bad png"])  # fmt: skip


def broken_file(folder, kind, cut):
    """A file of the given kind of damage; `cut` picks where a truncation falls."""
    from PIL import Image

    if kind == "bomb":  # a PNG whose header promises more pixels than PIL will decode
        path = folder / "bomb.png"
        Image.new("1", (15000, 15000)).save(path)
        return path
    if kind == "bad png":
        path = folder / "bad.png"
        Image.new("L", (8, 8)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: max(8, int(len(data) * cut))])
        return path
    path = folder / ("x.npy" if kind in ("empty", "not an array") else "x.npz")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not an array":
        path.write_bytes(b"\x93NUMPY garbage header")
    else:
        np.savez_compressed(path, x=np.arange(6 * 8 * 8, dtype="uint8").reshape(6, 8, 8))
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            data = data[: int(len(data) * cut)]
        elif kind == "garbage":
            data = bytearray(b"PK\x03\x04" + bytes(range(256)) * 2)
        else:  # flip bytes inside the member's compressed data
            middle = len(data) // 3
            data[middle : middle + 16] = bytes(16)
        path.write_bytes(bytes(data))
    return path


@settings(FUZZ, max_examples=60)
@given(kind=BROKEN_FILES, cut=st.floats(0.05, 0.95))
def test_the_cli_refuses_broken_files_in_one_line(census, tmp_path_factory, kind, cut):
    """`kaug preview` on a broken file: exit status 2 and one line naming the file,
    never a traceback."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from kaug.cli import main

    category = "CLI x broken files"
    census.tried[category] += 1
    folder = tmp_path_factory.mktemp("broken")
    path = broken_file(folder, kind, cut)
    err = io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(io.StringIO()), quiet():
            code = main(["preview", str(path), "-o", str(folder / "grid.png")])
    except Exception as error:
        census.fail(category, f"{kind}: raised {type(error).__name__}: {error}")
        return
    lines = err.getvalue().strip().splitlines()
    if code == 0 and not lines and (folder / "grid.png").exists():
        return  # the damage left a readable image (a PNG cut after its pixels)
    if code != 2 or len(lines) != 1 or "error" not in lines[0]:
        census.fail(category, f"{kind}: exit {code}, stderr {err.getvalue()!r:.200}")
