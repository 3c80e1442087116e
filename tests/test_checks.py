"""Argument checks: Keras's wording, Python values out, numpy scalars in."""

import numpy as np
import pytest

from kaug._checks import (
    MAX_SEED,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_pair,
    check_rank,
    check_seed,
    check_shift_range,
    scalar,
    shape_of,
)


def test_scalar_unwraps_numpy_numbers_only():
    assert type(scalar(np.float32(1.5))) is float and type(scalar(np.array(3))) is int
    array = np.array([1, 2])
    assert scalar(array) is array and scalar("a") == "a"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: check_number("r", float("nan")), "`r` must be a finite number. Received: r=nan"),
        (lambda: check_number("r", True), "Received: r=True"),
        (lambda: check_number("r", 0, 0, exclusive=True), "`r` must be > 0. Received: r=0"),
        (lambda: check_pair("z", [2, 1]), "must have lower <= upper"),
        (lambda: check_pair("z", np.zeros((2, 2))), "two floats"),
        (lambda: check_int("n", 1.0), "`n` must be a non-negative int"),
        (lambda: check_int("n", 5, maximum=4), "must be a non-negative int <= 4"),
        (lambda: check_seed(MAX_SEED + 1), "Received: seed="),
        (lambda: check_bool("f", 2), "`f` must be True or False. Received: f=2"),
        (lambda: check_choice("m", np.array([1, 2]), ("a",)), "must be one of 'a'"),
        (lambda: check_choice("m", True, (1, 0)), "Received: m=True"),
        (lambda: check_shift_range("w", []), "non-empty list"),
        (lambda: check_shift_range("w", "0.2"), "Received: w='0.2'"),
        (lambda: check_rank("x", [[1], [2, 3]], 4, "images"), r"Received: x.shape=None"),
        # Finite but beyond what a float32 pixel or factor can carry (LARGEST = 1e30):
        (lambda: check_number("cval", 1e39), "`cval` must be a number within .-1e.30. Rec"),
        (lambda: check_number("cval", -(10**40)), "Received: cval=-1000000000000000"),
        (lambda: check_number("cval", 10**400), "must be a number within"),
        (lambda: check_pair("factor", [1.0, 1e31]), "two floats within"),
        (lambda: check_shift_range("w", [1, 2**200]), "list of numbers (within"),
    ],
)
def test_refusals_read_like_keras(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_accepted_values_come_back_as_python_values():
    assert check_number("r", np.float64(2.5)) == 2.5
    assert check_pair("z", np.array([0.5, 1.5])) == (0.5, 1.5)
    assert check_int("n", np.int64(3)) == 3 and check_seed(None) is None
    assert check_bool("f", np.bool_(True)) is True and check_bool("f", 0) is False
    assert check_shift_range("w", np.array([1, 2])) == [1, 2]
    assert check_shift_range("w", np.array(0.2)) == 0.2
    assert shape_of(np.zeros((2, 3))) == (2, 3) and shape_of([[1], [1, 2]]) is None
    assert check_number("cval", -1e30) == -1e30 and check_number("t", 1e-300) == 1e-300
    assert check_pair("factor", [0, 10**30]) == (0.0, 1e30)
