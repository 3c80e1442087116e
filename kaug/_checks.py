"""Argument validation shared by the public classes.

Every error kaug raises for bad input goes through `invalid`, so they all read
like Keras's own: "<what was expected>. Received: name=value".
"""

import numbers

import numpy as np


def invalid(name, value, expected):
    """Return (not raise) the ValueError for a bad argument, in Keras wording."""
    return ValueError(f"`{name}` {expected}. Received: {name}={value!r}")


def check_choice(name, value, choices):
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise invalid(name, value, f"must be one of {options}")
    return value


def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(name, value, minimum=None):
    if not is_number(value) or not np.isfinite(value):
        raise invalid(name, value, "must be a finite number")
    if minimum is not None and value < minimum:
        raise invalid(name, value, f"must be >= {minimum}")
    return value


def check_pair(name, value, minimum=None):
    """A `[lower, upper]` pair of numbers with lower <= upper."""
    if (
        not isinstance(value, (tuple, list, np.ndarray))
        or len(value) != 2
        or not all(is_number(v) and np.isfinite(v) for v in value)
    ):
        raise invalid(name, value, "must be a tuple or list of two floats")
    lower, upper = float(value[0]), float(value[1])
    if lower > upper:
        raise invalid(name, value, "must have lower <= upper")
    if minimum is not None and lower < minimum:
        raise invalid(name, value, f"must have both values >= {minimum}")
    return lower, upper


def check_shift_range(name, value):
    """Keras's shift forms: float (fraction or pixels), int (pixels) or a list."""
    if isinstance(value, (tuple, list, np.ndarray)):
        values = list(np.asarray(value).ravel()) if len(value) else []
        if not values or not all(is_number(v) and np.isfinite(v) for v in values):
            raise invalid(name, value, "must be a float, an int or a non-empty list of numbers")
        return value
    if isinstance(value, bool) or not is_number(value):
        raise invalid(name, value, "must be a float, an int or a non-empty list of numbers")
    return check_number(name, value, minimum=0)


def check_rank(name, x, rank, what):
    """`x` must have `rank` dimensions; the error names its shape."""
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) != rank:
        raise ValueError(f"`{name}` must be {what} (rank {rank}). Received: {name}.shape={shape}")


def check_fraction(name, value):
    """A number in [0, 1] (a probability or a share), as a float."""
    check_number(name, value, minimum=0)
    if value > 1:
        raise invalid(name, value, "must be between 0 and 1")
    return float(value)


def check_int(name, value, minimum=0, allow_none=False):
    """An int >= minimum (or None, when allowed), as an int."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise invalid(name, value, f"must be {kind}" + (" or None" if allow_none else ""))
    return int(value)
