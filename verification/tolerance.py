"""Rounding tolerances for float64 checks, one rule per tolerance class.

The classes follow first-order rounding-error analysis of the operations involved, with
generous constant factors (``docs/theory/deep_linear.md``, section "Tolerances"):

* U, update-path identities: ``64 u S`` with ``S`` the accumulated scale of the update path;
* P, pseudo-inverse and projector identities: ``1024 u kappa S``;
* I, inequalities: ``1024 u (|lhs| + |rhs| + S)`` added to the right side;

where ``u = 2**-53`` is the unit roundoff. The constants cover the dimension factors of the
matrix products for the sizes used here (dimensions up to a few hundred); a check on larger
problems passes ``dims`` so the tolerance grows with ``sqrt`` of the inner dimension.
"""

from __future__ import annotations

import math

UNIT_ROUNDOFF = 2.0**-53
U_FACTOR = 64.0
P_FACTOR = 1024.0
I_FACTOR = 1024.0


def _dim_factor(dims: int) -> float:
    # Inner products of length k have a worst-case error ~k u and a typical one ~sqrt(k) u; the
    # class constants already cover k <= 64, beyond that the typical growth is kept.
    return max(1.0, math.sqrt(dims / 64.0))


def update_path(scale: float, dims: int = 1) -> float:
    """Class U tolerance ``64 u S``."""
    return U_FACTOR * UNIT_ROUNDOFF * float(scale) * _dim_factor(dims)


def pseudo_inverse(scale: float, kappa: float = 1.0, dims: int = 1) -> float:
    """Class P tolerance ``1024 u kappa S``."""
    return P_FACTOR * UNIT_ROUNDOFF * float(kappa) * float(scale) * _dim_factor(dims)


def inequality(lhs: float, rhs: float, scale: float = 0.0, dims: int = 1) -> float:
    """Class I allowance ``1024 u (|lhs| + |rhs| + S)``."""
    return I_FACTOR * UNIT_ROUNDOFF * (abs(lhs) + abs(rhs) + abs(scale)) * _dim_factor(dims)
