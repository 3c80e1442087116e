"""The contract every batch transform follows, its registry and its serialization."""

import importlib
import inspect

import torch

from kaug._checks import check_fraction, invalid
from kaug.sampling import bernoulli

_REGISTRY = {}


def register_transform(cls=None, *, name=None):
    """Class decorator: make a `BatchTransform` reloadable from a saved config.

    Args:
        cls: the class (when used as a bare decorator).
        name: the name it is saved under; default the class name.
    """

    def register(cls):
        key = name or cls.__name__
        existing = _REGISTRY.get(key)
        if existing is not None and _qualified(existing) != _qualified(cls):
            raise invalid(
                "name", key, f"is already registered for {_qualified(existing)}; pick another"
            )
        _REGISTRY[key] = cls
        cls.registered_name = key
        return cls

    return register(cls) if cls is not None else register


def registered_transforms():
    """{name: class} of every registered transform."""
    return dict(_REGISTRY)


def serialize(transform):
    """A transform as a JSON-friendly {"class_name", "config"} dict."""
    name = getattr(type(transform), "registered_name", None)
    if _REGISTRY.get(name) is not type(transform):
        raise invalid(
            "transform",
            transform,
            "must be registered with @kaug.transforms.register_transform to be saved",
        )
    return {"class_name": name, "config": transform.get_config()}


def deserialize(data):
    """The transform `serialize` described."""
    name = data.get("class_name")
    if name not in _REGISTRY:
        raise invalid(
            "class_name",
            name,
            "is not a registered transform: import the module that defines it first",
        )
    return _REGISTRY[name].from_config(data["config"])


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


class BatchTransform:
    """A random augmentation of a whole (B, C, H, W) batch.

    Subclasses implement `sample` and `apply`; the rest is shared:

    - `sample(shape, generator)` draws every per-image parameter at once on
      `generator.device` and returns a dict of tensors whose first dimension is
      the batch;
    - `apply(x, params)` is pure: the same params give the same output, `x` is
      never modified, and dtype and device are kept.

    The base class applies the transform to each image with probability `p`
    (the draw is the params entry "applied"), and gives `get_config` (the
    constructor arguments, read from attributes of the same names) and
    `from_config`. Register subclasses with `@register_transform` so saved
    generators reload them.

    Example:
        >>> @register_transform
        ... class RandomInvert(BatchTransform):
        ...     def __init__(self, high=255.0, p=0.5):
        ...         super().__init__(p=p)
        ...         self.high = high
        ...     def apply(self, x, params):
        ...         return self.high - x
    """

    def __init__(self, p=1.0):
        self.p = check_fraction("p", p)

    def sample(self, shape, generator):
        """Per-image parameters for a batch of `shape`, drawn on the generator's device."""
        return {}

    def apply(self, x, params):
        """Transform every image of `x` with its parameters (all images: `p` is handled)."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(x, params)")

    def draw(self, shape, generator):
        """`sample` plus which images the transform applies to."""
        params = dict(self.sample(tuple(shape), generator))
        if 0 < self.p < 1:
            params["applied"] = bernoulli((shape[0],), generator, self.p)
        return params

    def transform(self, x, params):
        """Apply with `params` from `draw`; images not drawn pass through unchanged."""
        if self.p == 0 or x.shape[0] == 0:
            return x
        out = self.apply(x, params)
        applied = params.get("applied")
        return out if applied is None else torch.where(applied.view(-1, 1, 1, 1), out, x)

    def __call__(self, x, generator):
        return self.transform(x, self.draw(x.shape, generator))

    def get_config(self):
        """The constructor arguments, read from the attributes of the same names."""
        config = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "args", "kwargs"):
                continue
            if not hasattr(self, name):
                raise NotImplementedError(
                    f"{type(self).__name__} stores no attribute `{name}`: keep each "
                    "constructor argument as an attribute of the same name, or override "
                    "get_config()"
                )
            config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@register_transform
class BatchFunction(BatchTransform):
    """A plain function of a (B, C, H, W) float batch, as a transform.

    Args:
        function: `f(x) -> x'`, same shape, dtype and device. To be saved it must
            be importable by name (a module-level function, not a lambda).
        p: probability of applying it to each image.
    """

    def __init__(self, function, p=1.0):
        super().__init__(p=p)
        if isinstance(function, str):
            module, _, name = function.partition(":")
            function = getattr(importlib.import_module(module), name)
        if not callable(function):
            raise invalid("function", function, "must be callable")
        self.function = function

    def apply(self, x, params):
        return self.function(x)

    def get_config(self):
        name = f"{self.function.__module__}:{self.function.__qualname__}"
        if "<" in name:
            raise invalid("function", self.function, "must be a module-level function to be saved")
        return {"function": name, "p": self.p}
