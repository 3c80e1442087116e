"""`save` / `kaug.load`: loading never runs code a file names, and checks every value.

Keras's `safe_mode` is the model: only registered transforms and functions
resolve; importing a module named in a file needs `safe_mode=False`.
"""

import json
import sys
import zipfile

import numpy as np
import pytest

import kaug
from kaug import ImageDataGenerator
from kaug.transforms import BatchFunction, register_function


@register_function
def brighten(x):
    """A registered batch function: loads in safe mode."""
    return x + 1.0


def write_saved(path, config, **arrays):
    """A file laid out as `save` writes one, with any content."""
    with open(path, "wb") as file:
        np.savez(file, config=np.array(json.dumps(config)), **arrays)
    return path


def function_config(name):
    return {"transforms": [{"class_name": "BatchFunction", "config": {"function": name, "p": 1.0}}]}


@pytest.fixture
def planted_module(tmp_path, monkeypatch):
    """A module beside the saved file whose import would leave a marker file."""
    marker = tmp_path / "module_ran"
    (tmp_path / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef run(x):\n    return x * 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield marker
    sys.modules.pop("planted", None)


@pytest.mark.parametrize("name", ["os:system", "planted:run", "builtins:eval", "subprocess:call"])
def test_load_refuses_unregistered_functions_and_runs_nothing(tmp_path, planted_module, name):
    path = write_saved(tmp_path / "g.npz", function_config(name))
    with pytest.raises(ValueError, match="is not a registered function") as raised:
        kaug.load(path)
    message = str(raised.value)
    assert repr(name) in message and "register_function" in message and "safe_mode=False" in message
    assert not planted_module.exists() and "planted" not in sys.modules


def test_transform_dicts_in_the_constructor_are_safe_too(planted_module):
    with pytest.raises(ValueError, match="is not a registered function"):
        ImageDataGenerator(transforms=function_config("planted:run")["transforms"], device="cpu")
    assert not planted_module.exists()


def test_safe_mode_false_imports_what_the_user_trusts(tmp_path, planted_module):
    path = write_saved(tmp_path / "g.npz", {**function_config("planted:run"), "device": "cpu"})
    loaded = kaug.load(path, safe_mode=False)
    assert planted_module.exists()
    out = loaded.augment(np.full((2, 4, 4, 1), 7.0, "float32"))
    np.testing.assert_array_equal(out, np.zeros((2, 4, 4, 1)))


def test_registered_functions_round_trip_in_safe_mode(tmp_path):
    gen = ImageDataGenerator(transforms=[brighten], device="cpu")
    assert gen.get_config()["transforms"][0]["config"]["function"] == "tests.test_saving:brighten"
    gen.save(tmp_path / "g.npz")
    loaded = kaug.load(tmp_path / "g.npz")
    x = np.zeros((2, 4, 4, 1), "float32")
    np.testing.assert_array_equal(loaded.augment(x), x + 1)
    assert BatchFunction("tests.test_saving:brighten").function is brighten


def test_register_function_refuses_a_second_function_under_one_name():
    with pytest.raises(ValueError, match="is already registered"):
        register_function(lambda x: x, name="tests.test_saving:brighten")


def saved_generator(tmp_path):
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                             rotation_range=10, device="cpu")  # fmt: skip
    gen.fit(np.random.default_rng(0).uniform(0, 255, (8, 6, 6, 1)))
    gen.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as saved:
        return json.loads(str(saved["config"])), {"mean": saved["mean"], "std": saved["std"]}


CRAFTED = {
    "extra array": (lambda c, a: (c, {**a, "device": np.array([1, 2])}), "arrays"),
    "rescale NaN": (lambda c, a: ({**c, "rescale": float("nan")}, a), "Received: rescale=nan"),
    "device array": (lambda c, a: ({**c, "device": [1, 2]}, a), "Received: device="),
    "unknown key": (lambda c, a: ({**c, "run": "os:system"}, a), "Received: config='run'"),
    "mean NaN": (lambda c, a: (c, {**a, "mean": np.full((1, 1, 1), np.nan)}), "finite values"),
    "mean rank 4": (lambda c, a: (c, {**a, "mean": np.zeros((1, 1, 1, 1))}), "rank <= 3"),
    "negative std": (lambda c, a: (c, {**a, "std": -np.ones((1, 1, 1))}), "non-negative"),
    "zca not square": (
        lambda c, a: (c, {**a, "zca_whitening_matrix": np.zeros((3, 4))}),
        "square",
    ),
    "string flag": (lambda c, a: ({**c, "horizontal_flip": "yes"}, a), "True or False"),
    "transforms int": (lambda c, a: ({**c, "transforms": 5}, a), "Received: transforms=5"),
    "unknown transform": (
        lambda c, a: ({**c, "transforms": [{"class_name": "Evil", "config": {}}]}, a),
        "is not a registered transform",
    ),
    "transform bad args": (
        lambda c, a: (
            {**c, "transforms": [{"class_name": "RandomErosion", "config": {"evil": 1}}]},
            a,
        ),
        "RandomErosion's arguments",
    ),
    "preprocessing string": (
        lambda c, a: ({**c, "preprocessing_function": "os:system"}, a),
        r"`preprocessing_function` is not a registered function.*'os:system'",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_files_are_refused_with_the_reason(tmp_path, case):
    config, arrays = saved_generator(tmp_path)
    craft, message = CRAFTED[case]
    crafted_config, crafted_arrays = craft(config, arrays)
    path = write_saved(tmp_path / "crafted.npz", crafted_config, **crafted_arrays)
    with pytest.raises(ValueError, match=message):
        kaug.load(path)


def test_files_that_are_not_saved_generators(tmp_path):
    cases = {
        "missing.npz": None,
        "text.npz": b"not a zip",
        "empty.npz": b"",
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "bare.npy", np.zeros(3))
    np.savez(tmp_path / "objects.npz", config=np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "noconfig.npz", mean=np.zeros(3))
    np.savez(tmp_path / "list.npz", config=np.array("[1, 2]"))
    np.savez(tmp_path / "badjson.npz", config=np.array("{not json"))
    np.savez(tmp_path / "deep.npz", config=np.array("[" * 100_000 + "]" * 100_000))
    good = tmp_path / "good.npz"
    write_saved(good, {"device": "cpu"})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-40])
    names = [*cases, "bare.npy", "objects.npz", "noconfig.npz", "list.npz", "badjson.npz",
             "deep.npz", "truncated.npz"]  # fmt: skip
    for name in names:
        with pytest.raises(ValueError, match=r"Received: path="):
            kaug.load(tmp_path / name)


def test_loading_checks_the_statistics_against_the_images(tmp_path):
    config, arrays = saved_generator(tmp_path)
    path = write_saved(tmp_path / "rgb_mean.npz", config, **{**arrays, "mean": np.zeros((1, 1, 3))})
    loaded = kaug.load(path)  # a (1, 1, 3) mean is fine until it meets 1-channel images
    with pytest.raises(ValueError, match=r"must broadcast over images of shape \(6, 6, 1\)"):
        loaded.standardize(np.zeros((2, 6, 6, 1), "float32"))
    assert loaded.standardize(np.zeros((2, 6, 6, 3), "float32")).shape == (2, 6, 6, 3)


def test_statistics_round_trip_read_only(tmp_path):
    config, arrays = saved_generator(tmp_path)
    loaded = kaug.load(tmp_path / "good.npz")
    np.testing.assert_array_equal(loaded.mean, arrays["mean"])
    with pytest.raises(ValueError, match="read-only"):
        loaded.mean[...] = 0
    assert zipfile.is_zipfile(tmp_path / "good.npz")
