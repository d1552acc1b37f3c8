"""Boundary checks shared by every layer: one contract for bad arguments.

Public functions and frozen configurations validate their inputs with these and inner code
trusts them (scikit-learn's ``check_*`` habit). The contract:

* a value of the wrong *type* raises ``TypeError``, a value of the right type but out of range
  raises ``ValueError``;
* the message names the argument and shows the value (``"lr must be a finite number > 0,
  got -1.0"``);
* numpy scalars count as the Python numbers they hold (``np.int64(64)`` is an int); ``bool``
  is never a number;
* each check returns the value converted to the plain Python type, so configurations hash the
  same whether they were built from numpy or Python values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["check_int", "check_real", "check_choice", "check_bool", "check_array"]


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional).

    Raises
    ------
    TypeError
        When ``value`` is not an integer (``bool`` and floats are not).
    ValueError
        When it lies outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {_range(low, high)}, got {value!r}")
    return value


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the bound itself (``low=0, low_open=True``: positive).

    Raises
    ------
    TypeError
        When ``value`` is not a real number (``bool`` is not).
    ValueError
        When it is NaN, infinite or outside the interval.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range: not a finite number
        raise ValueError(
            f"{name} must be a finite number, got an integer of {value.bit_length()} bits"
        ) from None
    bad = not math.isfinite(value)
    if low is not None:
        bad = bad or value < low or (low_open and value == low)
    if high is not None:
        bad = bad or value > high or (high_open and value == high)
    if bad:
        interval = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name} must be a finite number{interval}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; the message lists them otherwise.

    Raises
    ------
    ValueError
        When ``value`` is not among ``choices``.
    """
    options = tuple(choices)
    try:
        ok = value in options
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (Python or numpy booleans only; 0 and 1 are not booleans).

    Raises
    ------
    TypeError
        When ``value`` is not a boolean.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} ({value!r})")
    return bool(value)


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    finite: bool = True,
    min_size: int = 1,
    dtype: type = float,
) -> np.ndarray:
    """``value`` as a numpy array of ``dtype``, with the required dimension, size and finiteness.

    Raises
    ------
    TypeError
        When it cannot be converted to ``dtype``.
    ValueError
        When its dimension or size is wrong or (``finite``) it holds NaN or infinity.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of {dtype.__name__}, got {value!r}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"{name} must hold at least {min_size} values, got {arr.size}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or infinity in {value!r}")
    return arr


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else ""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return (" " + " and ".join(parts)) if parts else ""
