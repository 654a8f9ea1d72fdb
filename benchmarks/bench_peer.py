"""Peer comparison: the same GD steps written with PyTorch float64 autograd (optional extra ``peer``).

Skipped when PyTorch is absent. Each benchmark times our NumPy step and the PyTorch one in the same
run, at the same sizes and on the same arrays, with both pinned to one thread (our BLAS is pinned by
``benchmarks/conftest.py``; PyTorch by ``torch.set_num_threads(1)``), and records
``torch_over_ours = t_torch / t_ours``. As plain tests (benchmarks disabled) they check that both
steps agree to float64 rounding, so the comparison is between equal computations:

* deep linear, Figure-1 sizes (``d=200, m=100, L=5, d_w=400, n=100``): one GD step with weight decay,
  PyTorch's autograd of ``a/2 ||W_L...W_1 Y - X||^2 + lam_bar/2 sum ||W_l||^2`` then
  ``W -= eta grad`` (the update of ``dynamics.deep_linear``), against our step on the same
  unreduced data and against our default reduced path (``D0``: the ``n`` columns replaced by
  ``rank Y``, an exact reformulation that autograd on the raw data cannot see);
* DIP, ``n=256, m=128, d=64, k=4096`` (MSE): one ``W``-space GD step by autograd of
  ``1/2 ||A V phi(W u)/sqrt(k) - y||^2``, against our ``W``-space step and our ``z``-space step
  (Lemma D0).

Measure with ``python -m pytest benchmarks/bench_peer.py --benchmark-enable --benchmark-only``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _timing import interleaved_best

torch = pytest.importorskip("torch", reason="the peer comparison needs PyTorch (extra 'peer')")

from bench_dip import _large_problem  # noqa: E402
from bench_dln import _fig1_problem, gd_step_inplace  # noqa: E402

from dynamics import dip_two_layer as dip  # noqa: E402
from verification import tolerance as tol  # noqa: E402

REPEATS = 20


def _pin_torch() -> None:
    torch.set_num_threads(1)


def _torch_dln_step(weights, X, Y, eta: float, lam_bar: float, a: float) -> None:
    """One GD step in place on ``torch`` leaf tensors, by autograd."""
    for W in weights:
        W.grad = None
    H = Y
    for W in weights:
        H = W @ H
    loss = 0.5 * a * torch.sum((H - X) ** 2) + 0.5 * lam_bar * sum(torch.sum(W * W) for W in weights)
    loss.backward()
    with torch.no_grad():
        for W in weights:
            W -= eta * W.grad


def _dln_setup():
    inst, X, Y, rhos, gammas = _fig1_problem(100, False)
    eta, lam_bar, a = float(inst.eta), float(inst.lam_bar), float(inst.a)
    tw = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in inst.weights0]
    tX, tY = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    return inst, X, Y, rhos, gammas, eta, lam_bar, a, tw, tX, tY


def test_peer_dln_gd_step_fig1(benchmark):
    _pin_torch()
    inst, X, Y, rhos, gammas, eta, lam_bar, a, tw, tX, tY = _dln_setup()
    benchmark.group = "peer: dln GD step, Figure-1 sizes, n=100"
    benchmark.extra_info.update({"torch": torch.__version__, "threads": torch.get_num_threads()})

    # Both steps from W(0) agree: the same products in another order (class U, update-path scale
    # ||W|| + eta ||G|| per layer, inner dimension up to max(n, d_w)).
    ours = [W.copy() for W in inst.weights0]
    gd_step_inplace(ours, X, Y, rhos, gammas)
    _torch_dln_step(tw, tX, tY, eta, lam_bar, a)
    for W_np, W_t, W0 in zip(ours, tw, inst.weights0, strict=True):
        scale = 4.0 * float(np.linalg.norm(W0)) * (1.0 + eta * lam_bar) + float(
            np.linalg.norm(W_np - W0))
        assert np.linalg.norm(W_t.detach().numpy() - W_np) <= tol.update_path(scale, 400)

    benchmark(_torch_dln_step, tw, tX, tY, eta, lam_bar, a)
    if benchmark.enabled:
        w_unred = [W.copy() for W in inst.weights0]
        _, Xr, Yr, rhos_r, gammas_r = _fig1_problem(100, True)
        w_red = [W.copy() for W in inst.weights0]
        t_torch, t_unred, t_red = interleaved_best(
            [lambda: _torch_dln_step(tw, tX, tY, eta, lam_bar, a),
             lambda: gd_step_inplace(w_unred, X, Y, rhos, gammas),
             lambda: gd_step_inplace(w_red, Xr, Yr, rhos_r, gammas_r)], REPEATS)
        benchmark.extra_info.update({
            "torch_ms": t_torch * 1e3, "ours_unreduced_ms": t_unred * 1e3, "ours_reduced_ms": t_red * 1e3,
            "torch_over_ours_unreduced": t_torch / t_unred, "torch_over_ours_reduced": t_torch / t_red})


def _torch_dip_step(W, u, V, A, y, gamma: float, k: int) -> None:
    """One ``W``-space GD step in place on a ``torch`` leaf tensor, by autograd (tanh activation)."""
    W.grad = None
    g = torch.tanh(W @ u) @ V.T / math.sqrt(k)
    loss = 0.5 * torch.sum((g @ A.T - y) ** 2)
    loss.backward()
    with torch.no_grad():
        W -= gamma * W.grad


def test_peer_dip_gd_step_large(benchmark):
    _pin_torch()
    inst, loss, gamma = _large_problem()
    if inst.activation != "tanh":
        pytest.skip(f"the PyTorch step is written for tanh, the instance uses {inst.activation}")
    benchmark.group = "peer: dip GD step, n=256 m=128 d=64 k=4096"
    benchmark.extra_info.update({"torch": torch.__version__, "threads": torch.get_num_threads()})
    t = {name: torch.tensor(getattr(inst, name), dtype=torch.float64) for name in ("u", "V", "A", "y")}
    W = torch.tensor(inst.W0, dtype=torch.float64, requires_grad=True)

    # Both steps from W(0) agree to the rounding of one step (class U, scale ||W_0|| + gamma
    # ||grad||, inner dimensions up to k).
    ours = dip.gd_step(inst, loss, inst.W0, gamma)
    _torch_dip_step(W, t["u"], t["V"], t["A"], t["y"], gamma, inst.k)
    scale = float(np.linalg.norm(inst.W0) + np.linalg.norm(ours - inst.W0))
    assert np.linalg.norm(W.detach().numpy() - ours) <= tol.update_path(scale, inst.k)

    benchmark(_torch_dip_step, W, t["u"], t["V"], t["A"], t["y"], gamma, inst.k)
    if benchmark.enabled:
        t_torch, t_w, t_z = interleaved_best(
            [lambda: _torch_dip_step(W, t["u"], t["V"], t["A"], t["y"], gamma, inst.k),
             lambda: dip.gd_step(inst, loss, inst.W0, gamma),
             lambda: dip.gd_step_z(inst, loss, inst.z0, gamma)], REPEATS)
        benchmark.extra_info.update({
            "torch_ms": t_torch * 1e3, "ours_W_ms": t_w * 1e3, "ours_z_ms": t_z * 1e3,
            "torch_over_ours_W": t_torch / t_w, "torch_over_ours_z": t_torch / t_z})
