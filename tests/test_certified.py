"""Tests of ``bounds/certified.py``: integer constants certified by interval arithmetic.

For every constant: on Hypothesis-drawn inputs the float64 path that the claims run gives the
certified integer whenever the certificate is not ambiguous; the enclosure contains the 50-digit
mpmath point value; constructed inputs whose quantity is an exact integer are reported ambiguous by
the interval path alone and settled by the exact decision; bad inputs raise ``ValueError``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from mpmath import libmp
from mpmath.ctx_mp import MPContext

from bounds import certified as cert
from bounds import dip_two_layer as dipb
from bounds import dln_phases as ph
from bounds import dln_weight_decay as dlb
from dynamics import dip_two_layer as dip
from verification.engine import trials_to_confirm

pytestmark = [pytest.mark.mp, pytest.mark.exact]


@pytest.fixture(autouse=True)
def global_mpmath_untouched():
    before = (mpmath.mp.prec, mpmath.iv.prec)
    yield
    assert (mpmath.mp.prec, mpmath.iv.prec) == before, "a test changed the global mpmath.mp / mpmath.iv"


def _mp(dps: int = 50) -> MPContext:
    ctx = MPContext()
    ctx.dps = dps
    return ctx


def _frac(x) -> Fraction:
    return Fraction(*libmp.to_rational(x._mpf_))


def _contains(res: cert.CertifiedInt, ref) -> bool:
    """``ref`` (an mpf at 50 digits) lies in the enclosure, up to the reference's own 1e-45 relative."""
    r = _frac(ref)
    slack = abs(r) * Fraction(1, 10**45)
    return res.lo - slack <= r <= res.hi + slack


U = 2.0**-53
BAND = 64 * U
"""Relative rounding band of the float64 quantities (a handful of operations and libm calls): only an
input whose float64 quantity lies this close to an integer may round to the other side."""


def _check(res: cert.CertifiedInt, float_value: int, ref, float_quantity: float | None) -> None:
    """The enclosure holds the 50-digit value; the float64 integer is the certified one unless the
    float64 quantity lies within its rounding band of an integer (then the certificate decides)."""
    assert _contains(res, ref), (res, ref)
    if res.ambiguous:
        event("ambiguous")
        assert res.value is None
        return
    if res.value == float_value:
        return
    # A disagreement is admissible only when an integer lies within the rounding band b of the
    # float64 quantity, and by at most 1 + 2b (b >= 1/2 for quantities beyond ~2^46).
    assert float_quantity is not None, f"float64 path {float_value} != certified {res}"
    b = BAND * max(1.0, abs(float_quantity))
    gap = abs(float_quantity - round(float_quantity))
    assert gap <= b and abs(res.value - float_value) <= 1 + 2 * b, \
        f"float64 path {float_value} (quantity {float_quantity!r}) != certified {res}"
    event("float64 integer wrong by one inside its rounding band (certificate decides)")


def decades(lo: float, hi: float):
    return st.floats(lo, hi).map(lambda e: 10.0**e)


# --------------------------------------------------------------------------------------------
# the mechanism


def test_certify_exact_integer_is_ambiguous_and_never_rounded():
    # log(8)/log(2) = 3 exactly: every enclosure straddles 3, at every precision.
    res = cert.certify_ceil(lambda ctx, a, b: ctx.log(a) / ctx.log(b), 8.0, 2.0)
    assert res.ambiguous and res.value is None and res.candidates == (3, 4)
    assert res.lo < 3 < res.hi and res.prec == cert.MAX_PREC
    with pytest.raises(cert.AmbiguousInteger, match="not certified"):
        res.require("T")
    assert res.conservative() == 4 and res.conservative(larger=False) == 3
    # The same quantity with its defining inequality (least n with 2^n >= 8) is decided exactly.
    decided = cert.certify_ceil(lambda ctx, a, b: ctx.log(a) / ctx.log(b), 8.0, 2.0,
                                decide=lambda n: 2**n >= 8)
    assert decided.value == 3 and not decided.ambiguous and "decided exactly" in decided.reason
    # Floor and strict thresholds of the same exact integer straddle too.
    assert cert.certify_floor(lambda ctx, a, b: ctx.log(a) / ctx.log(b), 8.0, 2.0).candidates == (2, 3)
    assert cert.certify_above(lambda ctx, a, b: ctx.log(a) / ctx.log(b), 8.0, 2.0).candidates == (3, 4)


def test_certify_rational_exact_results_are_certified_points():
    # Exactly representable arithmetic gives a zero-width enclosure: 3/0.25 = 12, ceil 12, floor 12,
    # strictly above 13.
    f = lambda ctx, a, b: a / b  # noqa: E731
    for rounding, want in (("ceil", 12), ("floor", 12), ("above", 13)):
        res = cert.certify(f, 3.0, 0.25, rounding=rounding)
        assert res.value == want and res.lo == res.hi == 12 and "exact" in res.reason


def test_certify_resolves_within_one_ulp_of_an_integer():
    # x = 3 (1 + u) is one ulp above 3 as a double, so ceil = 4 exactly; the float64 product
    # x * (1/3) rounds to 1.0 and the float64 ceiling of 3 * that is wrong by one.
    x = math.nextafter(3.0, 4.0)
    res = cert.certify_ceil(lambda ctx, a: a / 3 * 3, x)
    assert res.value == 4 and not res.ambiguous
    assert math.ceil(x * (1.0 / 3.0) * 3.0) == 3  # the float64 path lands on the wrong side


def test_certify_bad_input():
    f = lambda ctx, a: a  # noqa: E731
    with pytest.raises(ValueError, match="rounding"):
        cert.certify(f, 1.0, rounding="nearest")
    with pytest.raises(ValueError, match="prec"):
        cert.certify(f, 1.0, prec=24)
    with pytest.raises(ValueError, match="max_prec"):
        cert.certify(f, 1.0, prec=200, max_prec=100)
    with pytest.raises(ValueError, match="x"):
        cert.certify(f, math.nan, names=("x",))
    with pytest.raises(ValueError, match="arg0"):
        cert.certify(f, math.inf)
    with pytest.raises(ValueError, match="arg0"):
        cert.certify(f, True)
    with pytest.raises(TypeError, match="interval"):
        cert.certify(lambda ctx, a: 1.5, 1.0)
    with pytest.raises(ValueError, match="parts"):
        cert.certified_max()


def test_unbounded_enclosure_is_ambiguous():
    res = cert.certify_ceil(lambda ctx, a: ctx.log(a - a), 1.0)
    assert res.ambiguous and "unbounded" in res.reason


def test_certified_max_keeps_a_dominated_ambiguity_out():
    amb = cert.certify_ceil(lambda ctx, a, b: ctx.log(a) / ctx.log(b), 8.0, 2.0)  # {3, 4}
    big = cert.certify_ceil(lambda ctx, a: a, 10.0)
    assert cert.certified_max(amb, big).value == 10
    small = cert.certify_ceil(lambda ctx, a: a, 3.5)  # 4
    both = cert.certified_max(amb, small)
    assert both.value == 4  # max(3 or 4, 4) = 4 either way
    assert cert.certified_max(amb, cert.certify_ceil(lambda ctx, a: a, 2.0)).ambiguous


def test_metrics_and_interval_strings_are_outward_rounded():
    res = cert.certified_steps_for_rho_power(0.9, 1e-6)
    m = res.as_metrics()
    assert m["value"] == res.value == ph.steps_for_rho_power(0.9, 1e-6) and m["ambiguous"] is False
    lo, hi = (Fraction(s) for s in res.interval)
    assert lo <= res.lo and res.hi <= hi and hi - lo < Fraction(1, 10**30)
    assert "CertifiedInt(value=132" in repr(res)


# --------------------------------------------------------------------------------------------
# DLN constants


@given(decades(-6.0, -0.3), decades(-14.0, -0.5))
@example(0.5, 0.125)  # exact: 0.5^3 = 0.125, decided, and the float64 path gets 3 too
@example(1 - 1e-6, 1e-6)
def test_steps_for_rho_power_float64_matches_certified(one_minus_rho, target):
    rho = 1.0 - one_minus_rho
    res = cert.certified_steps_for_rho_power(rho, target)
    ctx = _mp()
    ref = ctx.log(ctx.mpf(target)) / ctx.log(ctx.mpf(rho))
    _check(res, ph.steps_for_rho_power(rho, target), ref, math.log(target) / math.log(rho))
    # dln_minimizer._ridge_steps is the same constant at target 1e-12
    if target == 1e-12:
        assert res.value == math.ceil(math.log(target) / math.log(rho))


def test_steps_for_rho_power_exact_cases():
    assert cert.certified_steps_for_rho_power(0.5, 0.125, exact=False).ambiguous
    res = cert.certified_steps_for_rho_power(0.5, 0.125)
    assert res.value == 3 == ph.steps_for_rho_power(0.5, 0.125)
    # one ulp above the exact power: 0.5^3 > target, so T = 4
    above = cert.certified_steps_for_rho_power(0.5, math.nextafter(0.125, 0.0))
    assert above.value == 4 and not above.ambiguous
    assert cert.certified_steps_for_rho_power(0.9, 1.5).value == 0 == ph.steps_for_rho_power(0.9, 1.5)


def test_steps_for_rho_power_bad_input():
    for rho in (0.0, -0.5, 1.0, 1.5, math.nan):
        with pytest.raises(ValueError, match="rho"):
            cert.certified_steps_for_rho_power(rho, 1e-6)
    with pytest.raises(ValueError, match="target"):
        cert.certified_steps_for_rho_power(0.5, 0.0)


@given(decades(-10.0, 0.0), decades(-6.0, -0.3), st.booleans(), decades(-2.0, 6.0))
@example(1e-10, 0.005, False, 3.7)  # the engineering guide's literal: 4854.659... -> 4855
def test_t_d2_float64_and_mp_point_match_certified(eps, one_minus, negative, B):
    rho1 = -(1.0 - one_minus) if negative else 1.0 - one_minus
    res = cert.certified_t_d2(eps, rho1, B)
    if B <= eps:
        assert res.value == 0 == dlb.T_D2(eps, rho1, B)
        return
    ctx = _mp()
    ref = ctx.log(ctx.mpf(B) / ctx.mpf(eps)) / -ctx.log(abs(ctx.mpf(rho1)))
    _check(res, dlb.T_D2(eps, rho1, B), ref, math.log(B / eps) / -math.log(abs(rho1)))
    if rho1 > 0 and not res.ambiguous:
        assert res.value == ph.t_d2_certified(eps, rho1, B)


def test_t_d2_exact_cases_and_bad_input():
    # 0.5^3 * 8 = 1 = eps exactly
    assert cert.certified_t_d2(1.0, 0.5, 8.0, exact=False).ambiguous
    assert cert.certified_t_d2(1.0, 0.5, 8.0).value == 3 == ph.t_d2_certified(1.0, 0.5, 8.0)
    assert cert.certified_t_d2(1.0, -0.5, 8.0).value == 3
    assert cert.certified_t_d2(1.0, 0.5, math.nextafter(8.0, 9.0)).value == 4
    assert cert.certified_t_d2(1.0, 0.5, 1.0).value == 0
    with pytest.raises(ValueError, match="eps"):
        cert.certified_t_d2(0.0, 0.5, 1.0)
    for rho1 in (0.0, 1.0, -1.0, 2.0):
        with pytest.raises(ValueError, match="rho1"):
            cert.certified_t_d2(1e-3, rho1, 1.0)
    with pytest.raises(ValueError, match="B_max"):
        cert.certified_t_d2(1e-3, 0.5, -1.0)


@given(st.integers(1, 10), st.floats(1.0, 100.0), st.integers(1, 400), decades(-1.0, 1.0))
# Found by the thorough profile: 0.1 * 50^2 = 250.0000000000000139 for the double 0.1, float64 250.0
@example(1, 50.0, 1, 0.1)
def test_seed002_width_float64_matches_certified(L, kappa_X, d, C_w):
    res = cert.certified_seed002_width(L, kappa_X, d, C_w)
    ctx = _mp()
    ref = ctx.mpf(C_w) * L**2 * ctx.mpf(kappa_X) ** 2 * d
    w = dlb.width_seed002(L, kappa_X, d, C_w).value
    _check(res, math.ceil(w), ref, w)


# --------------------------------------------------------------------------------------------
# DIP constants


@given(decades(-8.0, 2.0), decades(0.01, 8.0), decades(-8.0, -0.01))
def test_early_stopping_steps_float64_and_iv_match_certified(eps, ratio, one_minus_q):
    r0, q = eps * ratio, 1.0 - one_minus_q
    if not r0 > eps:
        return
    res = cert.certified_early_stopping_steps(r0, eps, q)
    ctx = _mp()
    ref = 2 * ctx.log(ctx.mpf(r0) / ctx.mpf(eps)) / -ctx.log(ctx.mpf(q))
    x = 2.0 * math.log(r0 / eps) / -math.log(q)
    _check(res, math.ceil(x), ref, x)
    if not res.ambiguous:
        assert res.value == dipb.early_stopping_steps(r0, eps, q)


def test_early_stopping_steps_exact_and_near_integer_cases():
    # 2 ln(4)/(-ln 0.25) = 2 exactly: q^2 = 1/16 = (eps/r0)^2, so tau_eps = 2.
    assert cert.certified_early_stopping_steps(4.0, 1.0, 0.25, exact=False).ambiguous
    assert cert.certified_early_stopping_steps(4.0, 1.0, 0.25).value == 2
    # eps one ulp below 1: the quotient is 2 + 1.6e-16, so tau_eps = 3 (certified at 113 bits)
    near = cert.certified_early_stopping_steps(4.0, math.nextafter(1.0, 0.0), 0.25)
    assert near.value == 3 and not near.ambiguous and near.lo > 2
    for args, name in (((1.0, 1.0, 0.5), "r0"), ((1.0, 0.0, 0.5), "eps_eff"), ((2.0, 1.0, 1.0), "q_gamma"),
                       ((2.0, 1.0, 0.0), "q_gamma")):
        with pytest.raises(ValueError, match=name):
            cert.certified_early_stopping_steps(*args)


RADIAL = st.one_of(st.just(dip.make_loss("mse")),
                   st.floats(2.05, 4.0).map(lambda p: dip.make_loss("power", p=p)),
                   decades(-2.0, 1.0).map(lambda d: dip.make_loss("huber", delta=d)))


@given(RADIAL, decades(-4.0, 1.0), decades(0.05, 4.0), decades(-3.0, 2.0), decades(-3.0, 0.0))
def test_early_stopping_steps_radial_float64_matches_certified(loss, eps, ratio, kappa, c_gamma):
    r0 = eps * ratio
    if not r0 > eps:
        return
    res = cert.certified_early_stopping_steps_radial(loss, r0, eps, kappa, c_gamma)
    try:
        got = dipb.early_stopping_steps_radial(loss, r0, eps, kappa, c_gamma)
    except ValueError:
        event("float64 path refuses (within 1e-9 of an integer)")
        return
    ctx = _mp()
    p, dd = ctx.mpf(loss.p), ctx.mpf(loss.delta)

    def H(rho):
        rho = ctx.mpf(rho)
        if loss.name == "mse":
            return -ctx.log(rho)
        if loss.name == "power":
            return rho ** (2 - p) / (p - 2)
        return -ctx.log(rho) if rho <= dd else -ctx.log(dd) - (rho - dd) / dd

    ref = (H(eps) - H(r0)) / (ctx.mpf(c_gamma) * ctx.mpf(kappa))
    _check(res, got, ref, None)  # the float64 path refuses its band


def test_early_stopping_steps_radial_bad_input():
    mse = dip.make_loss("mse")
    with pytest.raises(ValueError, match="loss"):
        cert.certified_early_stopping_steps_radial(object(), 2.0, 1.0, 1.0, 1.0)
    for args, name in (((1.0, 1.0, 1.0, 1.0), "r0"), ((2.0, 1.0, 0.0, 1.0), "kappa"),
                       ((2.0, 1.0, 1.0, -1.0), "c_gamma")):
        with pytest.raises(ValueError, match=name):
            cert.certified_early_stopping_steps_radial(mse, *args)


ACTS = st.sampled_from(["tanh", "sigmoid", "softplus"])
VARIANTS = st.sampled_from(["gf", "gd", "gf_refined"])


@given(st.integers(2, 60), decades(-2.0, 1.0), decades(-1.0, 2.0), ACTS, st.floats(0.5, 2.0), VARIANTS)
def test_d5_width_float64_matches_certified(n, sigmaA, rho, act, D, variant):
    res = cert.certified_d5_width(n, sigmaA, rho, act=act, D=D, variant=variant)
    wt = dipb.width_threshold(n, sigmaA, rho, act=act, D=D, delta0=0.1, variant=variant)
    float_value = max(math.ceil(wt.k_chernoff), math.floor(wt.k_lazy) + 1)  # dip_width.d5_width
    c = dipb.activation_constants(act)
    ctx = _mp()
    q = ctx.mpf(1) / 4
    k_ch = 2 / (3 * q + q * ctx.log(q)) * ctx.mpf(c.B1) ** 2 * ctx.mpf(D) ** 2 / ctx.mpf(c.C_dphi) ** 2 * n \
        * ctx.log(n)
    k_lazy = ({"gf": 256, "gd": 1024, "gf_refined": 64}[variant] * ctx.mpf(c.B2) ** 2 * ctx.mpf(D) ** 2
              / ctx.mpf(c.C_dphi) ** 4 * n * ctx.mpf(rho) ** 2 / ctx.mpf(sigmaA) ** 2)
    ref = k_ch if math.ceil(k_ch) >= math.floor(k_lazy) + 1 else k_lazy
    fq = wt.k_chernoff if math.ceil(wt.k_chernoff) >= math.floor(wt.k_lazy) + 1 else wt.k_lazy
    _check(res, float_value, ref, fq)


def test_d5_width_within_one_ulp_of_an_integer():
    # C_phi' chosen so that k_chernoff(n = 10) is within an ulp of 1000: the interval settles the
    # ceiling, and it agrees with the 50-digit value.
    c = dipb.activation_constants("tanh")
    ctx = _mp()
    q = ctx.mpf(1) / 4
    C = float(ctx.sqrt(2 / (3 * q + q * ctx.log(q)) * 10 * ctx.log(10) / 1000))
    consts = dipb.ActivationConstants(c.C_phi, C, c.B1, c.B2)
    res = cert.certified_d5_width(10, 100.0, 1e-3, constants=consts)  # k_lazy negligible
    exact = 2 / (3 * q + q * ctx.log(q)) * 10 * ctx.log(10) / ctx.mpf(C) ** 2
    assert abs(exact - 1000) < 1e-12 and not res.ambiguous
    assert res.value == int(ctx.ceil(exact))
    # k_lazy exactly an integer in dyadic arithmetic: the strict threshold k > 32 gives 33, exactly
    dyadic = dipb.ActivationConstants(1.0, 1.0, 1.0, 0.25)
    lazy = cert.certified_d5_width(2, 1.0, 1.0, constants=dyadic)  # 256/16 * 2 = 32 (k_ch = 9.9)
    assert lazy.value == 33 and not lazy.ambiguous


def test_d5_width_bad_input():
    with pytest.raises(ValueError, match="n"):
        cert.certified_d5_width(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="sigmaA"):
        cert.certified_d5_width(5, 0.0, 1.0)
    with pytest.raises(ValueError, match="variant"):
        cert.certified_d5_width(5, 1.0, 1.0, variant="sgd")
    with pytest.raises(ValueError, match="B_2"):
        cert.certified_d5_width(5, 1.0, 1.0, act="relu")
    with pytest.raises(ValueError, match="act"):
        cert.certified_d5_width(5, 1.0, 1.0, act="gelu")


@given(st.integers(1, 50), st.integers(1, 50), st.integers(2, 100), decades(-2.0, 1.0), decades(-1.0, 1.0),
       st.floats(0.0, 3.0), st.floats(0.0, 1.0))
# Found by the thorough profile: k = 1495975248337198.9014 exactly, float64 1495975248337200.0 (ulp 0.25)
@example(14, 1, 2, 0.01, 10.0, 0.0, 1.0)
def test_paper_widths_float64_match_certified(n, m, d, sigmaA, norm_A, Ax_inf, eps_inf):
    res = cert.certified_paper_width_4th_power(n, m, d, sigmaA, norm_A, Ax_inf, eps_inf)
    ctx = _mp()
    X = ctx.mpf(norm_A) * ctx.sqrt(n * ctx.log(d)) + ctx.sqrt(m) * (ctx.mpf(Ax_inf) + ctx.mpf(eps_inf))
    ref = n * X**4 / ctx.mpf(sigmaA) ** 4
    w = dipb.paper_width_4th_power(n, m, d, sigmaA, norm_A, Ax_inf, eps_inf).value
    _check(res, math.ceil(w), ref, w)
    s0 = cert.certified_paper_sigma0_width(n)
    w0 = dipb.paper_sigma0_width(n).value
    _check(s0, math.ceil(w0), n * ctx.log(n) if n > 1 else ctx.mpf(0), w0)


def test_paper_widths_bad_input():
    with pytest.raises(ValueError, match="sigmaA"):
        cert.certified_paper_width_4th_power(5, 5, 3, 0.0, 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="eps_inf"):
        cert.certified_paper_width_4th_power(5, 5, 3, 1.0, 1.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="C_second"):
        cert.certified_paper_sigma0_width(5, C_second=0.0)
    assert cert.certified_paper_sigma0_width(1).value == 0  # ln 1 = 0 exactly


# --------------------------------------------------------------------------------------------
# sample sizes and grids


@given(st.floats(0.01, 0.9999), st.floats(0.5, 0.9999))
@example(0.9, 0.99)
def test_trials_to_confirm_float64_matches_certified(proven, level):
    res = cert.certified_trials_to_confirm(proven, level)
    ctx = _mp()
    ref = ctx.log((1 - ctx.mpf(level)) / 2) / ctx.log(ctx.mpf(proven))
    _check(res, trials_to_confirm(proven, level), ref, math.log((1.0 - level) / 2.0) / math.log(proven))


def test_trials_to_confirm_exact_case_and_bad_input():
    # (1 - 0.75)/2 = 0.125 = 0.5^3
    assert cert.certified_trials_to_confirm(0.5, 0.75, exact=False).ambiguous
    assert cert.certified_trials_to_confirm(0.5, 0.75).value == 3 == trials_to_confirm(0.5, 0.75)
    assert cert.certified_trials_to_confirm(0.01, 0.5).value == 1  # the max(1, .) floor
    for p in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="proven"):
            cert.certified_trials_to_confirm(p)
    with pytest.raises(ValueError, match="level"):
        cert.certified_trials_to_confirm(0.5, 1.0)


@given(st.floats(-3.0, 0.0), st.floats(0.01, 6.0), decades(-5.0, -1.0))
@example(-3.0, 6.0, 0.005)  # the ripple bracket claim's default-like grid
# Found by the thorough profile: (hi - lo)/0.01 = 100.0000000000000028 exactly, 100.0 in float64, so
# the float64 grid has 101 points and a spacing 2.8e-17 relative above the requested one
@example(-1.192092896e-07, 1.0, 0.01)
def test_grid_points_float64_matches_certified(lo, width, spacing):
    hi = lo + width
    res = cert.certified_grid_points(lo, hi, spacing)
    ctx = _mp()
    ref = (ctx.mpf(hi) - ctx.mpf(lo)) / ctx.mpf(spacing) + 1
    q = (hi - lo) / spacing
    _check(res, math.ceil(q) + 1, ref, q)


def test_grid_points_exact_and_bad_input():
    assert cert.certified_grid_points(0.0, 1.0, 0.25).value == 5  # 1/0.25 = 4 exactly
    with pytest.raises(ValueError, match="hi"):
        cert.certified_grid_points(1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="spacing"):
        cert.certified_grid_points(0.0, 1.0, 0.0)
