"""Constants of the both-layers DIP extension (spec ``dip.md`` §9.7, ``train_V=True``) [derived].

With ``theta = (W, V)`` and ``J(theta)(dW, dV) = (V (phi'(z) * dW u) + dV phi(z))/sqrt(k)``:

* **Lipschitz constant on a ball.** For ``theta, theta'`` in ``B(theta_0, rho)``,
  ``||J(theta) - J(theta')|| <= L_J(rho) ||theta - theta'||`` with
  ``L_J(rho) = (2 B_1 ||u|| + B_2 ||u||^2 (c_V + rho))/sqrt(k)``, ``c_V = max_i ||v_i(0)||``. The three terms
  bound ``(V - V')(phi'(z) * dW u)`` (``B_1``), ``V'((phi'(z) - phi'(z')) * dW u)`` (``B_2``, with
  ``max_i ||v'_i|| <= c_V + rho`` on the ball) and ``dV (phi(z) - phi(z'))`` (``B_1``). With ``||u|| = 1``
  (spec §3.1) this is the spec's ``(2 B_1 + B_2 (c_V + rho))/sqrt(k)``.
* **Certificate radius.** ``R_WV`` is the positive root of ``L_J(R) R = sigma_0/2``, i.e. of
  ``2 B_2 ||u||^2 R^2 + 2 (2 B_1 ||u|| + B_2 ||u||^2 c_V) R - sigma_0 sqrt(k) = 0``: on ``B(theta_0, R_WV)``
  Weyl's inequality keeps ``sigma_min(J) >= sigma_0/2``, and Theorem GF holds if ``R' < R_WV``.

No function here runs training; this module does not import ``verification``.
"""

from __future__ import annotations

import math

import numpy as np

from dynamics._validate import as_matrix, positive_int, real


def second_layer_column_norm(V) -> float:
    """``c_V = max_i ||v_i||``, the largest column norm of the initial second layer ``V (n x k)``."""
    V = as_matrix("V", V)
    return float(np.max(np.linalg.norm(V, axis=0)))


def jacobian_lipschitz(rho: float, *, B1: float, B2: float, c_V: float, k: int,
                       u_norm: float = 1.0) -> float:
    """``L_J(rho) = (2 B_1 ||u|| + B_2 ||u||^2 (c_V + rho))/sqrt(k)`` on ``B(theta_0, rho)``.

    Parameters
    ----------
    rho : float
        Radius of the ball around ``theta_0 = (W_0, V_0)``, ``>= 0``.
    B1, B2 : float
        ``sup |phi'|`` and ``sup |phi''|`` (finite: ``phi'`` Lipschitz, so not ReLU).
    c_V : float
        ``max_i ||v_i(0)||`` (:func:`second_layer_column_norm`).
    k : int
        Width.
    u_norm : float
        ``||u||`` (1 under spec §3.1).

    Raises
    ------
    ValueError
        On negative or non-finite constants (``B_2 = inf`` included) or ``k < 1``.
    """
    rho = real("rho", rho, minimum=0.0)
    B1 = real("B1", B1, minimum=0.0)
    B2 = real("B2", B2, minimum=0.0)
    c_V = real("c_V", c_V, minimum=0.0)
    k = positive_int("k", k)
    u_norm = real("u_norm", u_norm, minimum=0.0, strict=True)
    return (2.0 * B1 * u_norm + B2 * u_norm ** 2 * (c_V + rho)) / math.sqrt(k)


def certificate_radius(sigma0: float, *, B1: float, B2: float, c_V: float, k: int,
                       u_norm: float = 1.0) -> float:
    """``R_WV``: the positive root of ``L_J(R) R = sigma_0/2`` (spec §9.7).

    Computed as ``2c/(b + sqrt(b^2 + 4ac))`` with ``a = 2 B_2 ||u||^2``,
    ``b = 2(2 B_1 ||u|| + B_2 ||u||^2 c_V)``, ``c = sigma_0 sqrt(k)``: the textbook form
    ``(-b + sqrt(b^2 + 4ac))/(2a)`` cancels when ``4ac << b^2``.

    Raises
    ------
    ValueError
        If ``sigma0 <= 0``, a constant is negative or non-finite, or ``B_1 = B_2 = 0``.
    """
    sigma0 = real("sigma0", sigma0, minimum=0.0, strict=True)
    B1 = real("B1", B1, minimum=0.0)
    B2 = real("B2", B2, minimum=0.0)
    c_V = real("c_V", c_V, minimum=0.0)
    k = positive_int("k", k)
    u_norm = real("u_norm", u_norm, minimum=0.0, strict=True)
    a = 2.0 * B2 * u_norm ** 2
    b = 2.0 * (2.0 * B1 * u_norm + B2 * u_norm ** 2 * c_V)
    if not b > 0.0:
        raise ValueError("B1, B2: both zero, the Jacobian is constant and every radius works")
    c = sigma0 * math.sqrt(k)
    return 2.0 * c / (b + math.sqrt(b * b + 4.0 * a * c))
