"""Argument validation shared by the public classes.

Every error kaug raises for bad input goes through `invalid`, so they all read
like Keras's own: "<what was expected>. Received: name=value". Numbers may come
as Python numbers, numpy scalars or 0-d arrays; the checks return Python values.
"""

import math
import numbers

import numpy as np

# torch.Generator takes 64-bit seeds; kaug adds per-rank offsets below 2**64.
MAX_SEED = 2**63 - 1
# The largest magnitude a numeric argument may have. Each becomes a float32 value
# (a fill value, a factor, a shift) and meets data of up to the same magnitude: 1e30
# keeps the value itself, and a clamp after any product of two, finite in float32
# (whose largest is 3.4e38). Beyond it is refused, not turned into inf or a torch
# overflow error.
LARGEST = 1e30


def invalid(name, value, expected):
    """Return (not raise) the ValueError for a bad argument, in Keras wording."""
    return ValueError(f"`{name}` {expected}. Received: {name}={value!r}")


def scalar(value):
    """A numpy scalar or 0-d array as the Python value it holds; anything else as is."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def check_choice(name, value, choices):
    try:
        known = value in choices
    except (TypeError, ValueError):  # unhashable, or an array's ambiguous truth value
        known = False
    if not known or isinstance(value, bool) and not any(c is value for c in choices):
        options = ", ".join(repr(c) for c in choices)
        raise invalid(name, value, f"must be one of {options}")
    return value


def is_number(value):
    value = scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value):
    """Whether a real number is finite (an int of any size is)."""
    return isinstance(value, numbers.Integral) or math.isfinite(value)


def is_finite_number(value):
    """A real number (not a bool) that is finite and within +-LARGEST."""
    return is_number(value) and _finite(scalar(value)) and abs(scalar(value)) <= LARGEST


def check_number(name, value, minimum=None, exclusive=False):
    """A finite real number within +-LARGEST (>= minimum, or > minimum when
    `exclusive`), as a Python number."""
    if not is_number(value) or not _finite(scalar(value)):
        raise invalid(name, value, "must be a finite number")
    if not is_finite_number(value):
        raise invalid(name, value, f"must be a number within +-{LARGEST:g}")
    number = scalar(value)
    if minimum is not None and (number <= minimum if exclusive else number < minimum):
        raise invalid(name, value, f"must be {'>' if exclusive else '>='} {minimum}")
    return number


def check_pair(name, value, minimum=None):
    """A `[lower, upper]` pair of numbers with lower <= upper."""
    if (
        not isinstance(value, (tuple, list, np.ndarray))
        or np.ndim(value) != 1
        or len(value) != 2
        or not all(is_finite_number(v) for v in value)
    ):
        raise invalid(name, value, f"must be a tuple or list of two floats within +-{LARGEST:g}")
    lower, upper = float(scalar(value[0])), float(scalar(value[1]))
    if lower > upper:
        raise invalid(name, value, "must have lower <= upper")
    if minimum is not None and lower < minimum:
        raise invalid(name, value, f"must have both values >= {minimum}")
    return lower, upper


def check_shift_range(name, value):
    """Keras's shift forms: float (fraction or pixels), int (pixels) or a list.

    Returns the value as a Python float, int or list of numbers.
    """
    expected = "must be a float, an int or a non-empty list of numbers"
    value = scalar(value)
    if isinstance(value, (tuple, list, np.ndarray)):
        values = [scalar(v) for v in np.asarray(value, dtype=object).ravel()]
        if not values or not all(is_finite_number(v) for v in values):
            raise invalid(name, value, f"{expected} (within +-{LARGEST:g})")
        return values
    if isinstance(value, bool) or not is_number(value):
        raise invalid(name, value, expected)
    return check_number(name, value, minimum=0)


def shape_of(x):
    """`x`'s shape, or None for what has none (ragged nested lists)."""
    try:
        return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    except (ValueError, TypeError):
        return None


def check_rank(name, x, rank, what):
    """`x` must have `rank` dimensions; the error names its shape."""
    shape = shape_of(x)
    if shape is None or len(shape) != rank:
        raise ValueError(f"`{name}` must be {what} (rank {rank}). Received: {name}.shape={shape}")


def check_fraction(name, value):
    """A number in [0, 1] (a probability or a share), as a float."""
    value = check_number(name, value, minimum=0)
    if value > 1:
        raise invalid(name, value, "must be between 0 and 1")
    return float(value)


def check_int(name, value, minimum=0, allow_none=False, maximum=None):
    """An int in [minimum, maximum] (or None, when allowed), as an int."""
    if value is None and allow_none:
        return None
    value = scalar(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        kind = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        if maximum is not None:
            kind += f" <= {maximum}"
        raise invalid(name, value, f"must be {kind}" + (" or None" if allow_none else ""))
    return int(value)


def check_seed(seed, name="seed"):
    """None, or an int seed in [0, 2**63 - 1]."""
    return check_int(name, seed, minimum=0, maximum=MAX_SEED, allow_none=True)


def check_bool(name, value):
    """A flag: a bool (numpy's too) or the ints 0 and 1, as a bool."""
    value = scalar(value)
    if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise invalid(name, value, "must be True or False")
