"""Input validation shared by the dynamics and bounds modules.

Every public function in the project validates its arguments through these helpers so that a bad
input fails with a ``ValueError`` that names the argument and the reason, instead of surfacing as
a NaN or an opaque broadcasting error several calls later.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_matrix(name: str, value, *, ndim: tuple[int, ...] = (2,)) -> np.ndarray:
    """Return ``value`` as a finite float64 array with one of the allowed ``ndim``.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : array_like
        The array to check.
    ndim : tuple of int
        Allowed numbers of dimensions (2 for a matrix, 3 for a batch of matrices).

    Returns
    -------
    numpy.ndarray
        A float64 view or copy of ``value``.

    Raises
    ------
    ValueError
        If the array has the wrong number of dimensions, is empty, or has non-finite entries.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real array, got {type(value).__name__}") from exc
    if arr.ndim not in ndim:
        allowed = " or ".join(str(k) for k in ndim)
        raise ValueError(f"{name}: expected an array with {allowed} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite entries (NaN or inf)")
    return arr


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, requiring ``value >= minimum``.

    Raises
    ------
    ValueError
        If ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def real(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a finite float, optionally bounded below.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : float
        The number to check.
    minimum : float, optional
        Lower bound.
    strict : bool
        If true the bound is strict (``value > minimum``).

    Raises
    ------
    ValueError
        If ``value`` is not a finite real number or violates the bound.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if minimum is not None:
        if strict and not out > minimum:
            raise ValueError(f"{name}: must be > {minimum}, got {value!r}")
        if not strict and not out >= minimum:
            raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")
    return out


def choice(name: str, value: str, options) -> str:
    """Return ``value`` if it is one of ``options``; raise a ``ValueError`` naming them otherwise."""
    if value not in options:
        raise ValueError(f"{name}: must be one of {sorted(options)}, got {value!r}")
    return value
