"""Two-layer DIP network with both layers trained (spec ``dip.md`` §9.7, extension ``train_V=True``).

The generator is the one of :mod:`dynamics.dip_two_layer`, ``g(u, W, V) = V phi(W u)/sqrt(k)``, but the
trained parameter is ``theta = (W, V)``, flattened as ``(vec(W), vec(V))`` (both row-major), so the
Jacobian ``J(theta) = [J_W | J_V]`` is ``n x (k d + n k)`` with

* ``J_W = (V diag(phi'(z))/sqrt(k)) (x) u^T`` (as for ``V`` fixed, Lemma D1(i)) and
* ``J_V = I_n (x) phi(z)^T/sqrt(k)`` (``dg_j/dV_{jl} = phi(z_l)/sqrt(k)``),

hence the Gram matrix of §9.7,
``K(theta) = ||u||^2/k V diag(phi'(z)^2) V^T + ||phi(z)||^2/k I_n``.

The explicit Jacobian (:func:`jacobian_dense`) is for tests on small sizes; the Gram matrix and the
Jacobian-vector product never form it. This module never imports ``bounds`` or ``verification``.
"""

from __future__ import annotations

import math

import numpy as np

from dynamics._validate import as_matrix
from dynamics.dip_two_layer import SIGMA_FLOOR_RATIO, DIPInstance, activation


def _parameters(inst: DIPInstance, W, V) -> tuple[np.ndarray, np.ndarray]:
    """``(W, V)`` as validated float arrays, defaulting to the initialization of ``inst``."""
    W = inst.W0 if W is None else as_matrix("W", W)
    V = inst.V if V is None else as_matrix("V", V)
    if W.shape != inst.W0.shape:
        raise ValueError(f"W: expected shape {inst.W0.shape}, got {W.shape}")
    if V.shape != inst.V.shape:
        raise ValueError(f"V: expected shape {inst.V.shape}, got {V.shape}")
    return W, V


def generator(inst: DIPInstance, W=None, V=None) -> np.ndarray:
    """``g(u, W, V) = V phi(W u)/sqrt(k)``; ``W``, ``V`` default to ``inst.W0``, ``inst.V``.

    Raises
    ------
    ValueError
        On non-finite entries or shapes other than those of ``inst.W0`` and ``inst.V``.
    """
    W, V = _parameters(inst, W, V)
    return V @ activation(inst.activation).phi(W @ inst.u) / math.sqrt(inst.k)


def jvp(inst: DIPInstance, dW, dV, W=None, V=None) -> np.ndarray:
    """``J(theta)(dW, dV) = (V (phi'(z) * dW u) + dV phi(z))/sqrt(k)`` without forming ``J``.

    Raises
    ------
    ValueError
        On non-finite entries or mismatched shapes.
    """
    W, V = _parameters(inst, W, V)
    dW = as_matrix("dW", dW)
    dV = as_matrix("dV", dV)
    if dW.shape != W.shape or dV.shape != V.shape:
        raise ValueError(f"dW, dV: expected shapes {W.shape}, {V.shape}, got {dW.shape}, {dV.shape}")
    act = activation(inst.activation)
    z = W @ inst.u
    return (V @ (act.dphi(z) * (dW @ inst.u)) + dV @ act.phi(z)) / math.sqrt(inst.k)


def jacobian_dense(inst: DIPInstance, W=None, V=None) -> np.ndarray:
    """The explicit ``n x (k d + n k)`` Jacobian ``[J_W | J_V]`` (row-major ``vec(W)``, ``vec(V)``).

    For tests on small sizes only (``n (k d + n k)`` entries).
    """
    W, V = _parameters(inst, W, V)
    act = activation(inst.activation)
    z = W @ inst.u
    sqk = math.sqrt(inst.k)
    J_W = np.kron(V * act.dphi(z) / sqk, inst.u[None, :])
    J_V = np.kron(np.eye(inst.n), act.phi(z)[None, :] / sqk)
    return np.hstack([J_W, J_V])


def gram(inst: DIPInstance, W=None, V=None) -> np.ndarray:
    """``K(theta) = ||u||^2/k V diag(phi'(z)^2) V^T + ||phi(z)||^2/k I_n`` (spec §9.7), ``n x n``."""
    W, V = _parameters(inst, W, V)
    act = activation(inst.activation)
    z = W @ inst.u
    Vs = V * act.dphi(z)
    phi = act.phi(z)
    return (float(inst.u @ inst.u) * (Vs @ Vs.T) + float(phi @ phi) * np.eye(inst.n)) / inst.k


def sigma_min_jacobian(inst: DIPInstance, W=None, V=None) -> float:
    """``sigma_min(J(theta)) = sqrt(lambda_min(K(theta)))``, 0 below the ``1e-12 lambda_max`` floor.

    Unlike the ``V``-fixed model this is positive even for ``k < n``: ``K >= ||phi(z)||^2/k I_n``.
    """
    lam = np.linalg.eigvalsh(gram(inst, W, V))
    if lam[0] < SIGMA_FLOOR_RATIO * lam[-1]:
        return 0.0
    return float(math.sqrt(max(lam[0], 0.0)))
