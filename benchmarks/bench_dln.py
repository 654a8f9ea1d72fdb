"""Benchmarks of deep-linear gradient descent (pytest-benchmark).

Ordinary test runs pass ``--benchmark-disable`` (pyproject ``addopts``), so each benchmark runs its
function once as a smoke test and checks that the timed computation is right (reduced and
unreduced steps agree, batched and looped runs agree). Measure with

    python -m pytest benchmarks --benchmark-enable --benchmark-only

The targets, reported in each benchmark's ``extra_info`` and never asserted (timings on shared
machines are noisy): the reduced step time does not grow with ``n``; at ``n = 1000`` the reduced
step is at least 10x faster than the unreduced one; a batched run of 64 small instances is at
least 10x faster than looping over them.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _timing import interleaved_best

from dynamics import deep_linear as dl
from verification import tolerance as tol
from verification.dln_instances import DLNSpec, materialize

FIG1_SIZES = {"d": 200, "m": 100, "s": 5, "L": 5, "d_w": 400}
"""The Figure-1 network and data sizes (``n`` varies)."""
SMALL = DLNSpec(d=20, m=10, s=2, n=20, L=3, d_w=32, lam=0.1, k=1.0)
"""The small instance of the batched benchmark."""
BATCH = 64
BATCH_STEPS = 200
TARGET_SPEEDUP = 10.0




@functools.lru_cache(maxsize=4)
def _fig1_problem(n: int, reduce: bool):
    inst = materialize(DLNSpec(**FIG1_SIZES, n=n, lam=1.0, k=4.0))
    X, Y = inst.data.X, inst.data.Y
    if reduce:
        X, Y, _ = dl.reduce_columns(X, Y)
    rhos, gammas = dl.layer_coefficients(inst.dims, inst.eta, inst.lam_bar, inst.a)
    return inst, X, Y, rhos, gammas


def gd_step_inplace(weights, X, Y, rhos, gammas) -> None:
    """One GD step exactly as the loop of :func:`dynamics.deep_linear.run_gd` does it (in place).

    It calls the unchecked kernel that ``run_gd`` uses: the public ``forward_backward`` also
    validates its arguments (a finiteness scan of every weight), which the training loop skips.
    """
    _, grads, _ = dl._forward_backward(weights, X, Y)
    for W, G, rho, gamma in zip(weights, grads, rhos, gammas, strict=True):
        W *= rho
        W -= gamma * G


def _step_callable(n: int, reduce: bool):
    inst, X, Y, rhos, gammas = _fig1_problem(n, reduce)
    weights = [W.copy() for W in inst.weights0]
    return weights, (lambda: gd_step_inplace(weights, X, Y, rhos, gammas))


def gd_step_preallocated(weights, X, Y, rhos, gammas, bufs) -> None:
    """The same GD step with the gradient steps written into preallocated buffers.

    ``gamma_l G_l = (gamma_l B_l) H_{l-1}^T`` is formed by one ``matmul(..., out=buf)``, scaling
    the ``r``-column factor ``B_l`` instead of the ``d_l x d_{l-1}`` gradient, so a step allocates
    no weight-sized temporaries. This is the change proposed for ``run_gd``: its per-step
    ``G_l`` and ``gamma_l * G_l`` temporaries are 1.28 MB at ``d_w = 400``, above glibc's mmap
    threshold until a larger block has been freed, so each step can page-fault them in afresh.
    """
    H = [Y]
    for W in weights:
        H.append(W @ H[-1])
    B = H[-1] - X
    for ell in range(len(weights) - 1, -1, -1):
        np.matmul(gammas[ell] * B, H[ell].swapaxes(-1, -2), out=bufs[ell])
        if ell:
            B = weights[ell].swapaxes(-1, -2) @ B
    for W, step, rho in zip(weights, bufs, rhos, strict=True):
        W *= rho
        W -= step


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_gd_step_fig1_preallocated(benchmark):
    # First in the module: it runs before any larger block has raised glibc's mmap threshold,
    # so its page-fault count shows what a fresh process (a fresh `invbounds verify`) pays.
    inst, X, Y, rhos, gammas = _fig1_problem(100, True)
    weights = [W.copy() for W in inst.weights0]
    bufs = [np.empty_like(W) for W in weights]
    benchmark.group = "dln GD step, Figure-1 sizes"
    benchmark.extra_info.update({"n": 100, "reduce": True, "kernel": "preallocated buffers"})
    benchmark(gd_step_preallocated, weights, X, Y, rhos, gammas, bufs)

    # Same iterate as the run_gd kernel from the same W(0) (class U, one step).
    ref = [W.copy() for W in inst.weights0]
    new = [W.copy() for W in inst.weights0]
    gd_step_inplace(ref, X, Y, rhos, gammas)
    gd_step_preallocated(new, X, Y, rhos, gammas, bufs)
    for Wr, Wn in zip(ref, new, strict=True):
        assert np.linalg.norm(Wr - Wn) <= tol.update_path(np.linalg.norm(Wr), FIG1_SIZES["d_w"])

    if benchmark.enabled:
        faults = {}
        for name, fn in (("run_gd_kernel", lambda: gd_step_inplace(ref, X, Y, rhos, gammas)),
                         ("preallocated", lambda: gd_step_preallocated(new, X, Y, rhos, gammas,
                                                                       bufs))):
            f0 = _minor_faults()
            for _ in range(20):
                fn()
            faults[name] = (_minor_faults() - f0) / 20
        t_old, t_new = interleaved_best(
            [lambda: gd_step_inplace(ref, X, Y, rhos, gammas),
             lambda: gd_step_preallocated(new, X, Y, rhos, gammas, bufs)], 30)
        benchmark.extra_info["minor_page_faults_per_step"] = faults
        benchmark.extra_info["run_gd_kernel_step_s"] = t_old
        benchmark.extra_info["speedup_preallocated_vs_run_gd_kernel"] = t_old / t_new


@pytest.mark.parametrize("n", [100, 1000])
@pytest.mark.parametrize("reduce", [True, False], ids=["reduced", "unreduced"])
def test_gd_step_fig1(benchmark, n, reduce):
    inst, X, _Y, *_ = _fig1_problem(n, reduce)
    weights, step = _step_callable(n, reduce)
    benchmark.group = "dln GD step, Figure-1 sizes"
    benchmark.extra_info.update({"n": n, "reduce": reduce, "columns": int(X.shape[1])})
    benchmark(step)

    # The timed step is the GD step: from the same W(0), reduced and unreduced agree (D0, class U
    # with the update-path scale ||W|| + eta ||G||, G ~ ||W_{L:l+1}|| ||E|| ||W_{l-1:1} Y||).
    one = {}
    for red in (True, False):
        _, Xr, Yr, rhos, gammas = _fig1_problem(n, red)
        ws = [W.copy() for W in inst.weights0]
        gd_step_inplace(ws, Xr, Yr, rhos, gammas)
        one[red] = ws
    _, grads, _ = dl.forward_backward(inst.weights0, inst.data.X, inst.data.Y)
    for Wa, Wb, W0, G in zip(one[True], one[False], inst.weights0, grads, strict=True):
        scale = float(np.linalg.norm(W0) + inst.eta * np.linalg.norm(G))
        assert np.linalg.norm(Wa - Wb) <= tol.update_path(scale, max(n, FIG1_SIZES["d_w"]))
    assert all(np.all(np.isfinite(W)) for W in weights)

    if benchmark.enabled and reduce:
        # Ratios from interleaved timings of the same step functions (see _timing.interleaved_best).
        _, unreduced = _step_callable(n, False)
        _, reduced = _step_callable(n, True)
        t_red, t_unred = interleaved_best([reduced, unreduced], 5 if n >= 1000 else 20)
        benchmark.extra_info["reduced_step_s"] = t_red
        benchmark.extra_info["unreduced_step_s"] = t_unred
        benchmark.extra_info["speedup_reduced_vs_unreduced"] = t_unred / t_red
        if n != 100:
            _, at_100 = _step_callable(100, True)
            t_n, t_100 = interleaved_best([reduced, at_100], 50)
            benchmark.extra_info["reduced_time_ratio_n_over_n100"] = t_n / t_100
        if n >= 1000:
            benchmark.extra_info["meets_10x_target"] = t_unred / t_red >= TARGET_SPEEDUP


@functools.lru_cache(maxsize=1)
def _small_batch():
    insts = [materialize(SMALL.replace(seed=i)) for i in range(BATCH)]
    X = np.stack([i.data.X for i in insts])
    Y = np.stack([i.data.Y for i in insts])
    W0 = [np.stack([i.weights0[ell] for i in insts]) for ell in range(SMALL.L)]
    eta = np.array([i.eta for i in insts])
    return insts, X, Y, W0, eta


def _run_batched():
    _, X, Y, W0, eta = _small_batch()
    return dl.run_gd(X, Y, W0, eta=eta, steps=BATCH_STEPS, lam=SMALL.lam,
                     record_at=[0, BATCH_STEPS]).weights


def _run_loop():
    insts = _small_batch()[0]
    return [dl.run_gd(i.data.X, i.data.Y, i.weights0, eta=i.eta, steps=BATCH_STEPS, lam=SMALL.lam,
                      record_at=[0, BATCH_STEPS]).weights for i in insts]


def _check_batch_matches_loop(batched, looped):
    # Batched matmuls may order the inner sums differently: rounding differences of u ||W|| per
    # step, carried forward over BATCH_STEPS steps (class U, accumulated as in the update-path
    # claims).
    for b, ws in enumerate(looped):
        for ell, W in enumerate(ws):
            scale = (BATCH_STEPS + 1) * float(np.linalg.norm(W))
            assert np.linalg.norm(batched[ell][b] - W) <= tol.update_path(scale, SMALL.d_w)


def _matmul_floor():
    """The stacked matmuls of ``BATCH_STEPS`` batched steps and nothing else.

    Any batched step must form ``W_l H_{l-1}`` (forward), ``W_l^T B_l`` (backward, l > 1) and the
    rank-``s`` update ``B_l H_{l-1}^T``: ``3 L - 1`` stacked products. With ``s = 2`` columns each
    is a thin BLAS call per instance (~0.4 us for 32 x 32 x 2, about 10 GFLOP/s), so their time is a
    floor under every batched implementation, and loop time / this floor is the best speedup that
    batching could reach on this machine and BLAS.
    """
    _, X, Y, W0, _ = _small_batch()
    Xr, Yr, _ = dl.reduce_columns(X, Y)
    Ht = [np.ascontiguousarray(np.swapaxes(Yr, -1, -2))]
    H = [Yr]
    for W in W0:
        H.append(W @ H[-1])
        Ht.append(np.ascontiguousarray(np.swapaxes(H[-1], -1, -2)))
    bufs = [np.empty_like(W) for W in W0]
    for _ in range(BATCH_STEPS):
        for W, h in zip(W0, H[:-1], strict=True):
            W @ h
        B = H[-1] - Xr
        for ell in range(len(W0) - 1, -1, -1):
            np.matmul(B, Ht[ell], out=bufs[ell])
            if ell:
                B = np.swapaxes(W0[ell], -1, -2) @ B


_OUTPUTS: dict[str, list] = {}
"""Results of the looped run, so the batched benchmark's smoke check does not loop again."""


def test_loop_64_small(benchmark):
    benchmark.group = "dln 64 small instances, 200 GD steps"
    benchmark.extra_info.update({"instances": BATCH, "steps": BATCH_STEPS})
    looped = benchmark.pedantic(_run_loop, rounds=3, iterations=1)
    _OUTPUTS["loop"] = looped
    _check_batch_matches_loop(_run_batched(), looped)


def test_batched_64_small(benchmark):
    benchmark.group = "dln 64 small instances, 200 GD steps"
    benchmark.extra_info.update({"instances": BATCH, "steps": BATCH_STEPS, "spec": repr(SMALL)})
    batched = benchmark(_run_batched)
    if benchmark.enabled:
        t_batched, t_loop = interleaved_best(
            [_run_batched, lambda: _OUTPUTS.__setitem__("loop", _run_loop())], 3)
        benchmark.extra_info["batched_s"] = t_batched
        benchmark.extra_info["loop_s"] = t_loop
        benchmark.extra_info["speedup_batched_vs_loop"] = t_loop / t_batched
        benchmark.extra_info["meets_10x_target"] = t_loop / t_batched >= TARGET_SPEEDUP
        benchmark.extra_info["batched_us_per_instance_step"] = t_batched / BATCH_STEPS / BATCH * 1e6
        t_floor, t_loop2 = interleaved_best(
            [_matmul_floor, lambda: _OUTPUTS.__setitem__("loop", _run_loop())], 3)
        benchmark.extra_info["matmul_floor_s"] = t_floor
        benchmark.extra_info["ceiling_speedup_if_only_matmuls"] = t_loop2 / t_floor
    looped = _OUTPUTS.get("loop") or _run_loop()
    _check_batch_matches_loop(batched, looped)
