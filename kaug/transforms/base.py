"""The contract every batch transform follows, its registries and its serialization.

Loading is safe by default, like Keras's `safe_mode`: a saved configuration can
only name transforms and functions registered with kaug (kaug's own, or the
user's through `register_transform` / `register_function`). Importing a module a
file names, which runs that module's code, needs `safe_mode=False`.
"""

import contextlib
import contextvars
import dataclasses
import importlib
import inspect

import torch

from kaug._checks import check_bool, check_fraction, invalid
from kaug.batch import TARGETS
from kaug.sampling import bernoulli

_REGISTRY = {}
_FUNCTIONS = {}
_SAFE_MODE = contextvars.ContextVar("kaug_safe_mode", default=True)


@contextlib.contextmanager
def safe_mode_scope(safe_mode=True):
    """Within the block, names in configurations resolve through the registries only
    (`safe_mode=True`, the default everywhere) or may import modules (`False`)."""
    token = _SAFE_MODE.set(bool(safe_mode))
    try:
        yield
    finally:
        _SAFE_MODE.reset(token)


def register_function(function=None, *, name=None):
    """Decorator: let saved generators name a plain function (`BatchFunction`).

    Args:
        function: the function (when used as a bare decorator).
        name: the name it is saved under; default "module:qualname".

    Example:
        >>> @register_function
        ... def invert(x):
        ...     return 255.0 - x
    """

    def register(function):
        if not callable(function):
            raise invalid("function", function, "must be callable")
        key = name or _function_name(function)
        existing = _FUNCTIONS.get(key)
        if existing is not None and existing is not function:
            raise invalid("name", key, f"is already registered for {existing!r}; pick another")
        _FUNCTIONS[key] = function
        return function

    return register(function) if function is not None else register


def registered_functions():
    """{name: function} of every registered function."""
    return dict(_FUNCTIONS)


def _function_name(function):
    return f"{getattr(function, '__module__', None)}:{getattr(function, '__qualname__', None)}"


def function_name(function, argument="function"):
    """The name a function is saved under: its registered name, else "module:qualname"
    (which only `safe_mode=False` will import); a lambda or local function has none."""
    for name, registered in _FUNCTIONS.items():
        if registered is function:
            return name
    name = _function_name(function)
    if "<" in name:
        raise invalid(
            argument,
            function,
            "must be a module-level function (or one registered with "
            "@kaug.transforms.register_function) to be part of a config",
        )
    return name


def resolve_function(name, argument="function"):
    """The function a saved name refers to: registered, or (outside safe mode) imported."""
    if not isinstance(name, str):
        raise invalid(argument, name, "must be a function or the name of a registered one")
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    if _SAFE_MODE.get():
        raise invalid(
            argument,
            name,
            "is not a registered function. Loading refuses to import modules named in a "
            "file, as that runs their code: register the function with "
            "`@kaug.transforms.register_function` before loading, or, if you trust the "
            "file, pass `safe_mode=False`",
        )
    module, _, attribute = name.partition(":")
    try:
        function = importlib.import_module(module)
        for part in attribute.split("."):
            function = getattr(function, part)
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        raise invalid(argument, name, f"could not be imported ({error})") from error
    if not callable(function):
        raise invalid(argument, name, "must name a callable")
    return function


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


def deserialize(data, safe_mode=None):
    """The transform `serialize` described.

    Args:
        data: {"class_name": a registered name, "config": its arguments}.
        safe_mode: True resolves function names through `register_function`
            only; False lets a `BatchFunction` import the module its config
            names. Default: the enclosing `safe_mode_scope`'s, else True.
    """
    if safe_mode is None:
        safe_mode = _SAFE_MODE.get()
    if not isinstance(data, dict) or set(data) != {"class_name", "config"}:
        raise invalid("transform", data, 'must be a {"class_name": ..., "config": {...}} dict')
    name, config = data["class_name"], data["config"]
    if not isinstance(name, str) or name not in _REGISTRY:
        raise invalid(
            "class_name",
            name,
            "is not a registered transform: import the module that defines it (and "
            "decorate the class with @kaug.transforms.register_transform) first",
        )
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise invalid("config", config, f"must be a dict of {name}'s arguments")
    with safe_mode_scope(safe_mode):
        try:
            return _REGISTRY[name].from_config(config)
        except TypeError as error:  # unknown or missing arguments
            raise invalid("config", config, f"must hold {name}'s arguments ({error})") from error


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

    #: The `Batch` fields the transform needs: a batch without one is refused by name.
    reads = ("images",)
    #: The `Batch` fields it may change; every other field must come out as it went in.
    writes = ("images",)
    #: Whether it can move pixels (a geometric step). Such a transform moves every
    #: target a batch carries (it lists them in `writes`); a batch with a target it
    #: cannot move is refused by name, never served with the target left behind.
    moves_pixels = False

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

    def apply_batch(self, batch, params):
        """Transform a whole `kaug.batch.Batch` (images, masks, labels, sample weights).

        The default transforms the images only (`apply`). Override it in a
        transform that moves masks with the images, mixes labels, or changes the
        image size; return `batch.replace(...)` with what changed, and declare the
        fields in `reads` and `writes`. A transform that changes the size applies
        to every image (p=1), unless, like the `GeometricTransform`s, it gives the
        images not drawn an output of the new size itself.
        """
        return batch.replace(images=self.apply(batch.images, params))

    def transform_batch(self, batch, params):
        """`apply_batch` with `params` from `draw`; images not drawn pass unchanged."""
        if self.p == 0 or batch.images.shape[0] == 0:
            return batch
        out = self.apply_batch(batch, params)
        applied = params.get("applied")
        if applied is None:
            return out
        if out.images.shape[2:] != batch.images.shape[2:]:
            raise invalid("p", self.p, "must be 1 for a transform that changes the image size")
        return out.where(applied, batch)

    def call_batch(self, batch, generator):
        """Draw parameters for `batch` and transform it, holding the transform to the
        fields it declares (`reads`, `writes`)."""
        name = type(self).__name__
        missing = [field for field in self.reads if getattr(batch, field) is None]
        if missing:
            raise invalid(
                "transforms", name, f"needs batches with {', '.join(missing)} (it reads them)"
            )
        self.check_targets(batch)
        out = self.transform_batch(batch, self.draw(batch.images.shape, generator))
        changed = [
            field.name
            for field in dataclasses.fields(batch)
            if field.name not in self.writes
            and getattr(out, field.name) is not getattr(batch, field.name)
        ]
        if changed:
            raise invalid(
                "transforms",
                name,
                f"changed {', '.join(changed)}, which it does not declare in `writes` "
                f"({', '.join(self.writes)})",
            )
        return out

    def check_targets(self, batch):
        """Refuse, by name, a batch carrying a target this transform would leave behind
        while it moves the pixels."""
        if not self.moves_pixels:
            return
        carried = [field for field in TARGETS if getattr(batch, field) is not None]
        stranded = [field for field in carried if field not in self.writes]
        if stranded:
            name, targets = type(self).__name__, " and ".join(stranded)
            raise invalid(
                "transforms",
                name,
                f"holds {name}, which moves pixels but cannot move the batch's {targets} with "
                f"them: leave it out of a pipeline that carries {targets}",
            )

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
        function: `f(x) -> x'`, same shape, dtype and device; or the name of a
            function registered with `register_function`. To be saved it must
            be registered, or importable by name (a module-level function, not a
            lambda) for loading with `safe_mode=False`.
        p: probability of applying it to each image.
        moves_pixels: say True for a function that moves pixels (a flip, a
            shift): it sees the images only, so a batch carrying masks is then
            refused instead of served with its masks left behind.
    """

    def __init__(self, function, p=1.0, moves_pixels=False):
        super().__init__(p=p)
        if isinstance(function, str):
            function = resolve_function(function)
        if not callable(function):
            raise invalid("function", function, "must be callable")
        self.function = function
        self.moves_pixels = check_bool("moves_pixels", moves_pixels)

    def apply(self, x, params):
        return self.function(x)

    def get_config(self):
        return {
            "function": function_name(self.function),
            "p": self.p,
            "moves_pixels": self.moves_pixels,
        }
