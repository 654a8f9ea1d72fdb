"""Operational two-phase quantities of deep-linear GD runs, computed from trajectory records.

Pure functions on arrays (record times and recorded values); nothing here runs training. The
definitions are the operational ones of ``docs/theory/deep_linear.md`` section 10.3:

* Phase-1 level ``r_1 = min_{t <= T} r(t)``, reached at ``t_min``;
* Phase-1 time ``tau_theta = min{t : r(t) <= theta r_1}`` with ``theta = 1.5``;
* Phase-2 level ``r_2 = r(T)``, with ``T`` chosen so that ``rho^T <= 1e-6``;
* off-subspace time ``T_eps = min{t : ||M(t) P_perp||_2 <= eps}`` with ``eps = d_w^{-C}``, ``C = 1``;
* rebound ratio ``r_2 / r_1``;

plus the late-phase slope of ``ln ||M P_perp||_2`` (D2 predicts ``ln rho_1``), the a-posteriori
Phase-2 time ``T_D2`` as a certified integer, the run-length tests behind the phase definitions
(is the Phase-1 minimum resolved, has ``r`` settled on its plateau, the least ``T`` with
``rho^T <= 1e-6``), least-squares fits (ordinary and with per-group intercepts) and the talk's
hidden constants ``C_tau, C_1, C_T, C_2`` solved from the O-forms.

Records are taken on a schedule, so a "first time" computed here is the first *record* time at
which the condition holds. With a record every step this is the definition itself; on a coarser
grid it is the definition's value rounded up to the grid, which every function documents.

The [seed 000] / [seed 002] constants (``C``, ``theta``, seed 002's ``32`` in the Phase-1 rate,
``C_w``, ``delta_0``) are module-level, documented and overridable by argument; the [derived] and
[choice] operational parameters likewise.
"""

from __future__ import annotations

import dataclasses
import math

import mpmath
import numpy as np
from scipy import stats

from dynamics._validate import positive_int, real

THETA = 1.5
"""[choice] Threshold multiple of the Phase-1 time ``tau_theta = min{t : r(t) <= THETA r_1}``."""

EPS_EXPONENT_C = 1.0
"""[choice] The talk's unstated exponent ``C`` in ``||M P_perp||_2 = O(d_w^{-C})`` (default 1)."""

RHO_T_TARGET = 1e-6
"""[choice] Phase-2 runs must reach ``rho^T <= RHO_T_TARGET`` before ``r(T)`` counts as ``r_2``."""

PHASE1_FLAT_TOL = 0.01
"""[choice] A run determines ``r_1`` when its minimum lies in the first half of the run, or when
``r`` changed by at most this fraction over the second half (a flat approach to the plateau)."""

LATE_FRACTION = 1.0 / 3.0
"""[choice] The late-phase slope is fitted on the last ``LATE_FRACTION`` of the run's time span."""

SEED002_RATE_DENOMINATOR = 32.0
"""[seed 002] The ``32`` of the Phase-1 rate ``q = 1 - 1/(32 kappa(X)^2)`` (profile value)."""

SEED002_T2_FACTOR = 2.0
"""[choice] The seed-002 rate is checked for ``t <= t_2 = min{t : r(t) <= SEED002_T2_FACTOR r_1}``."""


def _times_values(times, values, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"times: expected a non-empty 1-d array, got shape {t.shape}")
    if v.shape != t.shape:
        raise ValueError(f"{name}: shape {v.shape} differs from times {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError("times: must be finite and strictly increasing")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: contains non-finite values")
    return t, v


# --------------------------------------------------------------------------------------------
# phase quantities


@dataclasses.dataclass(frozen=True)
class PhaseOne:
    """Phase-1 quantities of one run.

    Attributes
    ----------
    r1 : float
        Phase-1 level ``min_t r(t)`` over the records.
    t_min : int
        First record time at which ``r1`` is attained.
    tau : int
        ``tau_theta``: first record time with ``r(t) <= theta r1``.
    theta : float
        The threshold multiple used.
    """

    r1: float
    t_min: int
    tau: int
    theta: float


def phase_one(times, fit_error, theta: float = THETA) -> PhaseOne:
    """Phase-1 level ``r_1``, its time ``t_min`` and the Phase-1 time ``tau_theta``.

    Parameters
    ----------
    times : array_like, shape (n,)
        Strictly increasing record times (GD iterations).
    fit_error : array_like, shape (n,)
        ``r(t) = ||M(t) Y - X||_F`` at the record times (>= 0).
    theta : float
        Threshold multiple (> 1 makes ``tau <= t_min``; 1 gives ``tau = t_min``).

    Returns
    -------
    PhaseOne
        On a coarse record grid ``r1`` over-estimates the true minimum and ``tau`` is rounded up
        to the grid; with a record every step both are exact.
    """
    t, r = _times_values(times, fit_error, "fit_error")
    theta = real("theta", theta, minimum=1.0)
    if np.any(r < 0):
        raise ValueError("fit_error: must be >= 0")
    i_min = int(np.argmin(r))
    r1 = float(r[i_min])
    i_tau = int(np.flatnonzero(r <= theta * r1)[0])
    return PhaseOne(r1=r1, t_min=int(t[i_min]), tau=int(t[i_tau]), theta=theta)


def phase_one_resolved(times, fit_error, flat_tol: float = PHASE1_FLAT_TOL) -> bool:
    """Whether the records of a run determine the Phase-1 level ``r_1 = min_t r(t)``.

    True when the minimum lies in the first half of the run (``r`` has turned back up), or when
    the level at mid-run is within ``flat_tol`` of the minimum (``r`` approaches its plateau flatly,
    so running longer moves ``r_1``, and ``theta r_1``, by less than that).
    """
    t, r = _times_values(times, fit_error, "fit_error")
    flat_tol = real("flat_tol", flat_tol, minimum=0.0)
    i_min = int(np.argmin(r))
    half = t[0] + (t[-1] - t[0]) / 2
    if t[i_min] <= half:
        return True
    i_half = int(np.flatnonzero(t <= half)[-1])
    return bool(r[i_half] <= (1.0 + flat_tol) * r[i_min])


PLATEAU_WINDOW = 0.1
"""[choice] Fraction of the run (at its end) over which the Phase-2 plateau must be flat."""

PLATEAU_REL_TOL = 1e-3
"""[choice] Largest relative spread ``max r / min r - 1`` of a converged plateau in that window."""


def plateau_converged(times, fit_error, window: float = PLATEAU_WINDOW,
                      rel_tol: float = PLATEAU_REL_TOL) -> bool:
    """Whether ``r(t)`` has settled on its Phase-2 plateau at the end of the run.

    ``rho^T`` small is necessary but not sufficient: a step beyond the local stability limit can
    keep GD oscillating (edge of stability) with ``r`` far above the plateau. The run counts as
    converged when ``max r / min r - 1 <= rel_tol`` over the last ``window`` of its time span.
    """
    t, r = _times_values(times, fit_error, "fit_error")
    window = real("window", window, minimum=0.0, strict=True)
    rel_tol = real("rel_tol", rel_tol, minimum=0.0)
    sel = t >= t[-1] - window * (t[-1] - t[0])
    lo = float(np.min(r[sel]))
    return bool(lo > 0 and float(np.max(r[sel])) <= (1.0 + rel_tol) * lo)


def phase_two_level(times, fit_error, horizon: int | None = None) -> float:
    """Phase-2 level ``r_2 = r(T)``: the fit error at the record time ``T`` (default: the last).

    The caller is responsible for ``rho^T <= RHO_T_TARGET`` (see :func:`steps_for_rho_power`).

    Raises
    ------
    ValueError
        If ``horizon`` is not a record time.
    """
    t, r = _times_values(times, fit_error, "fit_error")
    if horizon is None:
        return float(r[-1])
    hit = np.flatnonzero(t == horizon)
    if not hit.size:
        raise ValueError(f"horizon: {horizon} is not a record time")
    return float(r[hit[0]])


def first_time_below(times, values, level: float) -> int | None:
    """First record time with ``values <= level``; ``None`` if the records never get there.

    With ``values = ||M(t) P_perp||_2`` and ``level = eps`` this is ``T_eps`` (rounded up to the
    record grid).
    """
    t, v = _times_values(times, values, "values")
    level = real("level", level)
    hit = np.flatnonzero(v <= level)
    return int(t[hit[0]]) if hit.size else None


def off_subspace_eps(d_w: int, C: float = EPS_EXPONENT_C) -> float:
    """``eps = d_w^{-C}``, the talk's off-subspace target ([seed 000]; ``C`` default 1 [choice])."""
    d_w = positive_int("d_w", d_w)
    C = real("C", C, minimum=0.0)
    return float(d_w) ** -C


def rho_power(rho: float, steps: int) -> float:
    """``rho^steps`` (the Phase-2 convergence hypothesis compares it with :data:`RHO_T_TARGET`)."""
    rho = real("rho", rho, minimum=0.0)
    steps = positive_int("steps", steps, minimum=0)
    return rho**steps


def steps_for_rho_power(rho: float, target: float = RHO_T_TARGET) -> int:
    """The least ``T`` with ``rho^T <= target`` (``0 < rho < 1``, ``0 < target < 1``).

    The float64 quotient ``log(target) / log(rho)`` is rounded up; the ceiling is then corrected
    by direct evaluation of ``rho**T``, so the returned ``T`` satisfies the condition in the
    arithmetic that GD itself uses.
    """
    rho = real("rho", rho, minimum=0.0, strict=True)
    target = real("target", target, minimum=0.0, strict=True)
    if rho >= 1.0:
        raise ValueError(f"rho: must be < 1 (lam > 0) to reach rho^T <= target, got {rho}")
    if target >= 1.0:
        return 0
    T = max(0, math.ceil(math.log(target) / math.log(rho)))
    while T > 0 and rho ** (T - 1) <= target:
        T -= 1
    while rho**T > target:
        T += 1
    return T


def rebound_ratio(r1: float, r2: float) -> float:
    """``r_2 / r_1``: how far the fit error rises from the Phase-1 level to the Phase-2 plateau."""
    r1 = real("r1", r1, minimum=0.0, strict=True)
    return real("r2", r2, minimum=0.0) / r1


def late_slope(times, values, fraction: float = LATE_FRACTION) -> tuple[float, float, int]:
    """Least-squares slope of ``ln values`` against ``t`` over the last ``fraction`` of the run.

    Parameters
    ----------
    times, values : array_like, shape (n,)
        Record times and positive values (e.g. ``||M(t) P_perp||_2``).
    fraction : float
        The window is ``t >= t_end - fraction (t_end - t_0)`` (by time, not by record count).

    Returns
    -------
    slope, stderr : float
        Slope per iteration and its standard error (``inf`` with fewer than 3 points).
    points : int
        Number of records in the window.

    Raises
    ------
    ValueError
        If a value in the window is not positive or the window holds fewer than 2 records.
    """
    t, v = _times_values(times, values, "values")
    fraction = real("fraction", fraction, minimum=0.0, strict=True)
    if fraction > 1:
        raise ValueError(f"fraction: must be <= 1, got {fraction}")
    start = t[-1] - fraction * (t[-1] - t[0])
    sel = t >= start
    if int(sel.sum()) < 2:
        raise ValueError(f"times: the last {fraction:.3g} of the run holds {int(sel.sum())} "
                         "record(s); need at least 2")
    if np.any(v[sel] <= 0):
        raise ValueError("values: must be > 0 in the fit window (log of zero)")
    fit = stats.linregress(t[sel], np.log(v[sel]))
    stderr = float(fit.stderr) if sel.sum() > 2 else math.inf
    return float(fit.slope), stderr, int(sel.sum())


# --------------------------------------------------------------------------------------------
# the a-posteriori Phase-2 time (D2), certified


def b_max(tail_norm, w1_perp0_norm: float) -> float:
    """``B_max = max_t ||W_{L:2}(t)||_2 ||W_1(0) P_perp||_2`` over the records (D2)."""
    tail = np.asarray(tail_norm, dtype=float)
    if tail.ndim != 1 or tail.size == 0 or not np.all(np.isfinite(tail)) or np.any(tail < 0):
        raise ValueError("tail_norm: expected a non-empty 1-d array of finite values >= 0")
    return float(np.max(tail)) * real("w1_perp0_norm", w1_perp0_norm, minimum=0.0)


def t_d2_certified(eps: float, rho1: float, B_max: float, dps: int = 50) -> int:
    """``T_D2(eps) = ceil(log(B_max / eps) / -log rho_1)`` as an exact integer (D2) [derived].

    The float64 quotient can land on the wrong side of an integer; the ceiling is evaluated in a
    private mpmath context at ``dps`` digits from the exact binary values of the float64 inputs
    (``rho1`` is the very float GD multiplies by). Returns 0 when ``B_max <= eps``.
    """
    eps = real("eps", eps, minimum=0.0, strict=True)
    rho1 = real("rho1", rho1, minimum=0.0, strict=True)
    if rho1 >= 1.0:
        raise ValueError(f"rho1: must be < 1 (lam > 0) for a finite Phase-2 time, got {rho1}")
    B_max = real("B_max", B_max, minimum=0.0)
    dps = positive_int("dps", dps, minimum=20)
    if B_max <= eps:
        return 0
    ctx = mpmath.MPContext()
    ctx.dps = dps
    q = ctx.log(ctx.mpf(B_max) / ctx.mpf(eps)) / -ctx.log(ctx.mpf(rho1))
    return int(ctx.ceil(q))


def grid_ceil(times, t: float) -> int | None:
    """The smallest record time ``>= t`` (``None`` if ``t`` lies beyond the last record)."""
    grid = np.asarray(times, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("times: expected a non-empty strictly increasing 1-d array")
    t = real("t", t)
    idx = int(np.searchsorted(grid, t, side="left"))
    return int(grid[idx]) if idx < grid.size else None


# --------------------------------------------------------------------------------------------
# least-squares fits


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """A least-squares line ``y = intercept_g + slope x`` with a t-based confidence interval.

    Attributes
    ----------
    slope, ci_low, ci_high : float
        The slope and its two-sided ``level`` confidence interval.
    stderr : float
        Standard error of the slope.
    intercepts : tuple of float
        One intercept per group (a single one for an ordinary fit).
    r_squared : float
        Coefficient of determination; the *within-group* one when groups are given.
    dof : int
        Residual degrees of freedom ``n - groups - 1``.
    """

    slope: float
    ci_low: float
    ci_high: float
    stderr: float
    intercepts: tuple[float, ...]
    r_squared: float
    dof: int


def linear_fit(x, y, groups=None, level: float = 0.95) -> LinearFit:
    """Least-squares slope of ``y`` on ``x``, optionally with one intercept per group.

    With ``groups`` (one label per point) this is the fixed-effects ("within") estimator: the
    slope common to all groups after removing each group's mean, with ``n - G - 1`` residual
    degrees of freedom, so a sweep over one axis at several values of another axis is fitted as
    parallel lines.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Finite observations.
    groups : array_like, shape (n,), optional
        Group labels.
    level : float
        Confidence level of the slope interval.

    Returns
    -------
    LinearFit

    Raises
    ------
    ValueError
        If the arrays are not finite and of equal length, leave no residual degree of freedom,
        or ``x`` has no spread within the groups.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x, y: need two 1-d arrays of equal length, got {x.shape}, {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x, y: must be finite")
    level = real("level", level, minimum=0.0, strict=True)
    if level >= 1:
        raise ValueError(f"level: must be < 1, got {level}")
    labels = np.zeros(x.size, dtype=int) if groups is None else np.unique(
        np.asarray(groups), return_inverse=True)[1]
    if labels.shape != x.shape:
        raise ValueError(f"groups: shape {labels.shape} differs from x {x.shape}")
    G = int(labels.max()) + 1
    dof = x.size - G - 1
    if dof < 1:
        raise ValueError(f"x: {x.size} points and {G} group(s) leave no residual degree of freedom")
    xm = np.array([x[labels == g].mean() for g in range(G)])
    ym = np.array([y[labels == g].mean() for g in range(G)])
    xc, yc = x - xm[labels], y - ym[labels]
    sxx = float(xc @ xc)
    if sxx <= 0:
        raise ValueError("x: no spread within the groups; the slope is undetermined")
    slope = float(xc @ yc) / sxx
    resid = yc - slope * xc
    sse = float(resid @ resid)
    syy = float(yc @ yc)
    stderr = math.sqrt(sse / dof / sxx)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * stderr
    r2 = 1.0 - sse / syy if syy > 0 else 1.0
    return LinearFit(slope=slope, ci_low=slope - half, ci_high=slope + half, stderr=stderr,
                     intercepts=tuple(float(v) for v in ym - slope * xm), r_squared=float(r2),
                     dof=dof)


def coefficient_of_variation(values) -> float:
    """``std / |mean|`` (sample standard deviation, ``ddof = 1``) of at least two finite values."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError("values: need a 1-d array of at least two finite values")
    mean = float(np.mean(v))
    if mean == 0:
        raise ValueError("values: mean is zero; the coefficient of variation is undefined")
    return float(np.std(v, ddof=1) / abs(mean))


# --------------------------------------------------------------------------------------------
# the talk's hidden constants (section 9.1), solved from the O-forms


def c_tau(tau: float, eta: float, L: int, lam: float) -> float:
    """``C_tau`` from ``tau = C_tau log(L/lam) / (eta L)`` ([seed 000]; needs ``lam < L``)."""
    eta = real("eta", eta, minimum=0.0, strict=True)
    L = positive_int("L", L)
    lam = real("lam", lam, minimum=0.0, strict=True)
    if lam >= L:
        raise ValueError(f"lam: the talk's form needs log(L/lam) > 0, got lam={lam} >= L={L}")
    return real("tau", tau, minimum=0.0) * eta * L / math.log(L / lam)


def c_one(r1: float, lam: float, L: int) -> float:
    """``C_1`` from ``r_1 = C_1 lam / L`` ([seed 000])."""
    lam = real("lam", lam, minimum=0.0, strict=True)
    return real("r1", r1, minimum=0.0) * positive_int("L", L) / lam


def c_big_t(T_eps: float, eta: float, lam: float, d_w: int) -> float:
    """``C_T`` from ``T = C_T log(d_w) / (eta lam)`` ([seed 000]; needs ``d_w >= 2``)."""
    d_w = positive_int("d_w", d_w, minimum=2)
    eta = real("eta", eta, minimum=0.0, strict=True)
    lam = real("lam", lam, minimum=0.0, strict=True)
    return real("T_eps", T_eps, minimum=0.0) * eta * lam / math.log(d_w)


def c_two(r2: float, lam: float) -> float:
    """``C_2`` from ``r_2 = C_2 lam`` ([seed 000])."""
    return real("r2", r2, minimum=0.0) / real("lam", lam, minimum=0.0, strict=True)


# --------------------------------------------------------------------------------------------
# seed 002's Phase-1 rate (profile)


@dataclasses.dataclass(frozen=True)
class GeometricRate:
    """Seed 002's Phase-1 rate check on one run.

    Attributes
    ----------
    q : float
        The profile rate ``1 - 1/(denominator kappa^2)``.
    t2 : int
        ``min{t : r(t) <= t2_factor r_1}``: the end of the window checked.
    fitted_rate : float
        ``exp`` of the least-squares slope of ``ln r`` over ``[0, t_2]`` (1.0 if ``t_2 = 0``).
    worst_ratio : float
        ``max_{t <= t_2} r(t) / (q^t r(0))`` over the records (<= 1 means the profile bound holds).
    worst_time : int
        The record time of ``worst_ratio``.
    """

    q: float
    t2: int
    fitted_rate: float
    worst_ratio: float
    worst_time: int


def seed002_rate_check(times, fit_error, kappa_X: float,
                       denominator: float = SEED002_RATE_DENOMINATOR,
                       t2_factor: float = SEED002_T2_FACTOR) -> GeometricRate:
    """Compare ``r(t)`` with ``q^t r(0)``, ``q = 1 - 1/(denominator kappa(X)^2)``, for ``t <= t_2``.

    ``t_2 = min{t : r(t) <= t2_factor r_1}`` with ``r_1 = min_t r(t)``: the bound is claimed
    before the ``lambda``-dependent threshold, not after it ([seed 002], profile).
    """
    t, r = _times_values(times, fit_error, "fit_error")
    if t[0] != 0:
        raise ValueError("times: the first record must be t = 0 (r(0) anchors the bound)")
    if np.any(r <= 0):
        raise ValueError("fit_error: must be > 0 (a log-rate is fitted)")
    kappa_X = real("kappa_X", kappa_X, minimum=1.0)
    denominator = real("denominator", denominator, minimum=0.0, strict=True)
    t2_factor = real("t2_factor", t2_factor, minimum=1.0)
    q = 1.0 - 1.0 / (denominator * kappa_X**2)
    r1 = float(np.min(r))
    i2 = int(np.flatnonzero(r <= t2_factor * r1)[0])
    sel = slice(0, i2 + 1)
    ratios = r[sel] / (q ** t[sel] * r[0])
    iw = int(np.argmax(ratios))
    if i2 >= 1:
        fitted = float(np.exp(np.polyfit(t[sel], np.log(r[sel]), 1)[0]))
    else:
        fitted = 1.0
    return GeometricRate(q=q, t2=int(t[i2]), fitted_rate=fitted, worst_ratio=float(ratios[iw]),
                         worst_time=int(t[iw]))
