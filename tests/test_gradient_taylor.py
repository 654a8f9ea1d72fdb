"""Taylor tests of the hand-written gradient ``dynamics.deep_linear.gradient`` (class F).

If ``g`` is the gradient of ``F`` at ``W``, the first-order Taylor remainder
``r(h) = |F(W + h D) - F(W) - h <g, D>|`` is ``O(h^2)``; with any error ``e`` in ``g`` it is
``h |<e, D>| + O(h^2)``, slope 1. The slope of ``log r`` against ``log h`` is fitted over the h
range where float64 rounding does not dominate and must lie in ``[1.9, 2.1]``. The same test at
50 digits (mpmath, private context) has no rounding floor worth the name, and the central
difference at ``h = 1e-20`` must match ``<g, D>`` to ``1e-30`` relative (class F at high
precision).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from dynamics import deep_linear as dl
from verification import oracle as mpo
from verification.dln_instances import DLNSpec, materialize
from verification.stats import fit_exponent
from verification.strategies import dln_specs

pytestmark = pytest.mark.exact

UNIT_ROUNDOFF = 2.0**-53
CONVENTIONS = ("talk", "pytorch_wd", "mean")
SLOPE_WINDOW = (1.9, 2.1)
# Rounding floor of r(h): F(W + hD) and F(W) each carry an error of a few u |F| (sums of
# squares of entries that are themselves short dot products); 16 u (|F(W+hD)| + |F(W)| + h|<g,D>|)
# covers it. Points with r >= 100 x floor bias the slope by < 1%.
NOISE_FACTOR = 16.0
ROUNDING_MARGIN = 100.0
# h runs over [1e-9, 1e-3] ||W||_F: above 1e-3 relative the cubic term of the degree-2L
# polynomial h -> F(W + hD) starts to bend the slope (checked over 1600 random instances:
# fitted slopes in [1.979, 2.051]).
H_EXPONENTS = np.arange(3.0, 9.01, 0.25)
MIN_POINTS = 6


def _unit_direction(rng: np.random.Generator, weights) -> list[np.ndarray]:
    D = [rng.standard_normal(w.shape) for w in weights]
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in D))
    return [x / norm for x in D]


def _inner(gs, ds) -> float:
    return sum(float(np.sum(g * d)) for g, d in zip(gs, ds, strict=True))


def taylor_slope(f, weights, grads, D):
    """Fit the slope of the Taylor remainder over the h range free of rounding.

    Returns the :class:`verification.engine.ExponentFit` and the number of points used.
    """
    F0 = f(weights)
    gD = _inner(grads, D)
    w_norm = np.sqrt(sum(float(np.sum(w * w)) for w in weights))
    hs, rs = [], []
    for h in w_norm * 10.0 ** -H_EXPONENTS:
        Fh = f([w + h * d for w, d in zip(weights, D, strict=True)])
        r = abs(Fh - F0 - h * gD)
        floor = NOISE_FACTOR * UNIT_ROUNDOFF * (abs(Fh) + abs(F0) + h * abs(gD))
        if r >= ROUNDING_MARGIN * floor:
            hs.append(h)
            rs.append(r)
    assert len(hs) >= MIN_POINTS, (
        f"only {len(hs)} step sizes above the rounding floor; the h grid does not resolve the "
        "remainder for this instance")
    return fit_exponent(hs, rs, label="Taylor remainder slope", window=SLOPE_WINDOW), len(hs)


def _points(spec: DLNSpec):
    inst = materialize(spec)
    rng = inst.test_rng()
    random_ws = [rng.standard_normal(w.shape) / np.sqrt(w.shape[1]) for w in inst.weights0]
    return inst, rng, [("W(0)", inst.weights0), ("random W", random_ws)]


@pytest.mark.parametrize("convention", CONVENTIONS)
@settings(max_examples=12)
@given(spec=dln_specs(steps=(0, 0)))
def test_dln__gradient_formula_taylor_slope(convention, spec):
    spec = spec.replace(convention=convention)
    inst, rng, points = _points(spec)
    X, Y = inst.data.X, inst.data.Y
    kw = {"lam": spec.lam, "a": inst.a, "c": inst.c}

    def f(ws):
        return float(dl.objective(ws, X, Y, **kw))

    for label, ws in points:
        D = _unit_direction(rng, ws)
        fit, used = taylor_slope(f, ws, dl.gradient(ws, X, Y, **kw), D)
        assert SLOPE_WINDOW[0] <= fit.exponent <= SLOPE_WINDOW[1], (
            f"{label}: Taylor remainder slope {fit.exponent:.4f} outside {SLOPE_WINDOW} "
            f"({used} points, R^2 {fit.r_squared:.4f}) on {spec!r}")
        assert fit.r_squared >= 0.99, f"{label}: R^2 {fit.r_squared:.4f} on {spec!r}"


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_taylor_slope_detects_a_wrong_gradient(convention):
    # The test must be able to fail: a gradient off by eps along D has a remainder
    # ~ eps h, slope 1, for h < eps / |F''|; eps = 1e-2 (1 + ||g||) keeps that over the window.
    spec = DLNSpec(d=10, m=6, s=2, n=8, L=3, d_w=7, lam=0.05, convention=convention, seed=3)
    inst, rng, points = _points(spec)
    X, Y = inst.data.X, inst.data.Y
    kw = {"lam": spec.lam, "a": inst.a, "c": inst.c}

    def f(ws):
        return float(dl.objective(ws, X, Y, **kw))

    ws = points[0][1]
    grads = dl.gradient(ws, X, Y, **kw)
    D = _unit_direction(rng, ws)
    eps = 1e-2 * (1.0 + np.sqrt(_inner(grads, grads)))
    wrong = [g + eps * d for g, d in zip(grads, D, strict=True)]
    fit, _ = taylor_slope(f, ws, wrong, D)
    assert fit.exponent < 1.5, f"corrupted gradient still gives slope {fit.exponent:.3f}"
    fit_ok, _ = taylor_slope(f, ws, grads, D)
    assert SLOPE_WINDOW[0] <= fit_ok.exponent <= SLOPE_WINDOW[1]


@pytest.mark.parametrize("update", dl.UPDATE_PROFILES)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_update_consumes_the_tested_gradient(update, convention):
    # The Taylor-tested gradient is the one every update profile uses: standard steps
    # W - eta grad, seed002_ntk steps W_l - (eta / d_{l-1}) grad_l (spec section 3).
    spec = DLNSpec(d=9, m=5, s=2, n=7, L=4, d_w=6, lam=0.2, convention=convention, seed=11)
    inst = materialize(spec)
    X, Y = inst.data.X, inst.data.Y
    W = inst.weights0
    eta = 0.01
    new = dl.gd_step(W, X, Y, eta=eta, lam=spec.lam, a=inst.a, c=inst.c, update=update)
    grads = dl.gradient(W, X, Y, lam=spec.lam, a=inst.a, c=inst.c)
    for ell, (w, wn, g) in enumerate(zip(W, new, grads, strict=True)):
        step = eta / w.shape[1] if update == "seed002_ntk" else eta
        implied = (w - wn) / step
        # W - W' cancels to eta ||g||; its rounding is ~u (||W|| + ||W'||), divided by the step.
        scale = (np.linalg.norm(w) + np.linalg.norm(wn)) / step + np.linalg.norm(g)
        assert np.linalg.norm(implied - g) <= 64 * UNIT_ROUNDOFF * scale * max(w.shape), (
            f"layer {ell + 1}: the {update} step does not use dynamics.deep_linear.gradient")


# --------------------------------------------------------------------------------------------
# class F at 50 digits


_TINY = DLNSpec(d=6, m=4, s=2, n=3, L=3, d_w=5, lam=0.1, steps=0, seed=7)


def _mp_problem(spec: DLNSpec, ctx):
    inst = materialize(spec)
    X, Y = mpo.lift(inst.data.X, ctx, "X"), mpo.lift(inst.data.Y, ctx, "Y")
    W = [mpo.lift(w, ctx, "W") for w in inst.weights0]
    kw = {"lam": ctx.mpf(spec.lam), "a": ctx.mpf(inst.a), "c": ctx.mpf(inst.c)}
    return inst, X, Y, W, kw


def _mp_direction(rng, W, ctx):
    D = [mpo.lift(rng.standard_normal(w.shape), ctx, "D") for w in W]
    norm = ctx.sqrt(ctx.fsum(mpo.fro_norm(d, ctx) ** 2 for d in D))
    return [d * (1 / norm) for d in D]


def _mp_inner(gs, ds, ctx):
    return ctx.fsum(ctx.fsum((g * d).ravel()) for g, d in zip(gs, ds, strict=True))


@pytest.mark.mp
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_dln__gradient_formula_mp_central_difference(convention):
    ctx = mpo.make_context(50)
    inst, X, Y, W, kw = _mp_problem(_TINY.replace(convention=convention), ctx)
    grads = dl.gradient(W, X, Y, **kw)
    g_norm = ctx.sqrt(_mp_inner(grads, grads, ctx))
    h = ctx.mpf("1e-20")
    rng = inst.test_rng()
    for _ in range(2):
        D = _mp_direction(rng, W, ctx)
        fp = dl.objective([w + d * h for w, d in zip(W, D, strict=True)], X, Y, **kw)
        fm = dl.objective([w - d * h for w, d in zip(W, D, strict=True)], X, Y, **kw)
        err = abs((fp - fm) / (2 * h) - _mp_inner(grads, D, ctx))
        # Truncation h^2 F'''/6 ~ 1e-40; rounding ~ k 2^-169 |F| / h ~ 1e-31 |F| at 50 digits.
        assert err <= ctx.mpf("1e-30") * g_norm, (
            f"central difference error {mpo.to_float64(err / g_norm, ctx):.3g} relative")


@pytest.mark.mp
def test_gradient_taylor_slope_mp():
    # At 50 digits the rounding floor is ~1e-50, so the slope is exactly 2 down to h ~ 1e-20;
    # the float64 window above is the part of this picture that float64 can resolve.
    ctx = mpo.make_context(50)
    inst, X, Y, W, kw = _mp_problem(_TINY.replace(convention="mean", L=2), ctx)
    grads = dl.gradient(W, X, Y, **kw)
    D = _mp_direction(inst.test_rng(), W, ctx)
    F0 = dl.objective(W, X, Y, **kw)
    gD = _mp_inner(grads, D, ctx)
    hs = [ctx.mpf(10) ** -k for k in range(4, 17, 2)]
    rs = [abs(dl.objective([w + d * h for w, d in zip(W, D, strict=True)], X, Y, **kw) - F0
              - h * gD) for h in hs]
    fit = fit_exponent([mpo.to_float64(h, ctx) for h in hs], [mpo.to_float64(r, ctx) for r in rs],
                       label="mp Taylor slope", window=SLOPE_WINDOW)
    assert abs(fit.exponent - 2.0) <= 1e-3, f"mp Taylor slope {fit.exponent}"
