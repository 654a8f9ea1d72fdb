"""Statistics for scaling-law and statistical claims: log-log fits, exact binomial intervals,
monotone crossing points and percentile bootstrap intervals."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

from verification.engine import ExponentFit


def fit_exponent(x, y, *, label: str, window: tuple[float, float], logx: bool = True,
                 max_ci_width: float = math.inf, min_r_squared: float = 0.0,
                 level: float = 0.95) -> ExponentFit:
    """Least-squares slope of ``log y`` against ``log x`` (or ``x``) with a t-based CI.

    Parameters
    ----------
    x, y : array_like
        Sweep values and observations (``y > 0``; ``x > 0`` when ``logx``).
    label : str
        Name of the fit.
    window : tuple of float
        Accepted exponents (see :class:`verification.engine.ExponentFit`).
    logx : bool
        Fit against ``log x`` (power law) or ``x`` itself (e.g. ``x`` already a logarithm).
    max_ci_width, min_r_squared : float
        Acceptance limits on the interval width and the goodness of fit.
    level : float
        Confidence level of the interval.

    Returns
    -------
    ExponentFit
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"x, y: need two 1-d arrays of equal length >= 3, got {x.shape}, {y.shape}")
    if np.any(y <= 0) or (logx and np.any(x <= 0)):
        raise ValueError("y: a log-log fit needs positive values")
    u = np.log(x) if logx else x
    v = np.log(y)
    res = stats.linregress(u, v)
    dof = u.size - 2
    half = stats.t.ppf(0.5 + level / 2, dof) * res.stderr if dof > 0 else math.inf
    r2 = res.rvalue**2 if np.isfinite(res.rvalue) else 0.0
    return ExponentFit(label=label, exponent=float(res.slope), ci_low=float(res.slope - half),
                       ci_high=float(res.slope + half), r_squared=float(r2), window=window,
                       max_ci_width=max_ci_width, min_r_squared=min_r_squared,
                       points={"x": x.tolist(), "y": y.tolist()})


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper-Pearson interval for a binomial proportion."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"successes, trials: need 0 <= successes <= trials > 0, got "
                         f"{successes}, {trials}")
    alpha = 1 - level
    lo = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    hi = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1,
                                                        trials - successes)
    return float(lo), float(hi)


def binomial_upper(successes: int, trials: int, z: float = 4.0) -> float:
    """One-sided upper confidence bound on a proportion at ``z`` standard errors (Wilson)."""
    p = successes / trials
    den = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return min(1.0, (centre + spread) / den)


# --------------------------------------------------------------------------------------------
# monotone crossing points and percentile bootstrap (spec dip.md §10.6)


def isotonic_increasing(y, weights=None) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool-adjacent-violators).

    Parameters
    ----------
    y : array_like
        Values in the order of the sweep (1-d, finite).
    weights : array_like, optional
        Positive weights (e.g. trials per point); equal weights by default.

    Returns
    -------
    ndarray
        The fitted non-decreasing values, same length as ``y``.
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if y.ndim != 1 or w.shape != y.shape or y.size == 0:
        raise ValueError(f"y, weights: need two 1-d arrays of equal non-zero length, got {y.shape}, "
                         f"{w.shape}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(w)) and np.all(w > 0)):
        raise ValueError("y, weights: values must be finite and weights positive")
    # Blocks of pooled values: (mean, weight, length); a violator merges with its predecessor.
    means, wts, lens = [], [], []
    for v, wi in zip(y, w, strict=True):
        means.append(float(v))
        wts.append(float(wi))
        lens.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            wsum = wts[-2] + wts[-1]
            merged = (means[-2] * wts[-2] + means[-1] * wts[-1]) / wsum
            lens[-2] += lens[-1]
            means[-2], wts[-2] = merged, wsum
            del means[-1], wts[-1], lens[-1]
    return np.repeat(np.array(means), lens)


def crossing_point(x, p, level: float = 0.5, *, log: bool = True, weights=None) -> float:
    """First point where a monotone (non-decreasing) fit of ``p(x)`` reaches ``level``.

    ``p`` is first made non-decreasing by :func:`isotonic_increasing` (sampling noise can make an
    empirical success curve dip); the crossing is then the linear interpolation, in ``log x``
    (or ``x`` when ``log`` is false), between the last point below ``level`` and the first at or
    above it.

    Parameters
    ----------
    x : array_like
        Strictly increasing sweep values (``> 0`` when ``log``).
    p : array_like
        Observed proportions at ``x``.
    level : float
        The level to cross (``0.5``: the 50% point).
    log : bool
        Interpolate in ``log x``.
    weights : array_like, optional
        Weights of the isotonic fit (trials per point).

    Returns
    -------
    float
        The crossing; ``-inf`` if the fit is already above ``level`` at ``x[0]`` (the crossing
        lies below the grid), ``+inf`` if it never reaches ``level`` (above the grid). A fit that
        equals ``level`` exactly at ``x[0]`` returns ``x[0]``.
    """
    x = np.asarray(x, dtype=float)
    p = np.asarray(p, dtype=float)
    if x.shape != p.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"x, p: need two 1-d arrays of equal non-zero length, got {x.shape}, {p.shape}")
    if np.any(np.diff(x) <= 0) or (log and np.any(x <= 0)):
        raise ValueError("x: must be strictly increasing (and positive for log interpolation)")
    fit = isotonic_increasing(p, weights)
    above = np.flatnonzero(fit >= level)
    if above.size == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return float(x[0]) if fit[0] == level else -math.inf
    u = np.log(x) if log else x
    t = (level - fit[i - 1]) / (fit[i] - fit[i - 1])
    val = u[i - 1] + t * (u[i] - u[i - 1])
    return float(math.exp(val)) if log else float(val)


class BootstrapCI(NamedTuple):
    """A percentile bootstrap interval: the estimate on the data, the ends, the sorted resamples."""

    estimate: float
    low: float
    high: float
    replicates: np.ndarray


def bootstrap_ci(data, statistic, *, rng: np.random.Generator, n_resamples: int = 1000,
                 level: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap interval of ``statistic(data)``, resampling the rows of ``data``.

    The interval ends are order statistics of the resampled values (no interpolation), so
    statistics that can be infinite (a crossing outside the grid, :func:`crossing_point`) give
    meaningful ends: ``low = -inf`` means that more than ``(1 - level)/2`` of the resamples put the
    value below any finite number.

    Parameters
    ----------
    data : array_like
        Observations, one independent replicate per row (axis 0).
    statistic : callable
        ``statistic(rows) -> float`` on an array shaped like ``data``.
    rng : numpy.random.Generator
        Source of the resampling indices (pass a seeded generator: the interval is then
        reproducible).
    n_resamples : int
        Number of bootstrap resamples.
    level : float
        Two-sided confidence level.

    Returns
    -------
    BootstrapCI
        ``(estimate, low, high)`` with the estimate on the original data.
    """
    data = np.asarray(data)
    if data.ndim == 0 or data.shape[0] < 2:
        raise ValueError(f"data: need at least two replicates along axis 0, got shape {data.shape}")
    if not (isinstance(n_resamples, int) and n_resamples >= 10):
        raise ValueError(f"n_resamples: need an integer >= 10, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    n = data.shape[0]
    idx = rng.integers(0, n, size=(n_resamples, n))
    reps = np.sort(np.array([float(statistic(data[i])) for i in idx]))
    if np.any(np.isnan(reps)):
        raise ValueError("statistic: returned NaN on a resample")
    alpha = 1.0 - level
    lo = reps[max(0, math.floor(alpha / 2 * n_resamples))]
    hi = reps[min(n_resamples - 1, math.ceil((1 - alpha / 2) * n_resamples) - 1)]
    return BootstrapCI(float(statistic(data)), float(lo), float(hi), reps)
