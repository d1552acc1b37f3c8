"""The shared boundary checks: one TypeError/ValueError contract, numpy scalars accepted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffusion.validation import check_array, check_bool, check_choice, check_int, check_real


def test_check_int_types_and_bounds():
    assert check_int("n", np.int64(64), 1) == 64 and type(check_int("n", np.int64(64))) is int
    for bad in (True, 1.0, "3", None):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int("n", bad)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        check_int("n", 0, 1)
    with pytest.raises(ValueError, match=r"in \[1, 3\]"):
        check_int("n", 4, 1, 3)


def test_check_real_rejects_non_finite_and_respects_open_bounds():
    assert check_real("lr", np.float32(0.5), 0, low_open=True) == 0.5
    assert check_real("wd", 0, 0) == 0.0
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 0.0"):
        check_real("lr", 0.0, 0, low_open=True)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            check_real("x", bad)
    with pytest.raises(TypeError, match="real number"):
        check_real("x", False)
    with pytest.raises(ValueError, match="<= 1"):
        check_real("p", 1.5, 0, 1)
    with pytest.raises(ValueError, match="x must be a finite number, got an integer of 1329"):
        check_real("x", 10**400)  # beyond the float range: a ValueError, not OverflowError


def test_check_choice_bool_array():
    assert check_choice("law", "log", ("log", "power")) == "log"
    with pytest.raises(ValueError, match=r"law must be one of \['log', 'power'\], got 'exp'"):
        check_choice("law", "exp", ("log", "power"))
    with pytest.raises(ValueError, match="one of"):
        check_choice("law", ["unhashable"], ("log",))
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(TypeError, match="True or False"):
        check_bool("flag", 1)
    assert check_array("x", [1, 2], ndim=1).dtype == float
    with pytest.raises(ValueError, match="2-dimensional"):
        check_array("x", [1, 2], ndim=2)
    with pytest.raises(ValueError, match="finite"):
        check_array("x", [1, np.nan])
    with pytest.raises(TypeError, match="array of float"):
        check_array("x", ["a"])


@given(st.integers(-(10**6), 10**6))
def test_numpy_and_python_integers_agree(n):
    assert check_int("n", np.int64(n)) == check_int("n", n) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_pass_through_unchanged(x):
    assert check_real("x", x) == x


def test_walk_config_follows_the_contract():
    """numpy integers are the ints they hold (same run folder); a float count or a bool
    half-width is a TypeError, a negative seed or a t_max beyond floats a ValueError."""
    from diffusion.experiments import WalkConfig
    from diffusion.records import config_hash

    assert config_hash(WalkConfig(walkers=np.int64(5), t_max=100)) == config_hash(
        WalkConfig(walkers=5, t_max=100)
    )
    for kwargs, exc, text in (
        ({"walkers": 2.0}, TypeError, "walkers must be an integer"),
        ({"half_width": True}, TypeError, "half_width must be an integer"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
        ({"t_max": 10**400}, ValueError, "t_max must be a finite number"),
        ({"potential": "gauss"}, ValueError, "potential must be one of"),
    ):
        with pytest.raises(exc, match=text):
            WalkConfig(**kwargs)
