"""Gradient-sign laws of joint optimisation against per-example optimisation (spec ``jpo.md`` §6).

Every formula of §6 in float64 and, where a high-precision reference is needed, in mpmath:

* §6.2 single-frequency arcsine law :func:`arcsine_sign_probability`;
* §6.3 exact finite-``n`` law by Gil-Pelaez inversion :func:`gil_pelaez_sign_probability_mp`
  (the spec's ``quadosc`` call, validated for ``n <= 64``; a truncated quadrature with a rigorous tail
  bound for large powers), a fast single-frequency route for many ``n`` at once that integrates the
  oscillatory tail along complex rays with Hankel asymptotics
  (:func:`single_frequency_sign_probabilities_mp`, [derived] here), and the float64 twin
  :func:`gil_pelaez_sign_probability`; the independent ``n = 2`` quadrature split at the kink
  :func:`two_example_sign_probability_mp` and an independent ``n = 3`` form through the closed-form
  density of a sum of two arcsine variables (:func:`three_example_sign_probability_mp`, [derived]
  here: ``f_2(v) = K(1 - v^2/4)/pi^2``);
* §6.4 the CLT law, the Berry-Esseen bound (moment form and the exact ``K = 1`` ratio) and the
  Edgeworth correction;
* §6.5 the SNR identity ``SNR_n = sqrt(n) SNR_1``;
* §6.6 the Irwin-Hall law for uniform noise in exact rational arithmetic and the root ``r_c`` of
  ``P_3 = P_2`` for arcsine noise;
* §6.7 the alignment law (exact ``1F1`` form, float64 via :mod:`scipy.special`, approximate law);
* §6.8 clipping: Cauchy sign law, closed forms of the clipped mean and second moment, Hoeffding bound;
* §6.9 the ripple feature SNR ``rho_1``; §7.1 the ripple global-minimum bracket; §7.4 the chaos RMS.

Conventions. The noise of one example along one direction is ``X = sum_k A_k cos(psi_k)`` with
``A_k = a_k omega_k`` (the *gradient* amplitudes); ``signal_sum`` is ``Sigma_s = sum_i s_i``; the success
event is ``sign G_n = sign Sigma_s``. mpmath runs only in private :class:`mpmath.MPContext` objects
(default 40 digits, spec §8); float inputs are lifted exactly (``ctx.mpf(0.05)`` is the binary double
nearest 0.05, which is what the spec's pilot references use), strings as decimal numbers.

Nothing here trains or imports :mod:`verification`. Pilot numbers of the spec appear only in
:data:`SPEC_PILOT_VALUES` as documentation, never as thresholds.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import mpmath
import numpy as np
from scipy import special

from dynamics._validate import positive_int, real

# --------------------------------------------------------------------------------------------
# named constants of spec §6 / §9

C_BE = 0.4748
"""[derived, literature] Shevtsova's Berry-Esseen constant for i.i.d. sums (spec §6.4)."""

THIRD_MOMENT_RATIO_K1 = 8.0 * math.sqrt(2.0) / (3.0 * math.pi)
"""``E|X|^3 / sigma^3`` for ``X = A cos(psi)``: ``E|cos|^3 = 4/(3 pi)``, ``sigma = A/sqrt(2)`` (1.20042)."""

BERRY_ESSEEN_K1 = C_BE * THIRD_MOMENT_RATIO_K1
"""The single-frequency Berry-Esseen coefficient, ``0.56996 / sqrt(n)`` (spec §6.4, §9)."""

EXCESS_KURTOSIS_K1 = -1.5
"""Excess kurtosis of ``A cos(psi)`` (spec §6.4)."""

R_C = 0.159292334
"""Root of ``P_3(r) = P_2(r)`` for single-frequency arcsine noise as printed in spec §6.6 (9 digits;
the §9 row prints ``0.1592923...``). Checked, not trusted: see :func:`arcsine_nonmonotonicity_root_mp`."""

R_C_TOLERANCE = 1e-7
"""Spec §9 ``jpo.arcsine_small_n_nonmonotone``: the computed root lies within ``1e-7`` of ``r_c``."""

P2_MINUS_P3_AT_R005 = 0.0117
"""Spec §9: ``P_2(0.05) - P_3(0.05) > 0.0117``."""

GIL_PELAEZ_MAX_N = 64
"""Spec §6.3: ``quadosc`` evaluation of the Gil-Pelaez integral is validated for powers ``n <= 64``."""

DEFAULT_DPS = 40
"""Spec §8: mpmath references at 40 digits by default."""

ALIGNMENT_APPROX_COEFFICIENT = 0.075
"""Spec §9 ``jpo.alignment_law`` (iv): ``sup_lambda |exact - approx| <= 0.075/d``."""

CLT_ORDER_ONE_OVER_N = 0.05
"""Spec §9 ``jpo.clt_error_order_one_over_n``: ``n |P_n - Phi(z)| <= 0.05``."""

EDGEWORTH_MIN_N = 8
EDGEWORTH_MIN_CLT_ERROR = 1e-8
"""Spec §9: for ``n >= 8`` the Edgeworth error is at most the CLT error whenever the latter exceeds
``1e-8``."""

CLT_MC_WINDOW = 0.02
"""Spec §9 ``jpo.clt_sign_law`` (iii) and ``jpo.clipping_restores_clt`` (ii): Monte Carlo within
``0.02`` of ``Phi`` (``n >= 4`` resp. ``n >= 16``)."""

CLIPPING_GAIN_MIN = 0.3
"""Spec §9 ``jpo.clipping_restores_clt`` (iii): ``P_256^clip - P_256 > 0.3`` at ``s = 0.2, gamma = c = 1``."""

MC_STANDARD_ERRORS = 5.0
"""Spec §5.3: Monte Carlo estimates within 5 standard errors."""

RIPPLE_N_FREQUENCIES = 8
"""Spec §7.1: ``K = 8`` ripple frequencies ``omega = linspace(20, 60, 8)``."""

SPEC_DERIVED_VALUES = {
    "P1(s=0.5, A=2)": 0.580431,
    "BE ratio K=1": 1.20042,
    "BE coefficient K=1": 0.56996,
    "rho1(amp=1)": 0.5130,
    "rho1(amp=2)": 0.2795,
    "S_a/amp": 0.226639,
    "ripple half-width(amp=1)": 0.6733,
    "ripple half-width(amp=2)": 0.9521,
    "cauchy P_n(s=0.2, gamma=1)": 0.562833,
    "mu_c(s=0.2, gamma=c=1)": 0.0995756,
    "sigma_c(s=0.2, gamma=c=1)": 0.7961705,
    "chaos log2 RMS(T=8, sigma_y=0.01)": 4.50,
    "chaos log2 RMS(T=16, sigma_y=0.01)": 11.50,
}
"""Closed-form values the spec prints (rounded to the printed digits); tests recompute them."""

SPEC_PILOT_VALUES = {
    "P_2(0.25)": "0.69168759251063583851",
    "P_3(0.05)": "0.54280624018410955644",
    "P_8(0.25)": "0.83743464074316943217",
    "P_24(0.5)": "0.99981248347719996657",
    "P_64(0.1)": "0.87064794103553667550",
    "ripple n=1 Sigma_s=1.8574": 0.819332,
    "alignment d=10 |s|=0.3 exact n=1,10,100,1000": (0.09218, 0.28214, 0.69145, 0.95279),
    "alignment sup error by d": {1: 0.0644, 2: 0.0345, 3: 0.0234, 5: 0.0141, 10: 0.0070, 20: 0.0035,
                                 50: 0.0014, 100: 0.0007},
    "clipped Phi n=16,64,256": (0.692, 0.841, 0.977),
}
"""Pilot numbers of the spec (40-digit references truncated, Monte Carlo, tables): documentation
only. They are never thresholds; the 40-digit references are reproduced by the tests."""


# --------------------------------------------------------------------------------------------
# validation and mpmath plumbing


def _context(ctx: mpmath.MPContext | None, dps: int = DEFAULT_DPS) -> mpmath.MPContext:
    if ctx is None:
        ctx = mpmath.MPContext()
        ctx.dps = dps
        return ctx
    if not isinstance(ctx, mpmath.MPContext):
        raise ValueError(f"ctx: expected a private mpmath.MPContext, got {type(ctx).__name__}")
    if ctx is mpmath.mp:
        raise ValueError("ctx: the global mpmath.mp context is not allowed; pass a private MPContext")
    if ctx.dps < 16:
        raise ValueError(f"ctx: dps={ctx.dps} is float64 precision, not a reference (need >= 16)")
    return ctx


def _lift(ctx: mpmath.MPContext, name: str, value, *, minimum=None, strict: bool = False):
    """``value`` as an ``mpf`` of ``ctx``: floats exactly, strings as decimals, Fractions exactly."""
    if isinstance(value, ctx.mpf):
        out = value
    elif isinstance(value, Fraction):
        out = ctx.mpf(value.numerator) / value.denominator
    elif isinstance(value, str):
        try:
            out = ctx.mpf(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name}: not a number: {value!r}") from exc
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        out = ctx.mpf(float(value)) if not isinstance(value, numbers.Integral) else ctx.mpf(int(value))
    else:
        raise ValueError(f"{name}: expected a real number, a decimal string or an mpf of ctx, got "
                         f"{type(value).__name__}")
    if not ctx.isfinite(out):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if minimum is not None:
        if strict and not out > minimum:
            raise ValueError(f"{name}: must be > {minimum}, got {value!r}")
        if not strict and not out >= minimum:
            raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")
    return out


def _amplitudes(amps, name: str = "amps") -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(amps, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a sequence of real numbers") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name}: entries must be finite and > 0")
    return arr


def _amplitudes_mp(ctx, amps, name: str = "amps") -> list:
    if isinstance(amps, (str, numbers.Real, ctx.mpf, Fraction)):
        amps = [amps]
    out = [_lift(ctx, f"{name}[{k}]", a, minimum=0, strict=True) for k, a in enumerate(amps)]
    if not out:
        raise ValueError(f"{name}: expected a non-empty sequence")
    return out


def _finite_output(name: str, value):
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise FloatingPointError(f"{name}: produced a non-finite value for finite inputs")
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------------------------
# §6.2 single-frequency arcsine law


def arcsine_sign_probability(s, A):
    """Single-frequency sign law ``P_1 = 1/2 + arcsin(min(1, |s|/A))/pi`` (spec §6.2).

    Parameters
    ----------
    s : float or array_like
        Signal gradient ``S_i'(x_i)`` (any sign; only ``|s|`` matters).
    A : float
        Noise gradient amplitude ``A = a omega > 0``.

    Returns
    -------
    float or ndarray
        ``Pr(sign(s + A cos psi) = sign s)`` for ``psi ~ U[0, 2 pi)``; ``1/2`` at ``s = 0``.

    Raises
    ------
    ValueError
        If ``A <= 0`` or an input is not finite.

    Notes
    -----
    Depends on ``r = |s|/A`` only, hence invariant under ``(s, A) -> (lambda s, lambda A)``; equals 1
    for ``r >= 1`` (no local minimum can flip the sign).
    """
    A = real("A", A, minimum=0.0, strict=True)
    s_arr = np.asarray(s, dtype=np.float64)
    if not np.all(np.isfinite(s_arr)):
        raise ValueError("s: must be finite")
    r = np.minimum(1.0, np.abs(s_arr) / A)
    return _finite_output("arcsine_sign_probability", 0.5 + np.arcsin(r) / np.pi)


def arcsine_sign_probability_mp(s, A, *, ctx: mpmath.MPContext | None = None):
    """:func:`arcsine_sign_probability` in a private mpmath context (returns an ``mpf`` of ``ctx``)."""
    ctx = _context(ctx)
    s = _lift(ctx, "s", s)
    A = _lift(ctx, "A", A, minimum=0, strict=True)
    r = min(ctx.mpf(1), abs(s) / A)
    return ctx.mpf(1) / 2 + ctx.asin(r) / ctx.pi


# --------------------------------------------------------------------------------------------
# §6.3 exact finite-n law (Gil-Pelaez)


def _nicholson_tail_horizon(log_prefactor: float, power: float, tol: float) -> float:
    # Nicholson's formula makes x M_0(x)^2 increase to 2/pi, so |J_0(x)| <= sqrt(2/(pi x)) for x > 0.
    # With N = n K factors, |integrand| <= C t^(-N/2 - 1), C = prod_k (2/(pi A_k))^(n/2), whose tail
    # beyond T integrates to C T^(-N/2) (2/N). Solve C (2/N) T^(-N/2) = tol for T.
    return math.exp((log_prefactor + math.log(2.0 / power) - math.log(tol)) / (power / 2.0))


def gil_pelaez_tail_bound(T: float, amps, n: int) -> float:
    """Rigorous bound on ``|int_T^inf sin(u t) prod_k J_0(A_k t)^n t^-1 dt|`` (any ``u``).

    Uses ``|J_0(x)| <= sqrt(2/(pi x))`` (Nicholson's formula: ``x (J_0^2 + Y_0^2)`` increases to
    ``2/pi``), so the integrand is at most ``prod_k (2/(pi A_k t))^(n/2) / t``.

    Parameters
    ----------
    T : float
        Truncation point, ``> 0``.
    amps : sequence of float
        Amplitudes ``A_k > 0``.
    n : int
        Number of examples (power of each Bessel factor).

    Returns
    -------
    float
    """
    T = real("T", T, minimum=0.0, strict=True)
    A = _amplitudes(amps)
    n = positive_int("n", n)
    power = n * A.size
    log_c = (n / 2.0) * float(np.sum(np.log(2.0 / (np.pi * A))))
    return math.exp(log_c - (power / 2.0) * math.log(T)) * 2.0 / power


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_F64_TAIL_TOL = 1e-17
_F64_MAX_INTERVALS = 2_000_000
"""At most ``3.2e7`` Bessel evaluations (about a second); ``n K >= 8`` needs far fewer."""


def gil_pelaez_sign_probability(signal_sum: float, amps, n: int) -> float:
    """Exact finite-``n`` sign probability in float64 (spec §6.3 boxed formula).

    ``P_n = 1/2 + (1/pi) int_0^inf sin(|Sigma_s| t) prod_k J_0(A_k t)^n t^-1 dt``, by 16-point
    Gauss-Legendre on half periods of the integrand's highest frequency ``|Sigma_s| + n sum_k A_k``
    up to the horizon where the Nicholson tail bound (:func:`gil_pelaez_tail_bound`) drops below
    ``1e-17``.

    Parameters
    ----------
    signal_sum : float
        ``Sigma_s = sum_i s_i``.
    amps : sequence of float
        Noise gradient amplitudes ``A_k > 0``.
    n : int
        Number of examples.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the inputs are invalid, or if ``n len(amps)`` is so small that the tail decays too slowly
        for a float64 truncation (more than 2e6 half periods; typically ``n K < 6``): use
        :func:`gil_pelaez_sign_probability_mp` or, for ``n = 1, K = 1``, the arcsine law.

    Notes
    -----
    Accuracy: truncation ``<= 1e-17``; the Gauss-Legendre error on a half period of a band-limited
    integrand is far below rounding; the Bessel power ``prod_k J_0^n`` carries about ``n K eps``
    relative rounding (measured ``1.3e-14`` at ``n = 64, K = 5``, ``<= 2e-15`` for ``K = 1``). Tests
    compare with the mpmath version at ``rtol = 1e-12``.
    """
    u = abs(real("signal_sum", signal_sum))
    A = _amplitudes(amps)
    n = positive_int("n", n)
    if u == 0.0:
        return 0.5
    power = n * A.size
    log_c = (n / 2.0) * float(np.sum(np.log(2.0 / (np.pi * A))))
    T = _nicholson_tail_horizon(log_c, power, _F64_TAIL_TOL * math.pi)
    omega_max = u + n * float(np.sum(A))
    m = math.ceil(T * omega_max / math.pi)
    if m > _F64_MAX_INTERVALS:
        raise ValueError(f"n: with n*len(amps) = {power} the Gil-Pelaez tail needs {m} half periods "
                         f"in float64; use gil_pelaez_sign_probability_mp")
    h = T / m
    total = 0.0
    # chunks keep the (intervals x nodes x K) temporaries small
    for start in range(0, m, 20_000):
        stop = min(m, start + 20_000)
        left = h * np.arange(start, stop, dtype=np.float64)
        t = left[:, None] + 0.5 * h * (_GL_NODES[None, :] + 1.0)
        bessel = np.ones_like(t)
        for Ak in A:
            bessel *= special.j0(Ak * t) ** n
        vals = np.sin(u * t) / t * bessel
        total += float(np.sum(vals @ _GL_WEIGHTS)) * 0.5 * h
    return _finite_output("gil_pelaez_sign_probability", 0.5 + total / math.pi)


def gil_pelaez_sign_probability_mp(signal_sum, amps, n: int, *, ctx: mpmath.MPContext | None = None,
                                   method: str = "quadosc", max_n: int = GIL_PELAEZ_MAX_N,
                                   quadosc_omega: str = "spec"):
    """Exact finite-``n`` sign probability by Gil-Pelaez inversion in mpmath (spec §6.3).

    Parameters
    ----------
    signal_sum : float, str or mpf
        ``Sigma_s``; only ``|Sigma_s|`` matters.
    amps : sequence
        Noise gradient amplitudes ``A_k > 0`` (a single number is one frequency).
    n : int
        Number of examples, the power of each Bessel factor.
    ctx : MPContext, optional
        Private context (default: a new one at 40 digits).
    method : {"quadosc", "truncated"}
        ``quadosc``: the spec's call, ``ctx.quadosc(..., omega=max(u, max(amps)))``, validated for
        ``n <= max_n``. ``truncated``: ``ctx.quad`` on half periods of the highest frequency up to the
        horizon where :func:`gil_pelaez_tail_bound` falls below ``10^-(dps+3)``; rigorous but only
        feasible for large powers ``n K`` (it refuses more than 4000 half periods).
    max_n : int
        Largest ``n`` accepted by ``quadosc`` (spec: validated up to 64).
    quadosc_omega : {"spec", "bessel"}
        ``spec``: ``omega = max(u, max(amps))`` as in spec §6.3. ``bessel``: ``omega = max(amps)``, the
        Bessel factors' own frequency. Where ``u > max(amps)`` the spec's choice can lose accuracy
        (measured: ``3.8e-24`` at ``n = 8, r = 0.2``, where the ``bessel`` choice and the
        Hankel-asymptotic route of :func:`single_frequency_sign_probabilities_mp` agree to 40 digits).

    Returns
    -------
    mpf
        ``P_n`` as an ``mpf`` of ``ctx``.

    Raises
    ------
    ValueError
        Invalid inputs, ``n > max_n`` for ``quadosc``, or an infeasible truncation.
    """
    ctx = _context(ctx)
    u = abs(_lift(ctx, "signal_sum", signal_sum))
    A = _amplitudes_mp(ctx, amps)
    n = positive_int("n", n)
    if method not in ("quadosc", "truncated"):
        raise ValueError(f"method: must be 'quadosc' or 'truncated', got {method!r}")
    if quadosc_omega not in ("spec", "bessel"):
        raise ValueError(f"quadosc_omega: must be 'spec' or 'bessel', got {quadosc_omega!r}")
    if u == 0:
        return ctx.mpf(1) / 2

    def integrand(t):
        return ctx.sin(u * t) * ctx.fprod(ctx.besselj(0, a * t) for a in A) ** n / t

    if method == "quadosc":
        if n > max_n:
            raise ValueError(f"n: quadosc evaluation is validated for n <= {max_n} (spec §6.3), got "
                             f"{n}; use method='truncated', the CLT law or Monte Carlo")
        omega = max(u, max(A)) if quadosc_omega == "spec" else max(A)
        integral = ctx.quadosc(integrand, [0, ctx.inf], omega=omega)
        return ctx.mpf(1) / 2 + integral / ctx.pi
    power = n * len(A)
    log_c = (n / 2.0) * sum(math.log(2.0 / (math.pi * float(a))) for a in A)
    T = _nicholson_tail_horizon(log_c, power, 10.0 ** (-(ctx.dps + 3)))
    omega_max = float(u) + n * float(sum(A))
    m = math.ceil(T * omega_max / math.pi)
    if m > 4000:
        raise ValueError(f"method: the truncated Gil-Pelaez integral needs {m} half periods for "
                         f"n*len(amps) = {power} at {ctx.dps} digits; use method='quadosc'")
    Tm = ctx.mpf(T)
    points = [Tm * j / m for j in range(m + 1)]
    return ctx.mpf(1) / 2 + ctx.quad(integrand, points) / ctx.pi


def single_frequency_sign_probability_mp(r, n: int, *, ctx: mpmath.MPContext | None = None,
                                         method: str = "hankel"):
    """Single-frequency ``P_n(r) = 1/2 + (1/pi) int sin(n r t) J_0(t)^n t^-1 dt`` (spec §6.3).

    ``r = |s|/A`` with a common signal ``s``; ``u = n r`` is formed in ``ctx`` from the exact lift of
    ``r`` (so ``r = 0.05`` means the binary double, as in the spec's pilot references).

    Parameters
    ----------
    r : float, str or mpf
    n : int
    ctx : MPContext, optional
    method : {"hankel", "quadosc", "quadosc-bessel", "truncated"}
        ``hankel``: :func:`single_frequency_sign_probabilities_mp` (default; seconds). ``quadosc``: the
        spec's call (``omega = max(u, 1)``, 1-70 s); ``quadosc-bessel``: ``quadosc`` with ``omega = 1``;
        ``truncated``: see :func:`gil_pelaez_sign_probability_mp`.

    Returns
    -------
    mpf
    """
    ctx = _context(ctx)
    r = _lift(ctx, "r", r, minimum=0)
    n = positive_int("n", n)
    if method == "hankel":
        return single_frequency_sign_probabilities_mp(r, [n], ctx=ctx)[n]
    if method == "quadosc-bessel":
        return gil_pelaez_sign_probability_mp(n * r, [ctx.mpf(1)], n, ctx=ctx, quadosc_omega="bessel")
    return gil_pelaez_sign_probability_mp(n * r, [ctx.mpf(1)], n, ctx=ctx, method=method)


def _hankel_coefficients(ctx, count: int) -> list:
    # a_k = prod_{j<=k} (-(2j - 1)^2) / (k! 8^k): H_0^(1,2)(t) ~ sqrt(2/(pi t)) (P +- i Q) e^(+-i(t - pi/4))
    # with P = sum_k (-1)^k a_2k t^-2k and Q = sum_k (-1)^k a_(2k+1) t^-(2k+1)
    coeffs = [ctx.mpf(1)]
    for k in range(1, count):
        coeffs.append(coeffs[-1] * (-(2 * k - 1) ** 2) / (8 * k))
    return coeffs


def _hankel_pq(ctx, t, coeffs, eps):
    inv = 1 / t
    P = Q = ctx.mpf(0)
    power = ctx.mpf(1)
    for k, a in enumerate(coeffs):
        term = a * power
        if k % 2 == 0:
            P += term if k % 4 == 0 else -term
        else:
            Q += term if k % 4 == 1 else -term
        if k > 2 and abs(term) < eps:
            return P, Q
        power *= inv
    raise ValueError("T: the Hankel asymptotic series did not converge at |t| = T; increase T")


def single_frequency_sign_probabilities_mp(r, ns, *, ctx: mpmath.MPContext | None = None,
                                           horizon=None) -> dict:
    """Single-frequency Gil-Pelaez law for several ``n`` at once, by a Hankel-asymptotic contour route.

    [derived, this module] ``P_n = 1/2 + (I_head + I_tail)/pi`` with

    * ``I_head = int_0^T sin(n r t) J_0(t)^n t^-1 dt`` by Gauss-Legendre on the half periods
      ``[k pi, (k + 1) pi]`` (enough nodes for the band limit ``n r + n``), ``T = m pi >= 1.25 dps + 12``;
    * ``I_tail = int_T^inf``: write ``J_0 = (H^(1) + H^(2))/2`` and ``sin(u t)`` by exponentials; each of
      the ``2(n + 1)`` products ``H^(1)^j H^(2)^(n - j) e^(+-iut)`` has the frequency
      ``omega = +-u + 2j - n``; those with ``omega >= 0`` are integrated along ``T + i y``, the others
      along ``T - i y`` (``y >= 0``), where they decay like ``e^(-|omega| y) |t|^(-n/2 - 1)``. The Hankel
      functions on the rays come from their asymptotic series (``|t| >= T``, terms below
      ``10^-(dps + 8)``), written as products so nothing cancels.

    Resonant cases (``omega = 0``, e.g. ``r = 1/4, n = 8``), where ``quadosc``'s extrapolation over
    half periods is least reliable, need no special treatment. The imaginary part of ``I_tail``
    (zero in exact arithmetic) is checked below ``10^-(dps - 8)``.

    Parameters
    ----------
    r : float, str or mpf
        ``|s|/A >= 0``.
    ns : sequence of int
        The ``n`` values.
    ctx : MPContext, optional
    horizon : float, optional
        Override of ``T`` (rounded up to a multiple of ``pi``).

    Returns
    -------
    dict
        ``n -> P_n`` (``mpf`` of ``ctx``).

    Raises
    ------
    ValueError
        Invalid inputs, or an imaginary residue above the check (the route failed).
    """
    ctx = _context(ctx)
    r = _lift(ctx, "r", r, minimum=0)
    ns = sorted({positive_int("ns", n) for n in ns})
    if not ns:
        raise ValueError("ns: expected at least one n")
    if r == 0:
        return dict.fromkeys(ns, ctx.mpf(1) / 2)
    if r >= 1:
        return dict.fromkeys(ns, ctx.mpf(1))
    n_max = ns[-1]
    dps = ctx.dps
    T_min = horizon if horizon is not None else 1.25 * dps + 12
    m = math.ceil(T_min / math.pi)
    T = m * ctx.pi
    eps = ctx.mpf(10) ** (-(dps + 8))
    coeffs = _hankel_coefficients(ctx, 8 * dps + 200)
    half = ctx.pi
    n_nodes = int((float(r) + 1) * n_max * math.pi / 2 + 1.5 * dps + 10)
    X, W = ctx.gauss_quadrature(n_nodes, "legendre")
    head = dict.fromkeys(ns, ctx.mpf(0))
    for k in range(m):
        for x, w in zip(X, W, strict=True):
            t = half * (k + (x + 1) / 2)
            j0 = ctx.besselj(0, t)
            wt = w * half / 2 / t
            for n in ns:
                head[n] += wt * ctx.sin(n * r * t) * j0**n
    binom = {n: [ctx.mpf(math.comb(n, j)) for j in range(n + 1)] for n in ns}
    quarter = ctx.pi / 4
    cache: dict = {}

    def ray_values(direction: int, y):
        key = (direction, y)
        if key in cache:
            return cache[key]
        t = T + direction * ctx.mpc(0, 1) * y
        P, Q = _hankel_pq(ctx, t, coeffs, eps)
        amp = ctx.sqrt(2 / (ctx.pi * t))
        iq = ctx.mpc(0, 1) * Q  # P and Q are complex off the real axis
        h1 = amp * (P + iq) * ctx.expj(t - quarter)
        h2 = amp * (P - iq) * ctx.expj(quarter - t)
        p1, p2 = [ctx.mpf(1)], [ctx.mpf(1)]
        for _ in range(n_max):
            p1.append(p1[-1] * h1)
            p2.append(p2[-1] * h2)
        out = {}
        for n in ns:
            u = n * r
            total = 0
            for sigma in (1, -1):
                e = ctx.expj(sigma * u * t)
                for j in range(n + 1):
                    if (sigma * u + 2 * j - n >= 0) == (direction > 0):
                        total += sigma * binom[n][j] * p1[j] * p2[n - j] * e
            # dt = +-i dy
            out[n] = total / t * direction * ctx.mpc(0, 1)
        cache[key] = out
        return out

    result = {}
    for n in ns:
        tail = 0
        for direction in (1, -1):
            tail += ctx.quad(lambda y, d=direction, n=n: ray_values(d, y)[n], [0, 2, 10, ctx.inf])
        tail = tail / (2**n * ctx.mpc(0, 2))
        if abs(ctx.im(tail)) > ctx.mpf(10) ** (8 - dps):
            raise ValueError(f"r: the Hankel tail has an imaginary residue {ctx.nstr(ctx.im(tail), 3)} "
                             f"at n={n}; the route failed")
        result[n] = ctx.mpf(1) / 2 + (head[n] + ctx.re(tail)) / ctx.pi
    return result


def two_example_sign_probability_mp(r, *, ctx: mpmath.MPContext | None = None):
    """Independent ``n = 2`` single-frequency law by one phase quadrature (spec §6.3).

    ``P_2 = (1/pi) int_0^pi [1/2 + arcsin(clip(2r + cos psi, -1, 1))/pi] dpsi``, split at the kink
    ``psi_c = arccos(1 - 2r)`` (for ``r < 1``): without the split ``ctx.quad`` loses accuracy at
    ``1e-5`` (spec pilot), with it the result is exact to working precision.

    Parameters
    ----------
    r : float, str or mpf
        ``|s|/A >= 0``.
    ctx : MPContext, optional

    Returns
    -------
    mpf
    """
    ctx = _context(ctx)
    r = _lift(ctx, "r", r, minimum=0)
    if r >= 1:
        return ctx.mpf(1)
    one = ctx.mpf(1)

    def conditional(psi):
        v = 2 * r + ctx.cos(psi)
        if v >= 1:
            return one
        if v <= -1:
            return ctx.mpf(0)
        return one / 2 + ctx.asin(v) / ctx.pi

    psi_c = ctx.acos(1 - 2 * r)
    points = [ctx.mpf(0), psi_c, ctx.pi] if psi_c > 0 else [ctx.mpf(0), ctx.pi]
    return ctx.quad(conditional, points) / ctx.pi


def two_example_sign_probability(r: float) -> float:
    """float64 twin of :func:`two_example_sign_probability_mp` (``scipy.integrate.quad``, same split)."""
    from scipy.integrate import quad

    r = real("r", r, minimum=0.0)
    if r >= 1.0:
        return 1.0
    psi_c = math.acos(1.0 - 2.0 * r)

    # On [0, psi_c] the clipped argument is >= 1, so the conditional probability is exactly 1. Past
    # the kink arcsin(1 - delta) ~ pi/2 - sqrt(2 delta): psi = psi_c + w^2 makes the integrand smooth.
    def smooth(w):
        v = min(1.0, 2.0 * r + math.cos(psi_c + w * w))
        return (0.5 + math.asin(v) / math.pi) * 2.0 * w

    tail, _ = quad(smooth, 0.0, math.sqrt(math.pi - psi_c), epsabs=1e-14, epsrel=1e-13, limit=200)
    return _finite_output("two_example_sign_probability", (psi_c + tail) / math.pi)


def arcsine_pair_density_mp(v, *, ctx: mpmath.MPContext | None = None):
    """Density of ``cos(psi_1) + cos(psi_2)`` for independent uniform phases, ``|v| < 2``.

    [derived] ``f_2(v) = (1/pi^2) int dx/sqrt((1 - x^2)(1 - (v - x)^2)) = K(1 - v^2/4)/pi^2``, written
    as ``1/(2 pi agm(1, |v|/2))`` so that the logarithmic peak at ``v = 0`` loses no digits
    (``K(m) = pi/(2 agm(1, sqrt(1 - m)))``). Zero for ``|v| >= 2``.
    """
    ctx = _context(ctx)
    v = _lift(ctx, "v", v)
    if abs(v) >= 2:
        return ctx.mpf(0)
    if v == 0:
        return ctx.inf
    return 1 / (2 * ctx.pi * ctx.agm(1, abs(v) / 2))


def three_example_sign_probability_mp(r, *, ctx: mpmath.MPContext | None = None):
    """Independent ``n = 3`` single-frequency law through the pair density (this module, [derived]).

    ``P_3 = int_{-2}^{2} f_2(v) [1/2 + arcsin(clip(3r + v, -1, 1))/pi] dv`` with ``f_2`` of
    :func:`arcsine_pair_density_mp`, split at the logarithmic peak ``v = 0`` and the clip kinks
    ``v = +-1 - 3r``. A second route to ``P_3`` besides Gil-Pelaez, fast enough for root finding.

    Parameters
    ----------
    r : float, str or mpf
        ``|s|/A >= 0``.
    ctx : MPContext, optional

    Returns
    -------
    mpf
    """
    ctx = _context(ctx)
    r = _lift(ctx, "r", r, minimum=0)
    if r >= 1:
        return ctx.mpf(1)
    one = ctx.mpf(1)

    def integrand(v):
        w = 3 * r + v
        if w <= -1:
            return ctx.mpf(0)
        density = 1 / (2 * ctx.pi * ctx.agm(1, abs(v) / 2))
        return density if w >= 1 else density * (one / 2 + ctx.asin(w) / ctx.pi)

    cuts = {ctx.mpf(-2), ctx.mpf(0), ctx.mpf(2)}
    cuts |= {c for c in (1 - 3 * r, -1 - 3 * r) if -2 < c < 2}
    return ctx.quad(integrand, sorted(cuts))


# --------------------------------------------------------------------------------------------
# §6.4 multi-frequency CLT law, Berry-Esseen, Edgeworth


def phase_noise_sigma(a, omega) -> float:
    """``sigma = sqrt(sum_k a_k^2 omega_k^2 / 2)`` of ``eta' = sum_k a_k omega_k cos(psi_k)`` (§6.4).

    Parameters
    ----------
    a, omega : sequence of float
        Loss amplitudes and frequencies (same length); ``A_k = a_k omega_k`` must be non-zero.
    """
    a_arr = np.atleast_1d(np.asarray(a, dtype=np.float64))
    w_arr = np.atleast_1d(np.asarray(omega, dtype=np.float64))
    if a_arr.shape != w_arr.shape or a_arr.ndim != 1:
        raise ValueError(f"a, omega: need two 1-d sequences of equal length, got {a_arr.shape}, "
                         f"{w_arr.shape}")
    A = _amplitudes(np.abs(a_arr * w_arr))
    return math.sqrt(0.5 * float(np.sum(A**2)))


def phase_noise_moments(amps) -> tuple[float, float, float]:
    """``(sigma, E X^4, kappa)`` of ``X = sum_k A_k cos(psi_k)`` (spec §6.4).

    ``sigma^2 = sum A_k^2 / 2``, ``E X^4 = 3 sigma^4 - (3/8) sum A_k^4`` and the excess kurtosis
    ``kappa = -(3/8) sum A_k^4 / sigma^4``.
    """
    A = _amplitudes(amps)
    var = 0.5 * float(np.sum(A**2))
    a4 = float(np.sum(A**4))
    return math.sqrt(var), 3.0 * var**2 - 0.375 * a4, -0.375 * a4 / var**2


def phase_noise_moments_mp(amps, *, ctx: mpmath.MPContext | None = None):
    """:func:`phase_noise_moments` in mpmath: ``(sigma, E X^4, kappa)`` as ``mpf`` of ``ctx``."""
    ctx = _context(ctx)
    A = _amplitudes_mp(ctx, amps)
    var = ctx.fsum(a**2 for a in A) / 2
    a4 = ctx.fsum(a**4 for a in A)
    return ctx.sqrt(var), 3 * var**2 - ctx.mpf(3) / 8 * a4, -ctx.mpf(3) / 8 * a4 / var**2


def clt_sign_probability(mean_signal, sigma: float, n: int):
    """CLT sign law ``Phi(sqrt(n) |s_bar| / sigma)`` (spec §6.4; also §6.8 with ``(mu_c, sigma_c)``).

    Parameters
    ----------
    mean_signal : float or array_like
        ``s_bar = Sigma_s / n`` (or the clipped mean ``mu_c``).
    sigma : float
        Per-example noise standard deviation, ``> 0``.
    n : int
        Number of examples.

    Returns
    -------
    float or ndarray
    """
    sigma = real("sigma", sigma, minimum=0.0, strict=True)
    n = positive_int("n", n)
    s = np.asarray(mean_signal, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("mean_signal: must be finite")
    return _finite_output("clt_sign_probability", special.ndtr(math.sqrt(n) * np.abs(s) / sigma))


def clt_sign_probability_mp(mean_signal, sigma, n: int, *, ctx: mpmath.MPContext | None = None):
    """:func:`clt_sign_probability` in mpmath (``ctx.ncdf``)."""
    ctx = _context(ctx)
    s = _lift(ctx, "mean_signal", mean_signal)
    sigma = _lift(ctx, "sigma", sigma, minimum=0, strict=True)
    n = positive_int("n", n)
    return ctx.ncdf(ctx.sqrt(n) * abs(s) / sigma)


def third_moment_ratio_bound(amps) -> float:
    """Lyapunov bound ``E|X|^3/sigma^3 <= (E X^4/sigma^4)^(3/4) = (3 - (3/8) sum A^4/sigma^4)^(3/4)``.

    The spec's "moment bound" (§6.4), at most ``3^(3/4)``.
    """
    sigma, m4, _ = phase_noise_moments(amps)
    return (m4 / sigma**4) ** 0.75


def berry_esseen_bound(amps, n: int) -> float:
    """Berry-Esseen bound ``C_BE (3 - (3/8) sum A_k^4/sigma^4)^(3/4) / sqrt(n)`` (spec §6.4, §9).

    Bounds ``sup_z |P_n - Phi(z)|`` for i.i.d. examples, with the third absolute moment replaced by
    the Lyapunov moment bound (:func:`third_moment_ratio_bound`).
    """
    n = positive_int("n", n)
    return C_BE * third_moment_ratio_bound(amps) / math.sqrt(n)


def berry_esseen_bound_single_frequency(n: int) -> float:
    """Exact-ratio single-frequency bound ``C_BE 8 sqrt(2)/(3 pi) / sqrt(n) = 0.56996/sqrt(n)`` (§6.4)."""
    n = positive_int("n", n)
    return BERRY_ESSEEN_K1 / math.sqrt(n)


def edgeworth_sign_probability(mean_signal: float, amps, n: int) -> float:
    """Edgeworth-corrected law ``Phi(z) - phi(z) kappa (z^3 - 3z)/(24 n)`` (spec §6.4).

    ``z = sqrt(n) |s_bar| / sigma`` and ``kappa = -(3/8) sum A^4 / sigma^4``; symmetric noise has no
    ``n^(-1/2)`` term. For ``K = 1`` this is ``Phi(z) + phi(z)(z^3 - 3z)/(16 n)``.

    Parameters
    ----------
    mean_signal : float
        ``s_bar``.
    amps : sequence of float
        ``A_k > 0``.
    n : int
    """
    s = abs(real("mean_signal", mean_signal))
    sigma, _, kappa = phase_noise_moments(amps)
    n = positive_int("n", n)
    z = math.sqrt(n) * s / sigma
    phi = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return _finite_output("edgeworth_sign_probability",
                          float(special.ndtr(z)) - phi * kappa * (z**3 - 3.0 * z) / (24.0 * n))


def edgeworth_sign_probability_mp(mean_signal, amps, n: int, *, ctx: mpmath.MPContext | None = None):
    """:func:`edgeworth_sign_probability` in mpmath."""
    ctx = _context(ctx)
    s = abs(_lift(ctx, "mean_signal", mean_signal))
    sigma, _, kappa = phase_noise_moments_mp(amps, ctx=ctx)
    n = positive_int("n", n)
    z = ctx.sqrt(n) * s / sigma
    phi = ctx.npdf(z)
    return ctx.ncdf(z) - phi * kappa * (z**3 - 3 * z) / (24 * n)


# --------------------------------------------------------------------------------------------
# §6.5 SNR identity


def joint_gradient_snr(signal_sum: float, sigma: float, n: int) -> float:
    """``SNR_n = |Sigma_s| / (sqrt(n) sigma)`` of the joint gradient (spec §6.5).

    With a common signal ``s`` this is ``sqrt(n) |s|/sigma = sqrt(n) SNR_1``: ``E G_n = Sigma_s`` and
    ``Var G_n = n sigma^2`` exactly for i.i.d. noise of finite variance.
    """
    u = abs(real("signal_sum", signal_sum))
    sigma = real("sigma", sigma, minimum=0.0, strict=True)
    n = positive_int("n", n)
    return u / (math.sqrt(n) * sigma)


def joint_gradient_mean_variance(signals, sigma: float) -> tuple[float, float]:
    """``(E G_n, Var G_n) = (sum_i s_i, n sigma^2)`` for ``G_n = sum_i (s_i + X_i)`` (spec §6.5)."""
    s = np.atleast_1d(np.asarray(signals, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("signals: expected a non-empty finite 1-d array")
    sigma = real("sigma", sigma, minimum=0.0)
    return float(math.fsum(s)), s.size * sigma**2


# --------------------------------------------------------------------------------------------
# §6.6 monotonicity: Gaussian, Irwin-Hall, arcsine counterexample


def gaussian_noise_sign_probability(s: float, sigma: float, n: int) -> float:
    """Exact law for Gaussian noise, ``P_n = Phi(sqrt(n)|s|/sigma)`` (spec §6.6)."""
    return clt_sign_probability(s, sigma, n)


def _fraction(name: str, value) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (numbers.Rational, str, float)):
        raise ValueError(f"{name}: expected a rational number (int, Fraction, str or float), got "
                         f"{type(value).__name__}")
    try:
        out = Fraction(value)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{name}: not a rational number: {value!r}") from exc
    return out


def irwin_hall_cdf(x, n: int) -> Fraction:
    """Irwin-Hall CDF ``F(x; n) = (1/n!) sum_{k=0}^{floor x} (-1)^k C(n, k) (x - k)^n``, exactly.

    Parameters
    ----------
    x : Fraction, int, str or float
        Argument (floats are taken as their exact binary value).
    n : int
        Number of uniform summands.

    Returns
    -------
    Fraction
        ``Pr(U_1 + ... + U_n <= x)`` for ``U_i ~ U(0, 1)``.
    """
    x = _fraction("x", x)
    n = positive_int("n", n)
    if x <= 0:
        return Fraction(0)
    if x >= n:
        return Fraction(1)
    total = sum((-1) ** k * math.comb(n, k) * (x - k) ** n for k in range(math.floor(x) + 1))
    return Fraction(total) / math.factorial(n)


def uniform_noise_sign_probability(r, n: int) -> Fraction:
    """Exact law for uniform noise ``U(-A, A)``: ``P_n = 1 - F_IH(n (1 - r)/2; n)`` (spec §6.6).

    Parameters
    ----------
    r : Fraction, int or str
        ``|s|/A``, rational (``"1/20"``); floats are accepted as their exact binary value.
    n : int

    Returns
    -------
    Fraction
        ``P_1 = (1 + r)/2`` for ``r <= 1``; 1 for ``r >= 1``.
    """
    r = _fraction("r", r)
    if r < 0:
        raise ValueError(f"r: must be >= 0, got {r}")
    n = positive_int("n", n)
    return 1 - irwin_hall_cdf(n * (1 - r) / 2, n)


def arcsine_nonmonotonicity_root_mp(*, ctx: mpmath.MPContext | None = None, bracket=(0.1, 0.2)):
    """Root ``r_c`` of ``P_3(r) = P_2(r)`` for single-frequency arcsine noise (spec §6.6).

    ``P_2`` by :func:`two_example_sign_probability_mp`, ``P_3`` by
    :func:`three_example_sign_probability_mp` (both fast one-dimensional quadratures; the Gil-Pelaez
    route costs seconds per evaluation), with the bracketing Anderson-Bjorck solver so that the root
    stays inside ``bracket``.

    Returns
    -------
    mpf
        The root (compare with :data:`R_C`).
    """
    ctx = _context(ctx)
    lo, hi = (_lift(ctx, "bracket", b, minimum=0, strict=True) for b in bracket)
    if not lo < hi:
        raise ValueError(f"bracket: need lo < hi, got {bracket}")

    def gap(r):
        return three_example_sign_probability_mp(r, ctx=ctx) - two_example_sign_probability_mp(r, ctx=ctx)

    if gap(lo) * gap(hi) > 0:
        raise ValueError(f"bracket: P_3 - P_2 has the same sign at both ends of {bracket}")
    return ctx.findroot(gap, (lo, hi), solver="anderson", tol=ctx.mpf(10) ** (-2 * ctx.dps // 3))


# --------------------------------------------------------------------------------------------
# §6.7 alignment law


def alignment_lambda(n: int, s_norm: float, sigma: float) -> float:
    """``lambda = sqrt(n) ||s|| / sigma`` (spec §6.7)."""
    n = positive_int("n", n)
    s_norm = real("s_norm", s_norm, minimum=0.0)
    sigma = real("sigma", sigma, minimum=0.0, strict=True)
    return math.sqrt(n) * s_norm / sigma


def _gamma_ratio(d: int) -> float:
    # Gamma((d+1)/2)/Gamma(d/2 + 1); direct gammas are exact to a few ulps and finite up to d ~ 340.
    if d <= 300:
        return float(special.gamma((d + 1) / 2.0) / special.gamma(d / 2.0 + 1.0))
    return math.exp(special.gammaln((d + 1) / 2.0) - special.gammaln(d / 2.0 + 1.0))


def alignment_expected_cosine(lam, d: int):
    """Exact ``E cos angle(G, s) = lambda/sqrt(2) Gamma((d+1)/2)/Gamma(d/2+1) 1F1(1/2; d/2+1; -lambda^2/2)``.

    Spec §6.7 (isotropic Gaussian per-example noise), float64 through ``scipy.special.hyp1f1``
    (measured against mpmath to ``3e-14`` relative on ``lambda in sqrt(d) [1e-3, 1e3]``, ``d <= 100``).

    Parameters
    ----------
    lam : float or array_like
        ``lambda = sqrt(n) ||s|| / sigma >= 0``.
    d : int
        Dimension.

    Returns
    -------
    float or ndarray
    """
    d = positive_int("d", d)
    lam_arr = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam_arr)) or np.any(lam_arr < 0):
        raise ValueError("lam: must be finite and >= 0")
    val = lam_arr / math.sqrt(2.0) * _gamma_ratio(d) * special.hyp1f1(0.5, d / 2.0 + 1.0, -lam_arr**2 / 2)
    return _finite_output("alignment_expected_cosine", val)


def alignment_expected_cosine_mp(lam, d: int, *, ctx: mpmath.MPContext | None = None):
    """:func:`alignment_expected_cosine` in mpmath, literally the spec's expression (§6.7)."""
    ctx = _context(ctx)
    lam = _lift(ctx, "lam", lam, minimum=0)
    d = positive_int("d", d)
    return (lam / ctx.sqrt(2) * ctx.gamma(ctx.mpf(d + 1) / 2) / ctx.gamma(ctx.mpf(d) / 2 + 1)
            * ctx.hyp1f1(ctx.mpf(1) / 2, ctx.mpf(d) / 2 + 1, -lam**2 / 2))


def alignment_approximate(lam, d: int):
    """Approximate alignment law ``(1 + d/lambda^2)^(-1/2)`` (spec §6.7); 0 at ``lambda = 0``."""
    d = positive_int("d", d)
    lam_arr = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam_arr)) or np.any(lam_arr < 0):
        raise ValueError("lam: must be finite and >= 0")
    # lam / sqrt(lam^2 + d) equals (1 + d/lam^2)^(-1/2) and is defined at lam = 0
    return _finite_output("alignment_approximate", lam_arr / np.sqrt(lam_arr**2 + d))


def alignment_approximate_mp(lam, d: int, *, ctx: mpmath.MPContext | None = None):
    """:func:`alignment_approximate` in mpmath."""
    ctx = _context(ctx)
    lam = _lift(ctx, "lam", lam, minimum=0)
    d = positive_int("d", d)
    return lam / ctx.sqrt(lam**2 + d)


# --------------------------------------------------------------------------------------------
# §6.8 clipping


def clip_elementwise(g, c: float):
    """Per-example elementwise clip ``C_c(g) = max(-c, min(c, g))`` (spec §4.3 ``elem(c)``, §6.8).

    Sign-preserving: ``sign C_c(g) = sign g`` for every ``c > 0`` (so ``P_1^clip = P_1``).
    """
    c = real("c", c, minimum=0.0, strict=True)
    g_arr = np.asarray(g, dtype=np.float64)
    if not np.all(np.isfinite(g_arr)):
        raise ValueError("g: must be finite")
    out = np.clip(g_arr, -c, c)
    return float(out) if out.ndim == 0 else out


def cauchy_sign_probability(s, gamma: float):
    """Unclipped Cauchy law ``P_n = 1/2 + arctan(|s|/gamma)/pi`` for every ``n`` (spec §6.8).

    By stability the mean of ``n`` i.i.d. ``Cauchy(0, gamma)`` variables is ``Cauchy(0, gamma)``: no
    ``sqrt(n)`` gain.
    """
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    s_arr = np.asarray(s, dtype=np.float64)
    if not np.all(np.isfinite(s_arr)):
        raise ValueError("s: must be finite")
    return _finite_output("cauchy_sign_probability", 0.5 + np.arctan(np.abs(s_arr) / gamma) / np.pi)


def cauchy_sign_probability_mp(s, gamma, *, ctx: mpmath.MPContext | None = None):
    """:func:`cauchy_sign_probability` in mpmath."""
    ctx = _context(ctx)
    s = _lift(ctx, "s", s)
    gamma = _lift(ctx, "gamma", gamma, minimum=0, strict=True)
    return ctx.mpf(1) / 2 + ctx.atan(abs(s) / gamma) / ctx.pi


def _cauchy_clip_terms(ops, s, gamma, c):
    t_plus, t_minus = (c - s) / gamma, (-c - s) / gamma
    A = ops.atan(t_plus) - ops.atan(t_minus)
    B = ops.log((1 + t_plus**2) / (1 + t_minus**2))
    p_plus = 0.5 - ops.atan(t_plus) / ops.pi
    p_minus = 0.5 + ops.atan(t_minus) / ops.pi
    mu = c * (p_plus - p_minus) + (s * A + gamma / 2 * B) / ops.pi
    second = c**2 * (p_plus + p_minus) + (s**2 * A + s * gamma * B
                                          + gamma**2 * ((t_plus - t_minus) - A)) / ops.pi
    return mu, second


class _Float64Ops:
    atan = staticmethod(math.atan)
    log = staticmethod(math.log)
    pi = math.pi


def cauchy_clipped_moments(s: float, gamma: float, c: float) -> tuple[float, float, float]:
    """``(mu_c, E C_c^2, sigma_c)`` of ``C_c(s + eps)``, ``eps ~ Cauchy(0, gamma)`` (spec §6.8 item 6).

    With ``t_+- = (+-c - s)/gamma``, ``A = arctan t_+ - arctan t_-``,
    ``B = ln((1 + t_+^2)/(1 + t_-^2))``, ``p_+ = 1/2 - arctan(t_+)/pi``, ``p_- = 1/2 + arctan(t_-)/pi``:
    ``mu_c = c (p_+ - p_-) + (s A + gamma B/2)/pi`` and
    ``E C_c^2 = c^2 (p_+ + p_-) + (s^2 A + s gamma B + gamma^2 ((t_+ - t_-) - A))/pi``.

    Parameters
    ----------
    s : float
        Signal (any sign).
    gamma, c : float
        Cauchy scale and clip level, ``> 0``.
    """
    s = real("s", s)
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    mu, second = _cauchy_clip_terms(_Float64Ops, s, gamma, c)
    var = second - mu * mu
    if var < 0:  # rounding only: the variance of a non-degenerate clipped law is positive
        var = 0.0
    return _finite_output("mu_c", mu), _finite_output("E C_c^2", second), math.sqrt(var)


def cauchy_clipped_moments_mp(s, gamma, c, *, ctx: mpmath.MPContext | None = None):
    """:func:`cauchy_clipped_moments` in mpmath: ``(mu_c, E C_c^2, sigma_c)`` as ``mpf`` of ``ctx``."""
    ctx = _context(ctx)
    s = _lift(ctx, "s", s)
    gamma = _lift(ctx, "gamma", gamma, minimum=0, strict=True)
    c = _lift(ctx, "c", c, minimum=0, strict=True)

    ops = type("_MPOps", (), {"atan": staticmethod(ctx.atan), "log": staticmethod(ctx.log), "pi": ctx.pi})
    mu, second = _cauchy_clip_terms(ops, s, gamma, c)
    return mu, second, ctx.sqrt(second - mu**2)


def hoeffding_sign_lower_bound(mu_c: float, c: float, n: int) -> float:
    """Hoeffding bound ``P_n^clip >= 1 - exp(-n mu_c^2 / (2 c^2))`` (spec §6.8 item 4).

    Clipped gradients lie in ``[-c, c]`` (range ``2c``), and failure needs the sum to fall ``n mu_c``
    below its mean. ``mu_c <= 0`` gives the trivial bound 0.
    """
    mu_c = real("mu_c", mu_c)
    c = real("c", c, minimum=0.0, strict=True)
    n = positive_int("n", n)
    if mu_c <= 0:
        return 0.0
    return -math.expm1(-n * mu_c * mu_c / (2.0 * c * c))


# --------------------------------------------------------------------------------------------
# §6.9 feature SNR, §7.1 ripple bracket, §7.4 chaos RMS


def ripple_feature_snr(amp: float) -> float:
    """``rho_1 = (2/3) / sqrt(16/45 + 4 amp^2 / 3)`` for the ripple toy at ``x^(0) = 0`` (spec §6.9).

    ``h = y (-2y + amp sum_{k=1}^8 cos psi_k)``, ``y ~ U(-1, 1)``: ``E h = -2/3`` and
    ``Var h = 4/5 + 4 amp^2/3 - 4/9``.
    """
    amp = real("amp", amp, minimum=0.0)
    return (2.0 / 3.0) / math.sqrt(16.0 / 45.0 + 4.0 * amp * amp / 3.0)


def ripple_feature_snr_mp(amp, *, ctx: mpmath.MPContext | None = None):
    """:func:`ripple_feature_snr` in mpmath."""
    ctx = _context(ctx)
    amp = _lift(ctx, "amp", amp, minimum=0)
    return (ctx.mpf(2) / 3) / ctx.sqrt(ctx.mpf(16) / 45 + 4 * amp**2 / 3)


def ripple_feature_snr_moments(amp: float, n_frequencies: int = RIPPLE_N_FREQUENCIES) -> tuple[float, float]:
    """``(E h, Var h)`` of the ripple feature gradient ``h = y L'(0)`` (spec §6.9).

    ``E h = -2 E y^2 = -2/3``; ``E h^2 = 4 E y^4 + amp^2 E y^2 K/2 = 4/5 + amp^2 K/6``.
    """
    amp = real("amp", amp, minimum=0.0)
    K = positive_int("n_frequencies", n_frequencies)
    mean = -2.0 / 3.0
    return mean, 0.8 + amp * amp * K / 6.0 - mean * mean


def ripple_bracket_half_width(amp: float, omegas) -> float:
    """Global-minimum bracket half-width ``sqrt(2 S_a)``, ``S_a = sum_k amp/omega_k`` (spec §7.1).

    ``L_i(x) >= (x - y_i)^2 - S_a`` and ``L_i(y_i) <= S_a``, so every global minimizer satisfies
    ``|x* - y_i| <= sqrt(2 S_a)``.

    Parameters
    ----------
    amp : float
        Ripple amplitude parameter ``>= 0``.
    omegas : sequence of float
        Frequencies ``omega_k > 0`` (spec: ``linspace(20, 60, 8)``).
    """
    amp = real("amp", amp, minimum=0.0)
    w = _amplitudes(omegas, "omegas")
    return math.sqrt(2.0 * amp * math.fsum(1.0 / w))


def ripple_bracket_half_width_mp(amp, omegas, *, ctx: mpmath.MPContext | None = None):
    """:func:`ripple_bracket_half_width` in mpmath."""
    ctx = _context(ctx)
    amp = _lift(ctx, "amp", amp, minimum=0)
    w = _amplitudes_mp(ctx, list(omegas), "omegas")
    return ctx.sqrt(2 * amp * ctx.fsum(1 / wk for wk in w))


def chaos_gradient_mean_square(T: int, sigma_y: float) -> float:
    """``E[L'(theta)^2] ~ (4/T^2) (3/32 + sigma_y^2/2) (4^(T+1) - 4)/3`` (spec §7.4).

    For ``theta`` uniform, arcsine-distributed states and independent targets, cross terms neglected;
    uses ``E[(x - y)^2 4 x (1 - x)] = 3/32 + sigma_y^2/2``.
    """
    T = positive_int("T", T)
    sigma_y = real("sigma_y", sigma_y, minimum=0.0)
    return 4.0 / T**2 * (3.0 / 32.0 + sigma_y**2 / 2.0) * (4.0 ** (T + 1) - 4.0) / 3.0


def chaos_gradient_log2_rms(T: int, sigma_y: float) -> float:
    """``log2 sqrt(E[L'^2])`` of :func:`chaos_gradient_mean_square` (spec §7.4, §9)."""
    return 0.5 * math.log2(chaos_gradient_mean_square(T, sigma_y))


def chaos_gradient_mean_square_mp(T: int, sigma_y, *, ctx: mpmath.MPContext | None = None):
    """:func:`chaos_gradient_mean_square` in mpmath."""
    ctx = _context(ctx)
    T = positive_int("T", T)
    sigma_y = _lift(ctx, "sigma_y", sigma_y, minimum=0)
    return ctx.mpf(4) / T**2 * (ctx.mpf(3) / 32 + sigma_y**2 / 2) * (ctx.mpf(4) ** (T + 1) - 4) / 3
