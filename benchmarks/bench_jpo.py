"""Benchmarks of JPO training and the per-example BFGS baseline (pytest-benchmark).

Ordinary test runs pass ``--benchmark-disable`` (pyproject ``addopts``), so each benchmark runs its
function once as a smoke test and checks that the timed computation is right: a training step of
:func:`dynamics.joint.train_jpo` equals :func:`dynamics.joint.joint_gradient` followed by
:func:`dynamics.joint.adam_update` bitwise; the batch BFGS baseline equals direct per-example
:func:`scipy.optimize.minimize` calls bitwise and is never worse than its start; the probe runs of
the sweep estimate satisfy refinement never worse and ``w <= 1 - g_BFGS``. Measure with

    OPENBLAS_NUM_THREADS=1 python -m pytest benchmarks/bench_jpo.py --benchmark-enable --benchmark-only

The targets, reported in each benchmark's ``extra_info`` and never asserted (timings on shared
machines are noisy; ``bench_dln.py`` and ``bench_dip.py`` record theirs the same way):

* one JPO training step (forward, callback, backprop, Adam) on ``n = 256`` ripple examples with the
  ``[1, 32, 32, 1]`` network: microseconds per step, and the share of the callback (the loss and
  gradient of the 256 examples) in it;
* the §3 BFGS baseline over the same 256 examples: milliseconds, and the share of SciPy's own
  Python overhead (per call and per iteration) against the loss kernels
  (:func:`dynamics.bfgs_reference.overhead_profile`), with what one vectorised kernel call per
  BFGS evaluation round would cost instead;
* the wall time of the whole ``paper`` sweep of ``invbounds figures jpo`` (4 problems,
  ``n in {16, 64, 256}``, ``S = 5``, ``S_train = 3000``, pools of ``2^20``), estimated from the
  per-run costs of probe runs (training extrapolated from :data:`PROBE_STEPS` steps).

BLAS threads: the numbers assume one BLAS thread (``invbounds`` and ``tests/conftest.py`` pin it).
This module pins it only if it is the first to import NumPy; on a loaded 2-core machine a
multi-threaded OpenBLAS made JPO steps up to 20 times slower. ``extra_info["blas_threads_env"]``
records the setting seen.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import functools  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _timing import interleaved_best  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from dynamics import bfgs_reference as br  # noqa: E402
from dynamics import joint  # noqa: E402
from dynamics import jpo_problems as jp  # noqa: E402
from verification import figures_jpo as figs  # noqa: E402
from verification import jpo_oracle as jo  # noqa: E402

N_EXAMPLES = 256
RIPPLE_AMP = 1.0
HIDDEN = (32, 32)
"""The ripple network ``[1, 32, 32, 1]`` (spec §7.1)."""
TIMED_STEPS = (100, 600)
"""Per-step cost = difference of two training lengths over the step difference, so the set-up of
:func:`train_jpo` (initialization, validation, the final evaluation) cancels."""
PROBE_STEPS = 100
"""Training steps of a sweep-estimate probe; the cost is extrapolated linearly to ``S_train``."""
SIGN_PROBE_POOL = 1 << 15
"""Examples of a sign-law pool probe; extrapolated linearly to the paper pool."""
BFGS_CHECK_EXAMPLES = (0, 1, 2, 128, 255)




@functools.lru_cache(maxsize=1)
def _ripple():
    return jp.ripple_problem(N_EXAMPLES, RIPPLE_AMP, 0)


def _train(steps: int) -> joint.JPOResult:
    prob = _ripple()
    return joint.train_jpo(prob.inputs, prob.callback(), prob.x0, hidden=HIDDEN, steps=steps, seed=0,
                           record_every=steps)


# --------------------------------------------------------------------------------------------
# one JPO training step, n = 256 ripple examples


def _check_step_is_joint_gradient_plus_adam(result: joint.JPOResult) -> None:
    # train_jpo and joint_gradient run the same kernels in the same order, and adam_update is the
    # pure form of the same Adam kernel, so one training step must agree bitwise.
    prob = _ripple()
    jg = joint.joint_gradient(result.mlp, result.theta0, prob.inputs, prob.x0, prob.callback())
    zeros = np.zeros_like(jg.grad)
    theta1, _, _ = joint.adam_update(result.theta0, jg.grad, zeros, zeros, 1)
    assert np.array_equal(theta1, result.theta)


def test_jpo_step_ripple_256(benchmark):
    benchmark.group = "jpo training step, ripple n=256 [1,32,32,1]"
    benchmark.extra_info.update({"n": N_EXAMPLES, "sizes": [1, *HIDDEN, 1], "amp": RIPPLE_AMP,
                                 "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS")})
    result = benchmark(_train, 1)
    _check_step_is_joint_gradient_plus_adam(result)
    if benchmark.enabled:
        short, long = interleaved_best([lambda: _train(TIMED_STEPS[0]), lambda: _train(TIMED_STEPS[1])], 3)
        step_s = (long - short) / (TIMED_STEPS[1] - TIMED_STEPS[0])
        prob = _ripple()
        x = prob.start()
        cb = prob.callback()
        (cb_s,) = interleaved_best([lambda: [cb(x) for _ in range(200)]], 3)
        benchmark.extra_info["us_per_step"] = step_s * 1e6
        benchmark.extra_info["callback_us"] = cb_s / 200 * 1e6
        benchmark.extra_info["callback_share"] = cb_s / 200 / step_s
        benchmark.extra_info["train_3000_steps_s"] = step_s * figs.PROTOCOL_STEPS


# --------------------------------------------------------------------------------------------
# the BFGS baseline over the same 256 examples


def _check_baseline(run: br.BFGSRun) -> None:
    prob = _ripple()
    # The batch wrapper is the §3 call per example: same x, fun and counters as a direct call.
    for i in BFGS_CHECK_EXAMPLES:
        ex = prob.example(i)
        res = minimize(ex.fun, prob.x0, jac=ex.jac, method="BFGS", options=dict(br.BFGS_OPTIONS))
        assert np.array_equal(res.x, run.x[i]) and res.fun == run.fun[i]
        assert (res.nit, res.nfev, res.njev) == (run.nit[i], run.nfev[i], run.njev[i])
    L0 = prob.loss(prob.start())
    assert np.all(run.fun <= L0 + figs.REFINE_RTOL * (1.0 + np.abs(L0)))
    assert np.all(run.consistent)


def test_bfgs_baseline_ripple_256(benchmark):
    prob = _ripple()
    benchmark.group = "jpo BFGS baseline, ripple n=256"
    benchmark.extra_info.update({"n": N_EXAMPLES, "amp": RIPPLE_AMP, "options": dict(br.BFGS_OPTIONS),
                                 "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS")})
    run = benchmark.pedantic(br.bfgs_baseline, args=(prob,), kwargs={"engine": "scipy"}, rounds=3,
                             iterations=1)
    _check_baseline(run)
    benchmark.extra_info.update(run.totals())
    if benchmark.enabled:
        (total,) = interleaved_best([lambda: br.bfgs_baseline(prob, engine="scipy")], 5)
        prof = br.overhead_profile(prob)
        benchmark.extra_info["ms_total"] = total * 1e3
        benchmark.extra_info["us_per_example"] = total / N_EXAMPLES * 1e6
        benchmark.extra_info["us_per_evaluation"] = prof["total_s"] / prof["nfev"] * 1e6
        benchmark.extra_info["kernel_share"] = prof["kernel_s"] / prof["total_s"]
        benchmark.extra_info["scipy_python_overhead_share"] = 1.0 - prof["kernel_s"] / prof["total_s"]
        benchmark.extra_info["vectorised_kernels_ms"] = prof["vectorised_s"] * 1e3
        benchmark.extra_info["evaluation_rounds"] = int(run.nfev.max())


# --------------------------------------------------------------------------------------------
# estimated cost of the paper sweep


def sweep_estimate(config: figs.FigureConfig, problems=tuple(figs.PROBLEMS), *,
                   probe_steps: int = PROBE_STEPS, sign_probe_pool: int = SIGN_PROBE_POOL) -> dict:
    """Estimated wall time of :func:`verification.figures_jpo.make_figures` with ``config``.

    One probe run per problem and ``n`` (seed 0, ``probe_steps`` Adam steps): its training time is
    scaled by ``config.steps / probe_steps``, the BFGS, refinement and oracle times are taken as
    they are (refinement from a less trained network costs about as much); every run is charged
    ``config.seeds`` times. The sign-law pool is probed with ``sign_probe_pool`` examples and scaled
    to ``config.sign_pool``. Plotting (a second or two per figure) is not included.

    Returns
    -------
    dict
        ``total_s``, per-problem totals ``<problem>_s``, per-phase totals ``train_s``, ``bfgs_s``
        (baseline and refinement), ``oracle_s``, ``sign_law_s``, and ``runs`` (the probe
        :class:`~verification.figures_jpo.BenchmarkRun` objects).
    """
    out = {"train_s": 0.0, "bfgs_s": 0.0, "oracle_s": 0.0, "sign_law_s": 0.0, "runs": []}
    scale = config.steps / probe_steps
    for name in problems:
        per_problem = 0.0
        for n in config.ns:
            run = figs.run_benchmark(name, n, 0, steps=probe_steps)
            out["runs"].append(run)
            sec = run.seconds
            train, bfgs_s, orc = sec["train"] * scale, sec["bfgs"] + sec["refine"], sec["oracle"]
            out["train_s"] += config.seeds * train
            out["bfgs_s"] += config.seeds * bfgs_s
            out["oracle_s"] += config.seeds * orc
            per_problem += config.seeds * (train + bfgs_s + orc)
        t0 = time.perf_counter()
        series = ("feature", "bias") if name == "ripple" else ("feature",)
        for s in series:
            figs.sign_law_pool(name, s, sign_probe_pool, figs.SIGN_LAW_SEED)
        sign = (time.perf_counter() - t0) * config.sign_pool / sign_probe_pool
        out["sign_law_s"] += sign
        out[f"{name}_s"] = per_problem + sign
    out["total_s"] = out["train_s"] + out["bfgs_s"] + out["oracle_s"] + out["sign_law_s"]
    return out


def _check_probe_runs(runs) -> None:
    for run in runs:
        assert np.all(run.refinement_excess() <= 0.0) and np.all(run.baseline_excess() <= 0.0)
        cap = jo.win_rate_cap(run.baseline.fun, run.oracle)
        for method in figs.METHODS:
            assert run.comparison(method).win_rate <= cap


def test_paper_sweep_estimate(benchmark):
    paper = figs.PROFILE_CONFIGS["paper"]
    benchmark.group = "jpo paper sweep estimate"
    benchmark.extra_info.update({"ns": list(paper.ns), "seeds": paper.seeds, "steps": paper.steps,
                                 "sign_pool": paper.sign_pool, "probe_steps": PROBE_STEPS,
                                 "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS")})
    if benchmark.enabled:
        est = benchmark.pedantic(sweep_estimate, args=(paper,), rounds=1, iterations=1)
    else:
        # smoke: the estimator on tiny sizes (one problem per landscape kind: 1-D and 2-D)
        tiny = figs.FigureConfig(ns=(8,), seeds=1, steps=20, sign_ns=(1, 4), sign_pool=1 << 10)
        est = benchmark.pedantic(sweep_estimate, args=(tiny, ("ripple", "billiards")),
                                 kwargs={"probe_steps": 10, "sign_probe_pool": 1 << 9}, rounds=1,
                                 iterations=1)
    _check_probe_runs(est["runs"])
    parts = est["train_s"] + est["bfgs_s"] + est["oracle_s"] + est["sign_law_s"]
    assert math.isclose(est["total_s"], parts) and est["total_s"] > 0
    benchmark.extra_info.update({k: v for k, v in est.items() if k != "runs"})
    benchmark.extra_info["total_min"] = est["total_s"] / 60.0


# --------------------------------------------------------------------------------------------
# lock-step batched BFGS (dynamics.bfgs_batch) against the per-example baseline, same run

import pytest  # noqa: E402

from dynamics import bfgs_batch as bbatch  # noqa: E402

REFINE_SCALE = {"ripple": 0.1, "wave_packet": 0.02, "billiards": 0.05, "logistic": 0.05}
"""Refinement-like starts ``x* + N(0, s^2)`` (billiards: relative), the scales of the
``jpo.bfgs_result_consistency`` claim."""


def _check_batch_identical(batch: br.BFGSRun, ref: br.BFGSRun) -> None:
    # The batched driver reproduces the reference bit for bit (tests/test_bfgs_batch.py).
    for field in ("nit", "nfev", "njev", "status"):
        assert np.array_equal(getattr(batch, field), getattr(ref, field)), field
    assert batch.message == ref.message
    assert np.array_equal(batch.x, ref.x) and np.array_equal(batch.fun, ref.fun)
    assert np.all(batch.consistent)


def _batch_extra_info(benchmark, prob: jp.Problem, starts: np.ndarray, ref: br.BFGSRun) -> None:
    det = bbatch.bfgs_batch_detail(prob, starts)
    benchmark.extra_info.update(det.summary())
    benchmark.extra_info["kernel_impl"] = bbatch._Kernel(prob.model, "per_row", starts).impl
    benchmark.extra_info["max_nfev"] = int(ref.nfev.max())
    benchmark.extra_info["status_2"] = int(np.sum(ref.status == 2))
    if benchmark.enabled:
        batch_s, ref_s = interleaved_best([lambda: bbatch.bfgs_solve_batch(prob, starts),
                                           lambda: br.bfgs_solve(prob, starts, engine="scipy")], 5)
        benchmark.extra_info["batch_ms"] = batch_s * 1e3
        benchmark.extra_info["reference_ms"] = ref_s * 1e3
        benchmark.extra_info["speedup"] = ref_s / batch_s
        benchmark.extra_info["batch_us_per_evaluation"] = batch_s / int(ref.nfev.sum()) * 1e6
        benchmark.extra_info["reference_us_per_evaluation"] = ref_s / int(ref.nfev.sum()) * 1e6


def test_bfgs_batch_256(benchmark):
    prob = _ripple()
    benchmark.group = "jpo BFGS baseline, ripple n=256: lock-step batch vs per-example"
    benchmark.extra_info.update({"n": N_EXAMPLES, "amp": RIPPLE_AMP, "options": dict(br.BFGS_OPTIONS),
                                 "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS")})
    run = benchmark.pedantic(br.bfgs_baseline, args=(prob,), kwargs={"engine": "batch"}, rounds=3,
                             iterations=1)
    ref = br.bfgs_baseline(prob, engine="scipy")
    _check_batch_identical(run, ref)
    _batch_extra_info(benchmark, prob, prob.start(), ref)


@pytest.mark.parametrize("name, starts_kind", [("wave_packet", "baseline"), ("billiards", "baseline"),
                                                ("logistic", "baseline"), ("ripple", "refine")])
def test_bfgs_batch_problems_256(benchmark, name, starts_kind):
    prob = figs.PROBLEMS[name].make(N_EXAMPLES, 0)
    if starts_kind == "baseline":
        starts = prob.start()
    else:
        noise = REFINE_SCALE[name] * np.random.default_rng(1).standard_normal(prob.truth.x.shape)
        starts = prob.truth.x * (1.0 + noise) if name == "billiards" else prob.truth.x + noise
    benchmark.group = f"jpo BFGS {starts_kind}, {name} n=256: lock-step batch vs per-example"
    benchmark.extra_info.update({"n": N_EXAMPLES, "problem": name, "starts": starts_kind,
                                 "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS")})
    run = benchmark.pedantic(bbatch.bfgs_solve_batch, args=(prob, starts), rounds=3, iterations=1)
    ref = br.bfgs_solve(prob, starts, engine="scipy")
    _check_batch_identical(run, ref)
    _batch_extra_info(benchmark, prob, starts, ref)
