"""Statistics for scaling-law and statistical claims: log-log fits and exact binomial intervals."""

from __future__ import annotations

import math

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
