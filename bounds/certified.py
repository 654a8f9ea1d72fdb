"""Integer constants certified by interval arithmetic from the exact float64 inputs.

Iteration counts, early-stopping steps, width thresholds and sample sizes are ceilings (or floors) of
real expressions. Evaluated in float64, such an expression can land on the wrong side of an integer;
here it is evaluated in ``mpmath`` interval arithmetic, in a private
:class:`mpmath.ctx_iv.MPIntervalContext` (the module-level ``mpmath.iv`` is process-global), from the
exact binary values of the float64 inputs (``ctx.mpf(x)`` of a double is a zero-width interval), and
an integer is accepted only if every point of the enclosure has the same ceiling (floor). When the
enclosure straddles an integer at every precision tried, the result is reported as ambiguous
(``value=None``), never rounded (engineering guide section 1.4).

Many of the constants are "least ``n`` with ``a^n <= b``" for rational ``a, b`` (every double is a
dyadic rational); their ambiguous cases are decided exactly by integer arithmetic (a *decision*),
which settles even an exact-integer quotient such as ``log(1/8)/log(1/2) = 3``. The real expression
and its defining inequality are written once each; :func:`certify` (or the shorthands
:func:`certify_ceil`, :func:`certify_floor`, :func:`certify_above`) does the rest, so a new constant
is one call.

Which inputs are "exact": the float64 numbers the code holds (a step ``rho``, a target ``1e-6``, an
activation constant computed by quadrature). Formula constants that are real numbers (the Chernoff
exponent ``3/4 + ln(1/4)/4``, the lazy-training factor 256) are evaluated as reals, not as their
float64 roundings. The certified integer is therefore the exact value of the formula at the inputs
the float64 code uses; it says nothing about how accurately those inputs approximate the paper's
quantities (e.g. ``C_phi'`` by quadrature, accurate to ~1e-13).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from fractions import Fraction

from mpmath import libmp
from mpmath.ctx_iv import MPIntervalContext

from bounds import dip_two_layer as dipb
from dynamics._validate import choice, positive_int, real

DEFAULT_PREC = 113
"""Starting precision in bits (quad precision: ~2e-34 relative, 1e18 times finer than float64)."""

MAX_PREC = 113 * 16
"""Largest precision tried before an enclosure that still straddles an integer is called ambiguous."""

EXACT_BIT_BUDGET = 4_000_000
"""Largest integer (in bits) an exact decision ``a^n <= b`` may build; beyond it the result stays
ambiguous rather than spending seconds (a power ``a^n`` of a double costs ~53 n bits)."""

ROUNDINGS = ("ceil", "floor", "above")
"""``ceil``: least integer ``>= x``; ``floor``: greatest integer ``<= x``; ``above``: least integer
``> x`` (``floor(x) + 1``, a strict threshold such as ``k > k_lazy``)."""

_DISPLAY_DIGITS = 36


class AmbiguousInteger(ArithmeticError):
    """A certified integer was required but its enclosure straddles an integer (see ``.result``)."""

    def __init__(self, name: str, result: CertifiedInt):
        self.name = name
        self.result = result
        super().__init__(f"{name}: not certified ({result.reason}); candidates {result.candidates}, "
                         f"enclosure [{result.interval[0]}, {result.interval[1]}]")


@dataclasses.dataclass(frozen=True)
class CertifiedInt:
    """An integer constant with the interval certificate behind it.

    Attributes
    ----------
    value : int or None
        The certified integer; ``None`` when ambiguous.
    lo, hi : fractions.Fraction
        Exact endpoints of the enclosure of the real quantity (before rounding and ``minimum``).
    candidates : tuple of int
        ``(smallest, largest)`` integer the rounding can give on the enclosure (equal when
        certified; a decision replaces them by the decided value).
    ambiguous : bool
        True when the enclosure straddles an integer and no exact decision settled it.
    reason : str
        How the value was certified, or why it is ambiguous.
    prec : int
        Precision (bits) of the last enclosure computed.
    rounding : str
        One of :data:`ROUNDINGS`.
    """

    value: int | None
    lo: Fraction
    hi: Fraction
    candidates: tuple[int, int]
    ambiguous: bool
    reason: str
    prec: int
    rounding: str

    def __repr__(self) -> str:
        return (f"CertifiedInt(value={self.value!r}, interval=({self.interval[0]}, {self.interval[1]}), "
                f"candidates={self.candidates}, ambiguous={self.ambiguous}, reason={self.reason!r})")

    @property
    def interval(self) -> tuple[str, str]:
        """The enclosure as decimal strings, rounded outwards (36 significant digits)."""
        return (_decimal(self.lo, ROUND_FLOOR), _decimal(self.hi, ROUND_CEILING))

    def require(self, name: str = "value") -> int:
        """The certified value, or :class:`AmbiguousInteger` naming ``name``."""
        if self.value is None:
            raise AmbiguousInteger(name, self)
        return self.value

    def conservative(self, larger: bool = True) -> int:
        """The value if certified, else the larger (or smaller) candidate.

        A claim that only needs "at least the constant" (a horizon, a width, a sample size) can
        run with the larger candidate whatever the exact value is, and report the ambiguity.
        """
        return self.value if self.value is not None else self.candidates[1 if larger else 0]

    def as_metrics(self) -> dict:
        """JSON-ready summary for a claim's metrics."""
        return {"value": self.value, "ambiguous": self.ambiguous, "candidates": list(self.candidates),
                "interval": list(self.interval), "prec": self.prec, "reason": self.reason}


def _decimal(x: Fraction, rounding: str) -> str:
    ctx = Context(prec=_DISPLAY_DIGITS, rounding=rounding)
    return str(ctx.divide(Decimal(x.numerator), Decimal(x.denominator)))


# --------------------------------------------------------------------------------------------
# the mechanism


def _lift(ctx: MPIntervalContext, name: str, value):
    """Interval of an argument: a double or an int exactly, a Fraction as a tight enclosure.

    Anything else (a loss name, a callable) passes through unchanged.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return ctx.mpf(int(value))
    if isinstance(value, Fraction):
        return ctx.mpf(value.numerator) / ctx.mpf(value.denominator)
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"{name}: must be finite, got {x!r}")
        return ctx.mpf(x)
    return value


_SPECIAL = (libmp.fnan, libmp.finf, libmp.fninf)


def _endpoints(x) -> tuple[Fraction, Fraction] | None:
    """Exact endpoints of an interval; ``None`` if one is infinite or NaN."""
    raw = getattr(x, "_mpi_", None)
    if raw is None:
        raise TypeError(f"fn: must return an mpmath interval, got {type(x).__name__}")
    if any(e in _SPECIAL for e in raw):
        return None
    a, b = (Fraction(*libmp.to_rational(e)) for e in raw)
    return a, b


def _round(x: Fraction, rounding: str) -> int:
    if rounding == "ceil":
        return math.ceil(x)
    if rounding == "floor":
        return math.floor(x)
    return math.floor(x) + 1


def certify(fn: Callable, *args, rounding: str = "ceil", minimum: int | None = None,
            decide: Callable[[int], bool] | None = None, prec: int = DEFAULT_PREC,
            max_prec: int = MAX_PREC, names: tuple[str, ...] = ()) -> CertifiedInt:
    """Certify ``rounding(fn(x))`` over interval arithmetic, doubling the precision as needed.

    Parameters
    ----------
    fn : callable
        ``fn(ctx, *lifted_args)`` returning an interval of the interval context ``ctx``; write it
        with ``+ - * /``, ``**`` and ``ctx.log``, ``ctx.exp``, ``ctx.sqrt``, ... only, and real
        formula constants as ``ctx.mpf(3) / 4`` or ``ctx.mpf('0.75')`` (an enclosure), never as a
        float64 literal.
    *args
        The inputs: floats and ints are lifted exactly, :class:`fractions.Fraction` as a tight
        enclosure, anything else is passed unchanged.
    rounding : {"ceil", "floor", "above"}
        See :data:`ROUNDINGS`.
    minimum : int, optional
        The result is ``max(minimum, rounding(x))`` (e.g. 0 steps when a target is already met).
    decide : callable, optional
        ``decide(n) -> bool``: the defining inequality of the constant evaluated *exactly* for the
        integer ``n`` (monotone: false below the constant, true from it on). Used only when the
        enclosure stays ambiguous; it returns the least candidate for which it holds. It may
        return ``None`` for "too expensive to decide", which leaves the result ambiguous.
    prec, max_prec : int
        First and largest precision in bits (doubling in between).
    names : tuple of str
        Argument names for error messages (default ``arg0, arg1, ...``).

    Returns
    -------
    CertifiedInt

    Raises
    ------
    ValueError
        On an unknown rounding, a precision below 53 bits or a non-finite argument.
    """
    choice("rounding", rounding, ROUNDINGS)
    prec = positive_int("prec", prec, minimum=53)
    max_prec = positive_int("max_prec", max_prec, minimum=prec)
    if minimum is not None:
        minimum = positive_int("minimum", minimum, minimum=-(2**62))
    labels = tuple(names) + tuple(f"arg{i}" for i in range(len(names), len(args)))

    def clamp(n: int) -> int:
        return n if minimum is None else max(minimum, n)

    p = prec
    while True:
        ctx = MPIntervalContext()
        ctx.prec = p
        lifted = [_lift(ctx, label, a) for label, a in zip(labels, args, strict=True)]
        ends = _endpoints(fn(ctx, *lifted))
        if ends is None:
            lo = hi = Fraction(0)
            cands = (0, 0)
            reason = f"unbounded enclosure at {p} bits"
        else:
            lo, hi = ends
            cands = (clamp(_round(lo, rounding)), clamp(_round(hi, rounding)))
            if cands[0] == cands[1]:
                how = "exact" if lo == hi else f"enclosure width {float(hi - lo):.2g}"
                return CertifiedInt(cands[0], lo, hi, cands, False,
                                    f"{rounding} certified at {p} bits ({how})", p, rounding)
            reason = f"enclosure straddles an integer at {p} bits"
        if 2 * p > max_prec:
            break
        p *= 2
    if decide is not None and ends is not None:
        for n in range(cands[0], cands[1] + 1):
            verdict = decide(n)
            if verdict is None:
                reason += f"; exact decision at n={n} exceeds {EXACT_BIT_BUDGET} bits"
                break
            if verdict:
                return CertifiedInt(n, lo, hi, (n, n), False,
                                    f"{reason}; decided exactly by the defining inequality", p, rounding)
        else:
            reason += "; no candidate satisfies the defining inequality (inconsistent decide)"
    return CertifiedInt(None, lo, hi, cands, True, reason, p, rounding)


def certify_ceil(fn: Callable, *args, **kw) -> CertifiedInt:
    """:func:`certify` with ``rounding="ceil"`` (least integer ``>= fn(args)``)."""
    return certify(fn, *args, rounding="ceil", **kw)


def certify_floor(fn: Callable, *args, **kw) -> CertifiedInt:
    """:func:`certify` with ``rounding="floor"`` (greatest integer ``<= fn(args)``)."""
    return certify(fn, *args, rounding="floor", **kw)


def certify_above(fn: Callable, *args, **kw) -> CertifiedInt:
    """:func:`certify` with ``rounding="above"`` (least integer ``> fn(args)``)."""
    return certify(fn, *args, rounding="above", **kw)


def certified_max(*parts: CertifiedInt) -> CertifiedInt:
    """``max`` of certified integers: certified when every candidate set allows one maximum.

    An ambiguous part whose largest candidate lies below another part's certified value does not
    make the maximum ambiguous.
    """
    if not parts:
        raise ValueError("parts: need at least one CertifiedInt")
    lo_c = max(p.candidates[0] for p in parts)
    hi_c = max(p.candidates[1] for p in parts)
    top = max(parts, key=lambda p: (p.candidates[1], p.candidates[0]))
    reasons = "; ".join(p.reason for p in parts)
    if lo_c == hi_c:
        return CertifiedInt(lo_c, top.lo, top.hi, (lo_c, lo_c), False, f"max of: {reasons}", top.prec,
                            top.rounding)
    return CertifiedInt(None, top.lo, top.hi, (lo_c, hi_c), True, f"max of: {reasons}", top.prec,
                        top.rounding)


# --------------------------------------------------------------------------------------------
# exact decisions of "least n with a^n <= b"


def _power_at_most(base: Fraction, n: int, bound: Fraction) -> bool | None:
    """Exactly ``base^n <= bound`` for ``0 < base`` and ``n >= 0`` (``None`` beyond the bit budget)."""
    if n < 0:
        return False
    if base.numerator.bit_length() * n > EXACT_BIT_BUDGET or base.denominator.bit_length() * n > \
            EXACT_BIT_BUDGET:
        return None
    # base^n <= p/q  <=>  num^n q <= p den^n (all positive integers)
    return base.numerator ** n * bound.denominator <= bound.numerator * base.denominator ** n


def _least_power_decision(base: float, bound: Fraction) -> Callable[[int], bool | None]:
    b = Fraction(base)
    return lambda n: _power_at_most(b, n, bound)


# --------------------------------------------------------------------------------------------
# deep linear networks


def certified_steps_for_rho_power(rho: float, target: float = 1e-6, *, exact: bool = True) -> CertifiedInt:
    """The least ``T >= 0`` with ``rho^T <= target`` (:func:`bounds.dln_phases.steps_for_rho_power`).

    ``T = max(0, ceil(log(target)/log(rho)))`` for ``0 < rho < 1``. With ``exact`` an ambiguous
    enclosure is decided by ``rho^T <= target`` in exact rational arithmetic.

    Raises
    ------
    ValueError
        Unless ``0 < rho < 1`` and ``target > 0``.
    """
    rho = real("rho", rho, minimum=0.0, strict=True)
    target = real("target", target, minimum=0.0, strict=True)
    if rho >= 1.0:
        raise ValueError(f"rho: must be < 1 (lam > 0) to reach rho^T <= target, got {rho}")
    decide = _least_power_decision(rho, Fraction(target)) if exact else None
    return certify_ceil(lambda ctx, r, t: ctx.log(t) / ctx.log(r), rho, target, minimum=0, decide=decide,
                        names=("rho", "target"))


def certified_t_d2(eps: float, rho1: float, B_max: float, *, exact: bool = True) -> CertifiedInt:
    """``T_D2 = max(0, ceil(log(B_max/eps) / -log|rho_1|))``: least ``t`` with ``|rho_1|^t B_max <= eps``.

    The certified counterpart of :func:`bounds.dln_phases.t_d2_certified` (a 50-digit point value)
    and :func:`bounds.dln_weight_decay.T_D2` (float64), D2.

    Raises
    ------
    ValueError
        Unless ``eps > 0``, ``0 < |rho1| < 1`` and ``B_max >= 0``.
    """
    eps = real("eps", eps, minimum=0.0, strict=True)
    rho1 = real("rho1", rho1)
    if not 0.0 < abs(rho1) < 1.0:
        raise ValueError(f"rho1: need 0 < |rho1| < 1 for a finite Phase-2 time, got {rho1}")
    B_max = real("B_max", B_max, minimum=0.0)
    a = abs(rho1)
    if B_max <= eps:  # t = 0 already satisfies |rho|^0 B <= eps (and log(0) is undefined)
        zero = Fraction(0)
        return CertifiedInt(0, zero, zero, (0, 0), False, "B_max <= eps: T_D2 = 0 exactly", 53, "ceil")
    decide = _least_power_decision(a, Fraction(eps) / Fraction(B_max)) if exact else None
    return certify_ceil(lambda ctx, e, r, b: ctx.log(b / e) / -ctx.log(r), eps, a, B_max, minimum=0,
                        decide=decide, names=("eps", "rho1", "B_max"))


def certified_seed002_width(L: int, kappa_X: float, d: int, C_w: float = 1.0) -> CertifiedInt:
    """Least integer width ``d_w >= C_w L^2 kappa(X)^2 d`` ([seed 002] width requirement)."""
    L = positive_int("L", L)
    d = positive_int("d", d)
    kappa_X = real("kappa_X", kappa_X, minimum=1.0)
    C_w = real("C_w", C_w, minimum=0.0, strict=True)
    return certify_ceil(lambda ctx, c, ll, k, dd: c * ll**2 * k**2 * dd, C_w, L, kappa_X, d,
                        names=("C_w", "L", "kappa_X", "d"))


# --------------------------------------------------------------------------------------------
# DIP


def certified_early_stopping_steps(r0: float, eps_eff: float, q_gamma: float, *,
                                   exact: bool = True) -> CertifiedInt:
    """``tau_eps = ceil(2 ln(||r_0||/||eps_eff||) / (-ln q_gamma))`` (MSE, GD; Theorem GD).

    The least ``tau`` with ``q_gamma^(tau/2) ||r_0|| <= ||eps_eff||``, i.e. ``q^tau <= (eps/r_0)^2``,
    which decides an ambiguous enclosure exactly (with ``exact``).
    :func:`bounds.dip_two_layer.early_stopping_steps` refuses such inputs instead.

    Raises
    ------
    ValueError
        Unless ``r0 > eps_eff > 0`` and ``0 < q_gamma < 1``.
    """
    eps_eff = real("eps_eff", eps_eff, minimum=0.0, strict=True)
    r0 = real("r0", r0, minimum=eps_eff, strict=True)
    q_gamma = real("q_gamma", q_gamma, minimum=0.0, strict=True)
    if not q_gamma < 1.0:
        raise ValueError(f"q_gamma: must be < 1, got {q_gamma}")
    decide = _least_power_decision(q_gamma, (Fraction(eps_eff) / Fraction(r0)) ** 2) if exact else None
    return certify_ceil(lambda ctx, r, e, q: 2 * ctx.log(r / e) / -ctx.log(q), r0, eps_eff, q_gamma,
                        decide=decide, names=("r0", "eps_eff", "q_gamma"))


def _radial_H(ctx, name: str, p, delta, rho, rho_is_small: bool):
    """``H(rho) = Psi(h(rho))`` up to an additive constant (spec §4.3, as ``dip_descent._radial_H``)."""
    if name == "mse" or (name == "power" and p == 2):
        return -ctx.log(rho)
    if name == "power":
        return rho ** (2 - p) / (p - 2)
    if rho_is_small:
        return -ctx.log(rho)
    return -ctx.log(delta) - (rho - delta) / delta


def certified_early_stopping_steps_radial(loss, r0: float, eps_norm: float, kappa: float,
                                          c_gamma: float) -> CertifiedInt:
    """``tau_eps = ceil((Psi(h(||eps||)) - Psi(h(||r_0||))) / (c_gamma kappa))`` (radial loss, GD, §7).

    The certified counterpart of :func:`bounds.dip_two_layer.early_stopping_steps_radial`, with
    ``Psi o h`` in closed form (MSE ``-ln rho``, power ``rho^(2-p)/(p-2)``, Huber ``-ln rho`` below
    ``delta`` and ``-ln delta - (rho - delta)/delta`` above); no exact decision (``p`` is real).

    Parameters
    ----------
    loss : dynamics.dip_two_layer.RadialLoss
        Provides ``name``, ``p`` and ``delta`` (floats, lifted exactly).

    Raises
    ------
    ValueError
        Unless ``r0 > eps_norm > 0``, ``kappa > 0`` and ``c_gamma > 0``, or on an unknown loss.
    """
    name = choice("loss", getattr(loss, "name", None), ("mse", "power", "huber"))
    eps_norm = real("eps_norm", eps_norm, minimum=0.0, strict=True)
    r0 = real("r0", r0, minimum=eps_norm, strict=True)
    kappa = real("kappa", kappa, minimum=0.0, strict=True)
    c_gamma = real("c_gamma", c_gamma, minimum=0.0, strict=True)
    p = real("loss.p", loss.p, minimum=1.0, strict=True)
    delta = real("loss.delta", loss.delta, minimum=0.0, strict=True)

    def tau(ctx, r, e, k, c, pp, dd):
        diff = _radial_H(ctx, name, pp, dd, e, eps_norm <= delta) - _radial_H(ctx, name, pp, dd, r,
                                                                                r0 <= delta)
        return diff / (c * k)

    return certify_ceil(tau, r0, eps_norm, kappa, c_gamma, p, delta,
                        names=("r0", "eps_norm", "kappa", "c_gamma", "loss.p", "loss.delta"))


def _chernoff_width(ctx):
    # 2 / (3/4 + (1/4) ln(1/4)): the real constant behind dip_two_layer.CHERNOFF_WIDTH (Lemma D3)
    quarter = ctx.mpf(1) / 4
    return 2 / (3 * quarter + quarter * ctx.log(quarter))


_LAZY_FACTOR = {"gf": 256, "gd": 1024, "gf_refined": 64}


def certified_d5_width(n: int, sigmaA: float, rho: float, *, act: str = "tanh", D: float = 1.0,
                       variant: str = "gf", constants: dipb.ActivationConstants | None = None
                       ) -> CertifiedInt:
    """Smallest integer width of Theorem D5: ``k >= k_chernoff`` and ``k > k_lazy``.

    ``k_chernoff = 2/(3/4 + ln(1/4)/4) B_1^2 D^2 n ln n / C_phi'^2`` and
    ``k_lazy = F B_2^2 D^2 n rho^2 / (C_phi'^4 sigma_A^2)`` (``F`` = 256, 1024, 64 for ``gf``, ``gd``,
    ``gf_refined``), as in :func:`bounds.dip_two_layer.width_threshold`; the integer is
    ``max(ceil(k_chernoff), floor(k_lazy) + 1)`` (``verification.claims.dip_width.d5_width``).

    Parameters
    ----------
    constants : ActivationConstants, optional
        Default :func:`bounds.dip_two_layer.activation_constants` of ``act`` (its floats are taken
        as exact inputs).

    Raises
    ------
    ValueError
        On ``n < 2``, ``sigmaA <= 0``, ``rho < 0``, ``D <= 0``, an unknown variant, or ``B_2 = inf``.
    """
    n = positive_int("n", n, minimum=2)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    rho = real("rho", rho, minimum=0.0)
    D = real("D", D, minimum=0.0, strict=True)
    choice("variant", variant, tuple(_LAZY_FACTOR))
    c = dipb.activation_constants(act) if constants is None else constants
    if not math.isfinite(c.B2):
        raise ValueError(f"act: {act} has B_2 = inf (no Lipschitz Jacobian, spec §3.5)")
    C_dphi = real("constants.C_dphi", c.C_dphi, minimum=0.0, strict=True)
    B1 = real("constants.B1", c.B1, minimum=0.0)
    B2 = real("constants.B2", c.B2, minimum=0.0)
    k_ch = certify_ceil(lambda ctx, b1, dd, cd, nn: _chernoff_width(ctx) * b1**2 * dd**2 / cd**2 * nn
                        * ctx.log(nn), B1, D, C_dphi, n, names=("B1", "D", "C_dphi", "n"))
    k_lazy = certify_above(lambda ctx, f, b2, dd, cd, nn, r, s: f * b2**2 * dd**2 / cd**4 * nn * r**2 / s**2,
                           _LAZY_FACTOR[variant], B2, D, C_dphi, n, rho, sigmaA,
                           names=("factor", "B2", "D", "C_dphi", "n", "rho", "sigmaA"))
    return certified_max(k_ch, k_lazy)


def certified_paper_width_4th_power(n: int, m: int, d: int, sigmaA: float, norm_A: float, Ax_inf: float,
                                    eps_inf: float, *, C: float = 1.0, C_prime: float = 1.0) -> CertifiedInt:
    """Least integer ``k >= C' n X^4 / sigma_A^4``, ``X = C ||A|| sqrt(n ln d) + sqrt(m)(||A x||_inf +
    ||eps||_inf)`` (:func:`bounds.dip_two_layer.paper_width_4th_power`, [unverified] profile)."""
    n = positive_int("n", n)
    m = positive_int("m", m)
    d = positive_int("d", d)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    args = (real("C", C, minimum=0.0), real("norm_A", norm_A, minimum=0.0), n, d, m,
            real("Ax_inf", Ax_inf, minimum=0.0), real("eps_inf", eps_inf, minimum=0.0),
            real("C_prime", C_prime, minimum=0.0), sigmaA)

    def k(ctx, c, a, nn, dd, mm, ax, ei, cp, s):
        X = c * a * ctx.sqrt(nn * ctx.log(dd)) + ctx.sqrt(mm) * (ax + ei)
        return cp * nn * X**4 / s**4

    return certify_ceil(k, *args, names=("C", "norm_A", "n", "d", "m", "Ax_inf", "eps_inf", "C_prime",
                                         "sigmaA"))


def certified_paper_sigma0_width(n: int, *, C_second: float = 1.0) -> CertifiedInt:
    """Least integer ``k >= C'' n ln n`` (:func:`bounds.dip_two_layer.paper_sigma0_width`)."""
    n = positive_int("n", n)
    C_second = real("C_second", C_second, minimum=0.0, strict=True)
    return certify_ceil(lambda ctx, c, nn: c * nn * ctx.log(nn), C_second, n, names=("C_second", "n"))


# --------------------------------------------------------------------------------------------
# sample sizes and grids


def certified_trials_to_confirm(proven: float, level: float = 0.99, *, exact: bool = True) -> CertifiedInt:
    """Fewest trials whose all-success Clopper-Pearson lower end reaches ``proven``.

    ``n = max(1, ceil(ln((1 - level)/2) / ln(proven)))``: the least ``n >= 1`` with
    ``proven^n <= (1 - level)/2`` (:func:`verification.engine.trials_to_confirm`, which sizes the
    samples of the statistical DIP claims).

    Raises
    ------
    ValueError
        Unless ``0 < proven < 1`` and ``0 < level < 1``.
    """
    proven = real("proven", proven, minimum=0.0, strict=True)
    level = real("level", level, minimum=0.0, strict=True)
    if not proven < 1.0:
        raise ValueError(f"proven: must lie in (0, 1), got {proven}")
    if not level < 1.0:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    decide = _least_power_decision(proven, (1 - Fraction(level)) / 2) if exact else None
    return certify_ceil(lambda ctx, p, lv: ctx.log((1 - lv) / 2) / ctx.log(p), proven, level, minimum=1,
                        decide=decide, names=("proven", "level"))


def certified_grid_points(lo: float, hi: float, spacing: float) -> CertifiedInt:
    """``M = ceil((hi - lo)/spacing) + 1``: the fewest grid points on ``[lo, hi]`` with spacing at
    most ``spacing`` (the JPO ripple-bracket claim and the grid oracle; ``hi - lo`` is exact here,
    rounded in float64 there)."""
    lo = real("lo", lo)
    hi = real("hi", hi)
    if not hi > lo:
        raise ValueError(f"hi: must exceed lo = {lo}, got {hi}")
    spacing = real("spacing", spacing, minimum=0.0, strict=True)
    return certify_ceil(lambda ctx, a, b, s: (b - a) / s + 1, lo, hi, spacing, names=("lo", "hi", "spacing"))


__all__ = ["DEFAULT_PREC", "EXACT_BIT_BUDGET", "MAX_PREC", "ROUNDINGS", "AmbiguousInteger", "CertifiedInt",
           "certified_d5_width", "certified_early_stopping_steps", "certified_early_stopping_steps_radial",
           "certified_grid_points", "certified_max", "certified_paper_sigma0_width",
           "certified_paper_width_4th_power", "certified_seed002_width", "certified_steps_for_rho_power",
           "certified_t_d2", "certified_trials_to_confirm", "certify", "certify_above", "certify_ceil",
           "certify_floor"]
