"""Polishing a gradient-descent end point to a stationary point of the deep-linear objective.

The stationarity-based checks (class G of the test methodology) need a point with
``||nabla F||_F <= 1e-11 (1 + ||X||_F ||Y||_2)``. Plain GD gets there only after ``O(log(1/eps) /
(eta lam_bar))`` steps, because the directions that only weight decay controls contract at rate
``rho = 1 - eta lam_bar``; a quasi-Newton polish started at the GD end point finishes the job.

L-BFGS compares objective values in its line search. Near a stationary point the decrease per step
is ``~ ||nabla F||^2 / curvature``, far below the float64 resolution ``u |F|`` of ``F`` itself, so a
plain polish stalls at ``||nabla F|| ~ sqrt(u |F| curvature)``. Each polish round therefore minimizes
the *increment* ``F(A + delta) - F(A)`` over ``delta`` for an anchor ``A``, evaluated by a formula
whose rounding error is proportional to ``||delta||`` (telescoped product differences), and the
anchor moves to the round's end point before the next round.

This is training code: it imports only :mod:`dynamics`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from dynamics import deep_linear as dl
from dynamics._validate import as_matrix, positive_int, real

STATIONARITY_FACTOR = 1e-11
"""Class G target: ``||nabla F||_F <= STATIONARITY_FACTOR * (1 + ||X||_F ||Y||_2)``."""


@dataclasses.dataclass
class PolishResult:
    """Outcome of :func:`polish_stationary`.

    Attributes
    ----------
    weights : list of ndarray
        The polished weights ``W_1, ..., W_L``.
    grad_norm : float
        ``||nabla F||_F`` at the polished weights, evaluated on the caller's ``(X, Y)``.
    initial_grad_norm : float
        ``||nabla F||_F`` at the starting weights.
    target : float
        The stationarity target the polish aimed for.
    reached : bool
        Whether ``grad_norm <= target``.
    iterations : int
        L-BFGS iterations over all rounds.
    evaluations : int
        Objective/gradient evaluations over all rounds.
    rounds : int
        Number of anchored L-BFGS rounds run.
    displacement : float
        ``(sum_l ||W_l - W_l^start||_F^2)^{1/2}``: how far the polish moved the GD end point.
    message : str
        The last L-BFGS termination message.
    """

    weights: list[np.ndarray]
    grad_norm: float
    initial_grad_norm: float
    target: float
    reached: bool
    iterations: int
    evaluations: int
    rounds: int
    displacement: float
    message: str


def stationarity_target(X: np.ndarray, Y: np.ndarray) -> float:
    """The class G stationarity target ``1e-11 (1 + ||X||_F ||Y||_2)``."""
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    return STATIONARITY_FACTOR * (1.0 + float(np.linalg.norm(X)) * float(np.linalg.norm(Y, 2)))


def _flat_grad_norm(weights, X, Y, lam, a, c) -> float:
    return float(np.sqrt(sum(np.sum(G * G) for G in dl.gradient(weights, X, Y, lam=lam, a=a, c=c))))


class _Increment:
    """``delta -> (F(A + delta) - F(A), nabla F(A + delta))`` with rounding error ``O(u ||delta||)``."""

    def __init__(self, anchor, X, Y, lam, a, c):
        self.anchor = anchor
        self.X, self.Y = X, Y
        self.lam, self.a, self.c = lam, a, c
        self.shapes = [W.shape for W in anchor]
        self.sizes = [W.size for W in anchor]
        # Prefix products A_{l-1:1} (A_{0:1} = I) of the anchor, shared by every evaluation.
        self.prefix = [None]
        for W in anchor[:-1]:
            self.prefix.append(W if self.prefix[-1] is None else W @ self.prefix[-1])
        self.E_anchor = dl.end_to_end(anchor) @ Y - X

    def unpack(self, delta):
        out, i = [], 0
        for shp, sz in zip(self.shapes, self.sizes, strict=True):
            out.append(delta[i:i + sz].reshape(shp))
            i += sz
        return out

    def weights(self, delta):
        return [A + D for A, D in zip(self.anchor, self.unpack(delta), strict=True)]

    def __call__(self, delta):
        D = self.unpack(delta)
        W = [A + Dl for A, Dl in zip(self.anchor, D, strict=True)]
        # M(W) - M(A) = sum_l W_{L:l+1} D_l A_{l-1:1}: every term carries a factor D_l, so the
        # rounding error of the difference is relative to ||D||, not to ||M||.
        L = len(W)
        dMY = np.zeros_like(self.E_anchor)
        for ell in range(L):
            term = D[ell] @ (self.Y if self.prefix[ell] is None else self.prefix[ell] @ self.Y)
            for W_up in W[ell + 1:]:
                term = W_up @ term
            dMY += term
        data = float(np.sum(dMY * (self.E_anchor + 0.5 * dMY)))
        pen = sum(float(np.sum(Dl * (2.0 * A + Dl))) for A, Dl in zip(self.anchor, D, strict=True))
        value = self.a * data + self.c * self.lam * pen
        grads = dl.gradient(W, self.X, self.Y, lam=self.lam, a=self.a, c=self.c)
        return value, np.concatenate([G.ravel() for G in grads])


def polish_stationary(X: np.ndarray, Y: np.ndarray, weights: Sequence[np.ndarray], lam: float,
                      a: float = 1.0, c: float = 1.0, gtol: float = 1e-13, maxiter: int = 5000, *,
                      target: float | None = None, max_rounds: int = 10, maxcor: int = 20
                      ) -> PolishResult:
    """Polish ``weights`` (e.g. a GD end point) to a stationary point of ``F`` with L-BFGS.

    Runs anchored rounds of ``scipy.optimize.minimize(method="L-BFGS-B")`` with the exact gradient
    :func:`dynamics.deep_linear.gradient` until ``||nabla F||_F <= target`` or a round no longer
    reduces the gradient norm. Training uses the exact row-space reduction (D0), which leaves every
    gradient unchanged; the reported gradient norm is evaluated on the caller's ``(X, Y)``.

    Parameters
    ----------
    X, Y : ndarray
        Training signals ``(d, n)`` and measurements ``(m, n)``.
    weights : sequence of ndarray
        Starting weights ``W_1, ..., W_L`` (not modified).
    lam : float
        Weight-decay parameter, ``>= 0``.
    a, c : float
        Loss convention, ``F = a/2 ||W_{L:1} Y - X||_F^2 + c lam sum_l ||W_l||_F^2``.
    gtol : float
        L-BFGS-B's projected-gradient tolerance (largest gradient entry) per round.
    maxiter : int
        Maximum L-BFGS iterations per round.
    target : float, optional
        Stationarity target for ``||nabla F||_F``; default :func:`stationarity_target`.
    max_rounds : int
        Maximum number of anchored rounds.
    maxcor : int
        L-BFGS memory.

    Returns
    -------
    PolishResult
        ``weights`` and the achieved ``grad_norm`` (``reached`` says whether the target was met;
        the caller decides what an unmet target means).

    Raises
    ------
    ValueError
        On invalid input (shapes that do not chain, non-finite entries, bad tolerances).
    """
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"Y: has {Y.shape[1]} columns but X has {X.shape[1]}")
    if len(weights) < 1:
        raise ValueError("weights: need at least one layer")
    ws = [as_matrix(f"weights[{i}]", W).copy() for i, W in enumerate(weights)]
    fan_in = Y.shape[0]
    for i, W in enumerate(ws):
        if W.shape[1] != fan_in:
            raise ValueError(f"weights[{i}]: shape {W.shape} does not chain (expected {fan_in} columns)")
        fan_in = W.shape[0]
    if fan_in != X.shape[0]:
        raise ValueError(f"weights[{len(ws) - 1}]: output dimension {fan_in} differs from d={X.shape[0]}")
    lam = real("lam", lam, minimum=0.0)
    a = real("a", a, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    gtol = real("gtol", gtol, minimum=0.0)
    maxiter = positive_int("maxiter", maxiter)
    max_rounds = positive_int("max_rounds", max_rounds)
    maxcor = positive_int("maxcor", maxcor)
    target = stationarity_target(X, Y) if target is None else real("target", target, minimum=0.0,
                                                                     strict=True)

    Xr, Yr, _ = dl.reduce_columns(X, Y)
    start = [W.copy() for W in ws]
    g0 = _flat_grad_norm(ws, X, Y, lam, a, c)
    best = g0
    iterations = evaluations = rounds = 0
    message = "start point already stationary" if g0 <= target else ""
    while best > target and rounds < max_rounds:
        rounds += 1
        inc = _Increment(ws, Xr, Yr, lam, a, c)
        res = minimize(inc, np.zeros(sum(inc.sizes)), jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter, "gtol": gtol, "ftol": 0.0, "maxcor": maxcor,
                                "maxls": 50})
        iterations += int(res.nit)
        evaluations += int(res.nfev)
        message = str(res.message)
        if not np.all(np.isfinite(res.x)):
            break
        candidate = inc.weights(res.x)
        g = _flat_grad_norm(candidate, X, Y, lam, a, c)
        if not np.isfinite(g):
            break
        # L-BFGS lowers F, not ||nabla F||: keep the round's end point only if it is more
        # stationary. A round that no longer shrinks the gradient by a useful factor has hit the
        # rounding floor of the gradient itself; further rounds would only spin.
        stalled = g > 0.5 * best
        if g < best:
            ws, best = candidate, g
        if stalled:
            break
    grad_norm = best
    disp = float(np.sqrt(sum(np.sum((W - W0) ** 2) for W, W0 in zip(ws, start, strict=True))))
    return PolishResult(weights=ws, grad_norm=grad_norm, initial_grad_norm=g0, target=target,
                        reached=bool(grad_norm <= target), iterations=iterations,
                        evaluations=evaluations, rounds=rounds, displacement=disp, message=message)
