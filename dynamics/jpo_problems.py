"""The JPO benchmark problems (spec ``jpo.md`` §7), vectorised over examples.

Every family builds a :class:`Problem`: ``n`` independent inverse problems sharing one forward
model. Arrays carry a leading example axis: unknowns ``x`` have shape ``(n, d)``, losses ``(n,)``,
gradients ``(n, d)``, network inputs ``(n, d_in)``.

Families (all [project choice] benchmarks; the formulas are [derived] in the spec):

* :func:`ripple_problem` -- signal + ripple toy (§7.1), ``d = 1``;
* :func:`wave_packet_problem` -- periodic wave-packet localisation (§7.2), ``d = 1``, with the
  frozen configurations :data:`WAVE_NAIVE` and :data:`WAVE_TUNED`;
* :func:`billiards_problem` -- analytic two-ball billiards (§7.3a), ``d = 2``, exact zero
  gradient on a miss; :func:`billiards_impact` exposes the hit indicator and impact quantities;
* :func:`logistic_problem` -- logistic-map chaos (§7.4), ``d = 1``, closed form
  ``sin^2(2^t theta)`` or the iterated map in forward mode, horizon ``T``.

The common interface
--------------------
A :class:`Problem` keeps three things apart:

* ``model`` (a :class:`ForwardModel`): the observations and known quantities, and nothing else.
  Its :meth:`ForwardModel.loss_and_grad` is the **training callback** (spec §4.4): a bound method
  of an object that holds no ground truth, so a training routine given
  ``(problem.inputs, problem.callback())`` cannot reach the truth;
* ``truth`` (a :class:`Truth`): the ground-truth unknowns and generator draws, used only to
  generate the data and to evaluate results; replacing it (``dataclasses.replace(problem,
  truth=...)``) changes no loss value;
* ``oracle_hint`` (an :class:`OracleHint`): what the problem *proves* about where its global
  minimisers lie (a bracket and the shortest oscillation period for 1-D problems, a prior box for
  multi-start, or a known zero minimum), read by :mod:`verification.jpo_oracle`.

Evaluation entry points:

* ``problem.loss(x) -> (n,)``, ``problem.grad(x) -> (n, d)``, ``problem.loss_and_grad(x)``:
  vectorised over all ``n`` examples, with input validation (``x`` of shape ``(n, d)``, finite;
  complex ``x`` accepted where the model is analytic -- ripple, wave packet, logistic -- for
  complex-step checks, in which case the loss is complex);
* ``problem.example(i)`` -> :class:`ExampleFunctions`: scalar ``fun(x) -> float`` and
  ``jac(x) -> (d,)`` closures of example ``i`` for :func:`scipy.optimize.minimize` (the vectorised
  kernel on a pre-sliced one-example model, no validation, the gradient of the last evaluation
  memoised so that ``fun`` then ``jac`` at one point costs one kernel call);
* ``problem.loss_on_grid(grid)``: 1-D problems only, the loss of every example on many points at
  once (used by the oracle's dense grids).

Seeds: every generator takes ``seed`` as an ``int`` (``numpy.random.default_rng(seed)``) or a
``numpy.random.Generator``; the order of the draws is documented per generator and is part of the
reproducibility contract.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from dynamics._validate import positive_int, real

__all__ = [
    "BILLIARDS_HORIZON",
    "BILLIARDS_RADIUS",
    "BILLIARDS_RESTITUTION",
    "BILLIARDS_X0",
    "LOGISTIC_MAX_T",
    "LOGISTIC_SIGMA_Y",
    "LOGISTIC_X0",
    "RIPPLE_OMEGAS",
    "RIPPLE_X0",
    "WAVE_NAIVE",
    "WAVE_TUNED",
    "WAVE_X0",
    "BilliardsModel",
    "ExampleFunctions",
    "ForwardModel",
    "Impact",
    "LogisticModel",
    "OracleHint",
    "Problem",
    "RippleModel",
    "Truth",
    "WaveModel",
    "WavePacketConfig",
    "billiards_from_data",
    "billiards_impact",
    "billiards_problem",
    "logistic_from_data",
    "logistic_gradient_forward_mode",
    "logistic_problem",
    "logistic_states",
    "logistic_states_iterated",
    "ripple_bracket_halfwidth",
    "ripple_from_data",
    "ripple_problem",
    "wave_packet_from_data",
    "wave_packet_problem",
    "wave_signal",
    "wave_wrap_distance",
]

SeedLike = int | np.random.Generator


# --------------------------------------------------------------------------------------------
# validation helpers


def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(positive_int("seed", seed, minimum=0))


def _real_array(name: str, value, ndim: int, *, allow_complex: bool = False) -> np.ndarray:
    """``value`` as a finite float64 (or complex128) array with ``ndim`` dimensions."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        if not allow_complex:
            raise ValueError(f"{name}: complex values are not accepted here (the model is not "
                             "analytic, or the argument is data)")
        arr = arr.astype(np.complex128, copy=False)
    else:
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite entries (NaN or inf)")
    return arr


def _same_examples(**arrays: np.ndarray) -> int:
    counts = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{', '.join(counts)}: mismatched example counts (leading axis) {counts}")
    return next(iter(counts.values()))


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


# --------------------------------------------------------------------------------------------
# the common interface


class ForwardModel:
    """Observation-only forward model and loss of ``n`` examples.

    Subclasses hold the observations ``y_i`` and known quantities ``gamma_i`` and nothing else
    (no ground truth: spec §2.1, §4.4). They implement :meth:`_evaluate` (vectorised, unvalidated)
    and :meth:`_rows` (the model of a subset of examples, as views).

    Attributes
    ----------
    n : int
        Number of examples.
    d : int
        Dimension of each unknown.
    analytic : bool
        Whether the loss is an analytic function of ``x`` (complex-step differentiable).
    """

    n: int
    d: int
    analytic: bool

    # -- to implement -------------------------------------------------------------------------
    def _evaluate(self, x: np.ndarray, want_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _rows(self, idx) -> ForwardModel:
        raise NotImplementedError

    def _gradient_scale(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _loss_grid_rows(self, grid: np.ndarray) -> np.ndarray:
        """``L_i(grid[i, m])`` for a ``(n, M)`` grid (1-D problems); default: column by column."""
        out = np.empty(grid.shape, dtype=np.float64)
        for m in range(grid.shape[1]):
            out[:, m] = self._evaluate(grid[:, m:m + 1], False)[0]
        return out

    def _loss_grid(self, grid: np.ndarray) -> np.ndarray:
        """``L_i(grid[m])`` for a ``(M,)`` grid shared by all examples."""
        return self._loss_grid_rows(np.broadcast_to(grid, (self.n, grid.size)))

    # -- validated public evaluation ----------------------------------------------------------
    def _check_x(self, x) -> np.ndarray:
        arr = _real_array("x", x, 2, allow_complex=self.analytic)
        if arr.shape != (self.n, self.d):
            raise ValueError(f"x: expected shape (n, d) = ({self.n}, {self.d}), got {arr.shape}")
        return arr

    @staticmethod
    def _check_out(L: np.ndarray, g: np.ndarray | None) -> None:
        bad = ~np.isfinite(L)
        if g is not None:
            bad |= ~np.all(np.isfinite(g), axis=1)
        if np.any(bad):
            raise ValueError(f"x: the loss or gradient is not finite at examples "
                             f"{np.flatnonzero(bad)[:10].tolist()} (overflow: x too large)")

    def loss(self, x) -> np.ndarray:
        """Per-example losses ``L_i(x_i)``, shape ``(n,)`` (complex for complex ``x``).

        Raises
        ------
        ValueError
            If ``x`` is not a finite ``(n, d)`` array (complex only for analytic models), or the
            loss overflows.
        """
        x = self._check_x(x)
        with np.errstate(over="ignore", invalid="ignore"):
            L, _ = self._evaluate(x, False)
        self._check_out(L, None)
        return L

    def grad(self, x) -> np.ndarray:
        """Per-example hand-written gradients ``g_i(x_i)``, shape ``(n, d)``; see :meth:`loss`."""
        return self.loss_and_grad(x)[1]

    def gradient_scale(self, x) -> np.ndarray:
        """``(n, d)`` magnitude scale of the gradient: the sum of the absolute values of its terms,
        with every oscillating factor (``cos``, ``sin``) replaced by its bound 1.

        The float64 rounding error of the gradient, and the central-difference truncation error
        of these band-limited models, scale with it rather than with ``|g|`` (which may vanish by
        cancellation); gradient checks are relative to it. It is ``>= |g|`` componentwise.
        """
        x = self._check_x(x)
        if np.iscomplexobj(x):
            raise ValueError("x: the gradient scale is defined for real x only")
        with np.errstate(over="ignore", invalid="ignore"):
            s = self._gradient_scale(x)
        self._check_out(s[:, 0], s)
        return s

    def loss_and_grad(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(L, g)`` with ``L`` of shape ``(n,)`` and ``g`` of shape ``(n, d)``; see :meth:`loss`.

        This bound method is the training callback of spec §4.4.
        """
        x = self._check_x(x)
        if np.iscomplexobj(x):
            raise ValueError("x: the hand gradient is defined for real x only (complex x is for "
                             "complex-step checks of the loss)")
        with np.errstate(over="ignore", invalid="ignore"):
            L, g = self._evaluate(x, True)
        self._check_out(L, g)
        return L, g


@dataclasses.dataclass(frozen=True, eq=False)
class Truth:
    """Ground truth of a problem: used for data generation and evaluation only.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n, d)`` ground-truth unknowns (the values the data were generated from).
    extras : Mapping[str, numpy.ndarray]
        Other generator draws (noise, impact parameters, ...), each with a leading example axis.
    """

    x: np.ndarray
    extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def rows(self, idx) -> Truth:
        """The truth of the examples ``idx``."""
        return Truth(self.x[idx], {k: v[idx] for k, v in self.extras.items()})


@dataclasses.dataclass(frozen=True, eq=False)
class OracleHint:
    """What a problem proves about where its global minimisers lie (spec §5.1).

    Attributes
    ----------
    method : str
        ``"grid"`` (1-D: dense grid over ``[lo_i, hi_i]``, then polishing), ``"multistart"``
        (``d >= 2``: Sobol starts over ``box``) or ``"known_zero"`` (noise-free, ``L_i^* = 0``).
    lo, hi : numpy.ndarray or None
        ``(n,)`` ends of a bracket proven to contain a global minimiser (grid method).
    min_period : float or None
        Shortest oscillation period of ``L_i`` on the bracket; the grid spacing is at most
        ``min_period / 1000``.
    max_spacing : float or None
        A further cap on the spacing the spec prescribes for the problem (ripple: ``1e-4``).
    box_lo, box_hi : numpy.ndarray or None
        ``(d,)`` prior box for multi-start.
    reason : str
        Why the bracket holds / why the minimum is known.
    """

    method: str
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    min_period: float | None = None
    max_spacing: float | None = None
    box_lo: np.ndarray | None = None
    box_hi: np.ndarray | None = None
    reason: str = ""

    def rows(self, idx) -> OracleHint:
        """The hint restricted to the examples ``idx``."""
        return dataclasses.replace(self, lo=None if self.lo is None else self.lo[idx],
                                   hi=None if self.hi is None else self.hi[idx])


class ExampleFunctions:
    """Scalar closures of one example for :func:`scipy.optimize.minimize`.

    ``fun(x)`` returns ``L_i(x)`` as a float and remembers the gradient it computed on the way;
    ``jac(x)`` returns it when ``x`` is the last evaluated point (SciPy's BFGS always asks for the
    gradient at the point it just evaluated), and evaluates afresh otherwise. Both take ``x`` of
    shape ``(d,)``; there is no validation (this is the hot path of per-example BFGS).

    Attributes
    ----------
    index : int
        The example index.
    calls : int
        Number of kernel evaluations so far.
    """

    __slots__ = ("_d", "_g", "_model", "_x", "calls", "index")

    def __init__(self, model: ForwardModel, index: int):
        self._model = model
        self._d = model.d
        self.index = index
        self._x: np.ndarray | None = None
        self._g: np.ndarray | None = None
        self.calls = 0

    def _eval(self, x: np.ndarray) -> float:
        L, g = self._model._evaluate(np.reshape(x, (1, self._d)), True)
        self.calls += 1
        self._x = np.array(x, dtype=np.float64, copy=True)
        self._g = g[0]
        return float(L[0])

    def fun(self, x: np.ndarray) -> float:
        """``L_i(x)``."""
        return self._eval(x)

    def jac(self, x: np.ndarray) -> np.ndarray:
        """``g_i(x)``, shape ``(d,)``."""
        if self._x is None or not np.array_equal(x, self._x):
            self._eval(x)
        return self._g.copy()

    def fun_and_jac(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L_i(x), g_i(x))``."""
        L = self._eval(x)
        return L, self._g.copy()


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """``n`` inverse problems of one family (spec §2.1).

    Attributes
    ----------
    name : str
        Family name (``"ripple"``, ``"wave_packet"``, ``"billiards"``, ``"logistic"``).
    x0 : numpy.ndarray
        ``(d,)`` fixed default start ``x^(0)`` of BFGS and the output offset of the network (§4.1).
    inputs : numpy.ndarray
        ``(n, d_in)`` network inputs ``u_i`` (read-only).
    model : ForwardModel
        The observation-only loss; ``model.loss_and_grad`` is the training callback.
    truth : Truth
        Ground truth (evaluation only).
    oracle_hint : OracleHint
        Bracket / box / known minimum for :mod:`verification.jpo_oracle`.
    params : Mapping[str, Any]
        The hyperparameters of the instance (``amp``, ``T``, the wave configuration, ...).
    """

    name: str
    x0: np.ndarray
    inputs: np.ndarray
    model: ForwardModel
    truth: Truth
    oracle_hint: OracleHint
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = self.model.n
        if self.inputs.shape[0] != n or self.truth.x.shape != (n, self.model.d):
            raise ValueError(f"inputs, truth: expected {n} examples, got inputs "
                             f"{self.inputs.shape} and truth {self.truth.x.shape}")
        if self.x0.shape != (self.model.d,):
            raise ValueError(f"x0: expected shape ({self.model.d},), got {self.x0.shape}")

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of examples."""
        return self.model.n

    @property
    def d(self) -> int:
        """Dimension of each unknown."""
        return self.model.d

    @property
    def d_in(self) -> int:
        """Dimension of each network input."""
        return self.inputs.shape[1]

    @property
    def analytic(self) -> bool:
        """Whether ``loss`` accepts complex ``x`` (complex-step checks)."""
        return self.model.analytic

    # -- evaluation -----------------------------------------------------------------------------
    def start(self) -> np.ndarray:
        """``(n, d)`` copies of the default start ``x0``."""
        return np.tile(self.x0, (self.n, 1))

    def loss(self, x) -> np.ndarray:
        """See :meth:`ForwardModel.loss`."""
        return self.model.loss(x)

    def grad(self, x) -> np.ndarray:
        """See :meth:`ForwardModel.grad`."""
        return self.model.grad(x)

    def loss_and_grad(self, x) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`ForwardModel.loss_and_grad`."""
        return self.model.loss_and_grad(x)

    def gradient_scale(self, x) -> np.ndarray:
        """See :meth:`ForwardModel.gradient_scale`."""
        return self.model.gradient_scale(x)

    def callback(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The training callback ``x (n, d) -> (L (n,), g (n, d))`` (spec §4.4).

        It is a bound method of :attr:`model`, which holds no ground truth.
        """
        return self.model.loss_and_grad

    def example(self, i: int) -> ExampleFunctions:
        """Scalar closures of example ``i`` for SciPy (see :class:`ExampleFunctions`)."""
        i = positive_int("i", i, minimum=0)
        if i >= self.n:
            raise ValueError(f"i: must be < n = {self.n}, got {i}")
        return ExampleFunctions(self.model._rows(slice(i, i + 1)), i)

    def loss_on_grid(self, grid) -> np.ndarray:
        """Losses of every example on many points at once (1-D problems).

        Parameters
        ----------
        grid : array_like
            ``(M,)`` points shared by all examples, or ``(n, M)`` per-example points.

        Returns
        -------
        numpy.ndarray
            ``(n, M)`` with entry ``[i, m] = L_i(grid[i, m])`` (or ``L_i(grid[m])``).
        """
        if self.d != 1:
            raise ValueError(f"grid: loss_on_grid is for 1-D problems, this one has d = {self.d}")
        g = np.asarray(grid, dtype=np.float64)
        if g.ndim == 1:
            g = _real_array("grid", g, 1)
            with np.errstate(over="ignore", invalid="ignore"):
                out = self.model._loss_grid(g)
        else:
            g = _real_array("grid", g, 2)
            if g.shape[0] != self.n:
                raise ValueError(f"grid: expected {self.n} rows (one per example), got {g.shape}")
            with np.errstate(over="ignore", invalid="ignore"):
                out = self.model._loss_grid_rows(g)
        if not np.all(np.isfinite(out)):
            raise ValueError("grid: the loss is not finite on some grid points (overflow)")
        return out

    def subset(self, idx) -> Problem:
        """The problem restricted to the examples ``idx`` (a slice, index array or mask)."""
        idx = np.arange(self.n)[idx]
        if idx.size == 0:
            raise ValueError("idx: selects no example")
        return Problem(self.name, self.x0, _frozen(self.inputs[idx]), self.model._rows(idx),
                       self.truth.rows(idx), self.oracle_hint.rows(idx), self.params)


def _problem(name, x0, inputs, model, truth_x, extras, hint, params) -> Problem:
    return Problem(name=name, x0=_frozen(np.asarray(x0, dtype=np.float64)), inputs=_frozen(inputs),
                   model=model, truth=Truth(_frozen(truth_x),
                                            MappingProxyType({k: _frozen(v) for k, v in extras.items()})),
                   oracle_hint=hint, params=MappingProxyType(dict(params)))


# --------------------------------------------------------------------------------------------
# §7.1 signal + ripple toy

RIPPLE_OMEGAS = np.linspace(20.0, 60.0, 8)
"""The ``K = 8`` ripple frequencies ``omega_k = 20 + 40 (k - 1)/7`` (spec §7.1)."""
RIPPLE_OMEGAS.setflags(write=False)
RIPPLE_X0 = 0.0
"""BFGS default start and network offset of the ripple toy."""
_RIPPLE_INV_OMEGAS = 1.0 / RIPPLE_OMEGAS
_RIPPLE_MIN_PERIOD = 2.0 * math.pi / float(RIPPLE_OMEGAS.max())
_RIPPLE_MAX_SPACING = 1e-4
"""§7.1: the oracle grid spacing is at most ``1e-4`` (finer than ``period/1000 = 1.05e-4``)."""


def ripple_bracket_halfwidth(amp: float) -> float:
    """Half-width ``sqrt(2 S_a)``, ``S_a = sum_k amp/omega_k``, of the §7.1 global-minimum bracket.

    [derived] ``L_i(x) >= (x - y_i)^2 - S_a`` and ``L_i(y_i) <= S_a``, so every global minimiser
    satisfies ``|x* - y_i| <= sqrt(2 S_a)`` (0.6733 for amp 1, 0.9521 for amp 2).
    """
    amp = real("amp", amp, minimum=0.0)
    return math.sqrt(2.0 * amp * float(np.sum(_RIPPLE_INV_OMEGAS)))


class RippleModel(ForwardModel):
    """``L_i(x) = (x - y_i)^2 + sum_k amp/omega_k sin(omega_k x + phi_ik)`` (spec §7.1).

    Attributes
    ----------
    y : numpy.ndarray
        ``(n,)`` observations.
    phases : numpy.ndarray
        ``(n, 8)`` known phases ``phi_ik`` (known to the loss, not network inputs).
    amp : float
        Ripple amplitude.
    """

    d = 1
    analytic = True

    def __init__(self, y: np.ndarray, phases: np.ndarray, amp: float):
        self.y, self.phases, self.amp = y, phases, float(amp)
        self.n = y.shape[0]
        self._coef = self.amp * _RIPPLE_INV_OMEGAS

    def _rows(self, idx) -> RippleModel:
        return RippleModel(self.y[idx], self.phases[idx], self.amp)

    def _evaluate(self, x, want_grad):
        arg = x * RIPPLE_OMEGAS + self.phases
        r = x[:, 0] - self.y
        L = r * r + np.sin(arg) @ self._coef
        if not want_grad:
            return L, None
        g = 2.0 * r + self.amp * np.cos(arg).sum(axis=1)
        return L, g[:, None]

    def _gradient_scale(self, x):
        return (2.0 * np.abs(x[:, 0] - self.y) + self.amp * RIPPLE_OMEGAS.size)[:, None]

    def _loss_grid_rows(self, grid: np.ndarray) -> np.ndarray:
        # (n, M, K) in blocks of examples so that a block holds at most ~4e6 sines.
        n, M = grid.shape
        out = np.empty((n, M))
        block = max(1, 4_000_000 // (M * RIPPLE_OMEGAS.size))
        for s in range(0, n, block):
            gs = grid[s:s + block]
            arg = gs[:, :, None] * RIPPLE_OMEGAS + self.phases[s:s + block, None, :]
            r = gs - self.y[s:s + block, None]
            out[s:s + block] = r * r + np.sin(arg) @ self._coef
        return out


def ripple_from_data(y, phases, amp: float, *, truth=None) -> Problem:
    """A ripple problem from given observations and phases.

    Parameters
    ----------
    y : array_like
        ``(n,)`` observations (the signal minimisers).
    phases : array_like
        ``(n, 8)`` phases.
    amp : float
        Ripple amplitude, ``>= 0``.
    truth : array_like, optional
        ``(n,)`` ground truth; defaults to ``y`` (the noise-free signal minimiser).

    Returns
    -------
    Problem
        ``x0 = 0``, inputs ``u_i = y_i`` (shape ``(n, 1)``), oracle hint: grid over the bracket
        ``|x - y_i| <= sqrt(2 S_a)`` with spacing ``<= 1e-4``.

    Raises
    ------
    ValueError
        On non-finite or mis-shaped arrays, mismatched example counts or ``amp < 0``.
    """
    y = _real_array("y", y, 1)
    phases = _real_array("phases", phases, 2)
    if phases.shape[1] != RIPPLE_OMEGAS.size:
        raise ValueError(f"phases: expected {RIPPLE_OMEGAS.size} columns, got shape {phases.shape}")
    _same_examples(y=y, phases=phases)
    half = ripple_bracket_halfwidth(amp)
    tx = y if truth is None else _real_array("truth", truth, 1)
    _same_examples(y=y, truth=tx)
    model = RippleModel(_frozen(y), _frozen(phases), amp)
    hint = OracleHint("grid", lo=_frozen(y - half), hi=_frozen(y + half),
                      min_period=_RIPPLE_MIN_PERIOD, max_spacing=_RIPPLE_MAX_SPACING,
                      reason="L >= (x-y)^2 - S_a and L(y) <= S_a (spec §7.1)")
    # The phases are known quantities gamma_i (held by the model), not ground truth.
    return _problem("ripple", [RIPPLE_X0], y[:, None], model, tx[:, None], {}, hint, {"amp": float(amp)})


def ripple_problem(n: int, amp: float, seed: SeedLike) -> Problem:
    """Generate ``n`` examples of the §7.1 ripple toy.

    Draws, in this order: ``y ~ U(-1, 1)`` of shape ``(n,)``, then ``phi ~ U[0, 2 pi)`` of shape
    ``(n, 8)``.

    Parameters
    ----------
    n : int
        Number of examples, ``>= 1``.
    amp : float
        Ripple amplitude (the spec uses 0.5, 1 and 2), ``>= 0``.
    seed : int or numpy.random.Generator
        Data seed.

    Returns
    -------
    Problem
        See :func:`ripple_from_data`.
    """
    n = positive_int("n", n)
    real("amp", amp, minimum=0.0)
    rng = _rng(seed)
    y = rng.uniform(-1.0, 1.0, n)
    phases = rng.uniform(0.0, 2.0 * math.pi, (n, RIPPLE_OMEGAS.size))
    return ripple_from_data(y, phases, amp)


# --------------------------------------------------------------------------------------------
# §7.2 periodic wave packet


@dataclasses.dataclass(frozen=True)
class WavePacketConfig:
    """Parameters of the §7.2 wave packet.

    Attributes
    ----------
    width : float
        Envelope width ``w > 0``.
    freq : float
        Carrier frequency ``omega / (2 pi) > 0``.
    alpha : float
        Pedestal ``alpha >= 0`` (0: the conventional packet).
    a : float
        Prior half-width: ``t0_true ~ U(0.5 - a, 0.5 + a)``, ``0 < a <= 0.5``.
    noise : float
        Observation noise standard deviation ``sigma_n >= 0`` (spec: 0.1).
    n_t : int
        Number of samples ``N_t >= 2`` (spec: 128).
    """

    width: float
    freq: float
    alpha: float
    a: float
    noise: float = 0.1
    n_t: int = 128

    def __post_init__(self):
        real("width", self.width, minimum=0.0, strict=True)
        real("freq", self.freq, minimum=0.0, strict=True)
        real("alpha", self.alpha, minimum=0.0)
        real("a", self.a, minimum=0.0, strict=True)
        if self.a > 0.5:
            raise ValueError(f"a: the prior U(0.5 - a, 0.5 + a) must fit in one period, a <= 0.5, "
                             f"got {self.a}")
        real("noise", self.noise, minimum=0.0)
        positive_int("n_t", self.n_t, minimum=2)

    @property
    def omega(self) -> float:
        """Angular carrier frequency ``omega = 2 pi freq``."""
        return 2.0 * math.pi * self.freq

    @property
    def samples(self) -> np.ndarray:
        """Sample times ``t_j = (j + 1/2)/N_t``."""
        return (np.arange(self.n_t) + 0.5) / self.n_t


WAVE_NAIVE = WavePacketConfig(width=0.08, freq=10.0, alpha=0.0, a=0.25)
"""§7.2 naive configuration ``(w, omega/2pi, alpha, a) = (0.08, 10, 0, 0.25)`` (report-only)."""
WAVE_TUNED = WavePacketConfig(width=0.1, freq=5.0, alpha=1.0, a=0.25)
"""§7.2 frozen tuned configuration ``(0.1, 5, 1, 0.25)``."""
WAVE_X0 = 0.5
"""BFGS default start ``t0^(0)`` of the wave packet."""


def _wave_tau(t0: np.ndarray, samples: np.ndarray) -> np.ndarray:
    # tau_j = ((t_j - t0 + 1/2) mod 1) - 1/2 = d - floor(d + 1/2) with d = t_j - t0: one rounding
    # (d), then an exact subtraction of an integer (Sterbenz: |d - k| <= 1/2). For complex t0 the
    # integer shift comes from the real part (spec §7.2), so the map stays analytic.
    diff = samples[None, :] - t0[:, None]
    return diff - np.floor(diff.real + 0.5)


def _wave_parts(tau: np.ndarray, cfg: WavePacketConfig):
    env = np.exp(-(tau * tau) / (2.0 * cfg.width ** 2))
    s = np.sin(cfg.omega * tau)
    return env, s


def wave_signal(t0, config: WavePacketConfig) -> np.ndarray:
    """Noise-free forward model ``F_j(t0) = exp(-tau_j^2/(2 w^2)) (alpha + sin(omega tau_j))``.

    Parameters
    ----------
    t0 : array_like
        ``(m,)`` packet positions (real or complex).
    config : WavePacketConfig

    Returns
    -------
    numpy.ndarray
        ``(m, N_t)``.
    """
    if not isinstance(config, WavePacketConfig):
        raise ValueError(f"config: expected a WavePacketConfig, got {type(config).__name__}")
    t0 = _real_array("t0", t0, 1, allow_complex=True)
    env, s = _wave_parts(_wave_tau(t0, config.samples), config)
    return env * (config.alpha + s)


def wave_wrap_distance(t0, n_t: int = 128) -> np.ndarray:
    """Distance from each ``t0`` to the nearest wrap point ``t0 = t_j + 1/2 (mod 1)``.

    At a wrap point one sample crosses the periodic seam (``tau = +1/2 -> -1/2``): ``F`` jumps by
    ``2 |sin(omega/2)| exp(-1/(8 w^2))`` (0 for an integer ``omega/2pi``, as in both frozen
    configurations) and its derivative by ``alpha exp(-1/(8 w^2))/w^2``; finite-difference checks
    keep ``t0`` farther than ``2h`` from every wrap point (spec §7.2).

    Parameters
    ----------
    t0 : array_like
        Real positions.
    n_t : int
        Number of samples.

    Returns
    -------
    numpy.ndarray
        Distances in ``[0, 1/(2 N_t)]``, same shape as ``t0``.
    """
    n_t = positive_int("n_t", n_t, minimum=2)
    t0 = np.asarray(t0, dtype=np.float64)
    if not np.all(np.isfinite(t0)):
        raise ValueError("t0: contains non-finite entries (NaN or inf)")
    # Wrap points in units of the sample spacing: u = N_t t0 - 1/2 - N_t/2 is an integer there.
    u = n_t * t0 - 0.5 - 0.5 * n_t
    return np.abs(u - np.round(u)) / n_t


class WaveModel(ForwardModel):
    """``L_i(t0) = mean_j (F_j(t0) - y_ij)^2`` on the periodic domain (spec §7.2).

    Attributes
    ----------
    y : numpy.ndarray
        ``(n, N_t)`` noisy observations.
    config : WavePacketConfig
    """

    d = 1
    analytic = True

    def __init__(self, y: np.ndarray, config: WavePacketConfig):
        self.y, self.config = y, config
        self.n = y.shape[0]
        self._samples = config.samples
        self._inv_w2 = 1.0 / config.width ** 2

    def _rows(self, idx) -> WaveModel:
        return WaveModel(self.y[idx], self.config)

    def _evaluate(self, x, want_grad):
        cfg = self.config
        tau = _wave_tau(x[:, 0], self._samples)
        env, s = _wave_parts(tau, cfg)
        res = env * (cfg.alpha + s) - self.y
        L = np.mean(res * res, axis=1)
        if not want_grad:
            return L, None
        dF = env * (tau * self._inv_w2 * (cfg.alpha + s) - cfg.omega * np.cos(cfg.omega * tau))
        g = (2.0 / cfg.n_t) * np.sum(res * dF, axis=1)
        return L, g[:, None]

    def _gradient_scale(self, x):
        cfg = self.config
        tau = _wave_tau(x[:, 0], self._samples)
        env, s = _wave_parts(tau, cfg)
        res = env * (cfg.alpha + s) - self.y
        bound = env * (np.abs(tau) * self._inv_w2 * (cfg.alpha + 1.0) + cfg.omega)
        return ((2.0 / cfg.n_t) * np.sum(np.abs(res) * bound, axis=1))[:, None]

    def _loss_grid(self, grid: np.ndarray) -> np.ndarray:
        # Shared grid: L_i(t_m) = (|F(t_m)|^2 - 2 F(t_m).y_i + |y_i|^2)/N_t as one matrix product
        # (the direct form costs n M N_t exponentials). The expanded form loses about two digits
        # to cancellation (terms O(0.5), minimum O(sigma_n^2)); that is harmless for locating the
        # best grid points, and the oracle re-evaluates its candidates with the direct form.
        out = np.empty((self.n, grid.size))
        yy = np.sum(self.y * self.y, axis=1)
        block = max(1, 2_000_000 // self.config.n_t)
        for s in range(0, grid.size, block):
            F = wave_signal(grid[s:s + block], self.config)
            out[:, s:s + block] = (np.sum(F * F, axis=1)[None, :] - 2.0 * (self.y @ F.T)
                                   + yy[:, None]) / self.config.n_t
        return out


def _wave_hint(n: int, cfg: WavePacketConfig) -> OracleHint:
    # The loss has period 1 in t0, so one period is a bracket trivially. Its highest carrier
    # frequency is 2 omega (from F^2 = env^2 (alpha + sin)^2), so the shortest oscillation period
    # is pi/omega; the Gaussian envelope broadens the spectrum but adds no faster oscillation.
    return OracleHint("grid", lo=_frozen(np.zeros(n)), hi=_frozen(np.ones(n)),
                      min_period=math.pi / cfg.omega,
                      reason="periodic in t0 with period 1: [0, 1] contains a global minimiser")


def wave_packet_from_data(y, config: WavePacketConfig, *, truth=None) -> Problem:
    """A wave-packet problem from given observations.

    Parameters
    ----------
    y : array_like
        ``(n, N_t)`` observations.
    config : WavePacketConfig
    truth : array_like, optional
        ``(n,)`` true positions; defaults to the start ``0.5`` (the truth is then unknown).

    Returns
    -------
    Problem
        ``x0 = 0.5``, inputs ``u_i = y_i`` (``(n, N_t)``), oracle hint: grid over one period.
    """
    if not isinstance(config, WavePacketConfig):
        raise ValueError(f"config: expected a WavePacketConfig, got {type(config).__name__}")
    y = _real_array("y", y, 2)
    if y.shape[1] != config.n_t:
        raise ValueError(f"y: expected {config.n_t} samples per example, got shape {y.shape}")
    tx = np.full(y.shape[0], WAVE_X0) if truth is None else _real_array("truth", truth, 1)
    _same_examples(y=y, truth=tx)
    return _problem("wave_packet", [WAVE_X0], y, WaveModel(_frozen(y), config), tx[:, None], {},
                    _wave_hint(y.shape[0], config), {"config": config})


def wave_packet_problem(n: int, config: WavePacketConfig, seed: SeedLike) -> Problem:
    """Generate ``n`` examples of the §7.2 wave packet.

    Draws, in this order: ``t0_true ~ U(0.5 - a, 0.5 + a)`` of shape ``(n,)``, then
    ``eps ~ N(0, I)`` of shape ``(n, N_t)``; ``y = F(t0_true) + sigma_n eps``.

    Parameters
    ----------
    n : int
        Number of examples.
    config : WavePacketConfig
        :data:`WAVE_NAIVE`, :data:`WAVE_TUNED` or another configuration.
    seed : int or numpy.random.Generator

    Returns
    -------
    Problem
        See :func:`wave_packet_from_data`; ``truth.extras["noise"]`` holds ``eps``.
    """
    n = positive_int("n", n)
    if not isinstance(config, WavePacketConfig):
        raise ValueError(f"config: expected a WavePacketConfig, got {type(config).__name__}")
    rng = _rng(seed)
    t0 = rng.uniform(0.5 - config.a, 0.5 + config.a, n)
    eps = rng.standard_normal((n, config.n_t))
    y = wave_signal(t0, config) + config.noise * eps
    model = WaveModel(_frozen(y), config)
    return _problem("wave_packet", [WAVE_X0], y, model, t0[:, None], {"noise": eps},
                    _wave_hint(n, config), {"config": config})


# --------------------------------------------------------------------------------------------
# §7.3a analytic two-ball billiards

BILLIARDS_RADIUS = 0.05
BILLIARDS_RESTITUTION = 1.0
BILLIARDS_HORIZON = 1.0
BILLIARDS_X0 = (1.0, 0.0)
"""§7.3a: radius ``r``, restitution ``e``, horizon ``T`` and the BFGS start ``v^(0) = (1, 0)``."""


@dataclasses.dataclass(frozen=True, eq=False)
class Impact:
    """Collision quantities of the cue ball with velocity ``v`` and a target at ``q`` (§7.3a).

    All arrays have a leading example axis. On a miss, the impact quantities (``t_star``, ``m``,
    ``v_b``) are 0 and ``P = q``.

    Attributes
    ----------
    hit : numpy.ndarray
        ``(n,)`` bool: ``beta > 0``, ``D > 0`` and ``t* < T``.
    beta : numpy.ndarray
        ``v . q``.
    c_q : numpy.ndarray
        ``|q|^2 - 4 r^2``.
    D : numpy.ndarray
        ``beta^2 - |v|^2 c_q = |v|^2 (4 r^2 - b^2)``, ``b`` the impact parameter.
    t_star : numpy.ndarray
        First time with ``|v t - q| = 2 r`` (hit) or 0.
    m : numpy.ndarray
        ``(n, 2)``: ``q - t* v = 2 r n_hat`` (hit) or 0.
    v_b : numpy.ndarray
        ``(n, 2)``: target velocity after impact ``kappa sqrt(D) m``.
    P : numpy.ndarray
        ``(n, 2)``: target position at ``T``.
    impact_parameter : numpy.ndarray
        ``b``: signed distance from ``q`` to the line of ``v`` (``v x q / |v|``).
    """

    hit: np.ndarray
    beta: np.ndarray
    c_q: np.ndarray
    D: np.ndarray
    t_star: np.ndarray
    m: np.ndarray
    v_b: np.ndarray
    P: np.ndarray
    impact_parameter: np.ndarray


def _billiards_core(v, q, radius, restitution, horizon, goal=None, want_grad=False):
    # Vectorised §7.3a collision, loss and hand gradient. Miss rows are computed with safe
    # substitutes (no division by 0, no sqrt of a negative) and then masked to the exact constant
    # loss |q - g|^2 and an exactly zero gradient.
    vv = np.sum(v * v, axis=1)
    beta = np.sum(v * q, axis=1)
    c_q = np.sum(q * q, axis=1) - 4.0 * radius ** 2
    D = beta * beta - vv * c_q
    pos = (beta > 0.0) & (D > 0.0)
    vv_s = np.where(pos, vv, 1.0)
    sD = np.sqrt(np.where(pos, D, 1.0))
    t = (beta - sD) / vv_s
    hit = pos & (t < horizon)
    kappa = (1.0 + restitution) / (8.0 * radius ** 2)
    m = q - t[:, None] * v
    v_b = kappa * sD[:, None] * m
    P = np.where(hit[:, None], q + (horizon - t)[:, None] * v_b, q)
    out = {"hit": hit, "beta": beta, "c_q": c_q, "D": D, "t": np.where(hit, t, 0.0),
           "m": np.where(hit[:, None], m, 0.0), "v_b": np.where(hit[:, None], v_b, 0.0), "P": P}
    if goal is None:
        return out
    res = P - goal
    out["L"] = np.sum(res * res, axis=1)
    if want_grad:
        grad_sD = (beta[:, None] * q - c_q[:, None] * v) / sD[:, None]     # grad D / (2 sqrt D)
        grad_t = (q - grad_sD) / vv_s[:, None] - 2.0 * (t / vv_s)[:, None] * v
        eye = np.eye(2)
        dvb = kappa * (m[:, :, None] * grad_sD[:, None, :]
                       - sD[:, None, None] * (t[:, None, None] * eye
                                              + v[:, :, None] * grad_t[:, None, :]))
        dP = (horizon - t)[:, None, None] * dvb - v_b[:, :, None] * grad_t[:, None, :]
        g = 2.0 * np.einsum("nij,ni->nj", dP, res)
        out["g"] = np.where(hit[:, None], g, 0.0)
        out["g_scale"] = np.where(hit[:, None], 2.0 * np.einsum("nij,ni->nj", np.abs(dP), np.abs(res)),
                                  0.0)
    return out


def _check_billiards_constants(radius, restitution, horizon):
    real("radius", radius, minimum=0.0, strict=True)
    real("restitution", restitution, minimum=0.0)
    if restitution > 1.0:
        raise ValueError(f"restitution: must lie in [0, 1], got {restitution}")
    real("horizon", horizon, minimum=0.0, strict=True)


def _check_targets(q, radius):
    bad = np.sum(q * q, axis=1) <= 4.0 * radius ** 2
    if np.any(bad):
        raise ValueError(f"q: the target must not overlap the cue ball at the origin "
                         f"(|q| > 2r = {2 * radius}); violated at examples "
                         f"{np.flatnonzero(bad)[:10].tolist()}")


def billiards_impact(v, q, *, radius: float = BILLIARDS_RADIUS,
                     restitution: float = BILLIARDS_RESTITUTION,
                     horizon: float = BILLIARDS_HORIZON) -> Impact:
    """Hit indicator and impact quantities of the §7.3a two-ball collision.

    Parameters
    ----------
    v : array_like
        ``(n, 2)`` cue velocities.
    q : array_like
        ``(n, 2)`` target positions, ``|q| > 2r``.
    radius, restitution, horizon : float
        ``r > 0``, ``e in [0, 1]``, ``T > 0``.

    Returns
    -------
    Impact
    """
    _check_billiards_constants(radius, restitution, horizon)
    v = _real_array("v", v, 2)
    q = _real_array("q", q, 2)
    if v.shape[1] != 2 or q.shape[1] != 2:
        raise ValueError(f"v, q: expected shape (n, 2), got {v.shape} and {q.shape}")
    _same_examples(v=v, q=q)
    _check_targets(q, radius)
    with np.errstate(over="ignore", invalid="ignore"):
        c = _billiards_core(v, q, radius, restitution, horizon)
        vn = np.sqrt(np.sum(v * v, axis=1))
        b = np.where(vn > 0, (v[:, 0] * q[:, 1] - v[:, 1] * q[:, 0]) / np.where(vn > 0, vn, 1.0),
                     0.0)
    return Impact(hit=c["hit"], beta=c["beta"], c_q=c["c_q"], D=c["D"], t_star=c["t"], m=c["m"],
                  v_b=c["v_b"], P=c["P"], impact_parameter=b)


class BilliardsModel(ForwardModel):
    """``L_i(v) = |P(v) - g_i|^2`` of the §7.3a two-ball problem; exactly 0 gradient on a miss.

    Attributes
    ----------
    q : numpy.ndarray
        ``(n, 2)`` target positions (known).
    goal : numpy.ndarray
        ``(n, 2)`` goal positions ``g_i`` (the observations).
    radius, restitution, horizon : float
    """

    d = 2
    analytic = False

    def __init__(self, q, goal, radius=BILLIARDS_RADIUS, restitution=BILLIARDS_RESTITUTION,
                 horizon=BILLIARDS_HORIZON):
        self.q, self.goal = q, goal
        self.radius, self.restitution, self.horizon = float(radius), float(restitution), float(horizon)
        self.n = q.shape[0]

    def _rows(self, idx) -> BilliardsModel:
        return BilliardsModel(self.q[idx], self.goal[idx], self.radius, self.restitution, self.horizon)

    def _evaluate(self, x, want_grad):
        c = _billiards_core(x, self.q, self.radius, self.restitution, self.horizon, self.goal,
                            want_grad)
        return c["L"], c.get("g")

    def _gradient_scale(self, x):
        return _billiards_core(x, self.q, self.radius, self.restitution, self.horizon, self.goal,
                               True)["g_scale"]

    def impact(self, v) -> Impact:
        """:func:`billiards_impact` of this model's targets."""
        return billiards_impact(v, self.q, radius=self.radius, restitution=self.restitution,
                                horizon=self.horizon)


def _billiards_hint(n: int) -> OracleHint:
    # Prior box of v*: speed in [0.8, 1.2], direction within pi/4 + arcsin(0.16/0.4) = 1.20 rad of
    # the x axis, so v* lies in [0.8 cos(1.2), 1.2] x [-1.2, 1.2] inside [0, 1.3] x [-1.3, 1.3].
    return OracleHint("known_zero", box_lo=_frozen(np.array([0.0, -1.3])),
                      box_hi=_frozen(np.array([1.3, 1.3])),
                      reason="noise-free goals g_i = P(v*_i): L_i(v*_i) = 0 and L >= 0")


def billiards_from_data(q, goal, *, truth=None, radius: float = BILLIARDS_RADIUS,
                        restitution: float = BILLIARDS_RESTITUTION,
                        horizon: float = BILLIARDS_HORIZON) -> Problem:
    """A two-ball problem from given targets and goals.

    Parameters
    ----------
    q, goal : array_like
        ``(n, 2)`` target positions (``|q| > 2r``) and goals.
    truth : array_like, optional
        ``(n, 2)`` true velocities; defaults to ``v^(0)`` (unknown). The oracle hint is
        ``known_zero`` only if the goals are reachable, which the caller asserts by passing the
        truth; without it the hint is ``multistart``.
    radius, restitution, horizon : float

    Returns
    -------
    Problem
        ``x0 = (1, 0)``, inputs ``u_i = (q_i, g_i)`` (``(n, 4)``).
    """
    _check_billiards_constants(radius, restitution, horizon)
    q = _real_array("q", q, 2)
    goal = _real_array("goal", goal, 2)
    if q.shape[1] != 2 or goal.shape[1] != 2:
        raise ValueError(f"q, goal: expected shape (n, 2), got {q.shape} and {goal.shape}")
    _same_examples(q=q, goal=goal)
    _check_targets(q, radius)
    n = q.shape[0]
    hint = _billiards_hint(n)
    if truth is None:
        tx = np.tile(np.asarray(BILLIARDS_X0), (n, 1))
        hint = dataclasses.replace(hint, method="multistart", reason="goals of unknown origin")
    else:
        tx = _real_array("truth", truth, 2)
        _same_examples(q=q, truth=tx)
    model = BilliardsModel(_frozen(q), _frozen(goal), radius, restitution, horizon)
    return _problem("billiards", BILLIARDS_X0, np.concatenate([q, goal], axis=1), model, tx, {},
                    hint, {"radius": radius, "restitution": restitution, "horizon": horizon})


def billiards_problem(n: int, seed: SeedLike, *, radius: float = BILLIARDS_RADIUS,
                      restitution: float = BILLIARDS_RESTITUTION,
                      horizon: float = BILLIARDS_HORIZON) -> Problem:
    """Generate ``n`` examples of the §7.3a two-ball problem.

    Draws, in this order, each of shape ``(n,)``: ``rho ~ U(0.4, 0.6)``, ``psi ~ U(-pi/4, pi/4)``
    (target ``q = rho (cos psi, sin psi)``), speed ``s ~ U(0.8, 1.2)``, impact parameter
    ``b ~ U(-0.8, 0.8) 2r``; the true velocity is ``v* = s (cos a*, sin a*)`` with
    ``a* = psi + arcsin(b/rho)`` and the goal ``g = P(v*)`` (noise-free, so ``L_i^* = 0``).

    Parameters
    ----------
    n : int
    seed : int or numpy.random.Generator
    radius, restitution, horizon : float
        Defaults are the spec's ``r = 0.05``, ``e = 1``, ``T = 1``.

    Returns
    -------
    Problem
        See :func:`billiards_from_data`; ``truth.extras`` holds ``rho``, ``psi``, ``speed``,
        ``b`` and ``start_hits`` (whether ``v^(0)`` hits).
    """
    n = positive_int("n", n)
    _check_billiards_constants(radius, restitution, horizon)
    if 2.0 * radius >= 0.4:
        raise ValueError(f"radius: the target prior |q| >= 0.4 needs 2r < 0.4, got r = {radius}")
    rng = _rng(seed)
    rho = rng.uniform(0.4, 0.6, n)
    psi = rng.uniform(-math.pi / 4, math.pi / 4, n)
    speed = rng.uniform(0.8, 1.2, n)
    b = rng.uniform(-0.8, 0.8, n) * 2.0 * radius
    q = rho[:, None] * np.stack([np.cos(psi), np.sin(psi)], axis=1)
    ang = psi + np.arcsin(b / rho)
    v_true = speed[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    c = _billiards_core(v_true, q, radius, restitution, horizon)
    if not np.all(c["hit"]):
        # |b| < 2r hits geometrically; a miss means t* >= T (only for a short horizon).
        raise ValueError(f"horizon: the true velocities must hit before T = {horizon}; they miss at "
                         f"examples {np.flatnonzero(~c['hit'])[:10].tolist()}")
    goal = c["P"]
    start_hits = _billiards_core(np.tile(np.asarray(BILLIARDS_X0), (n, 1)), q, radius, restitution,
                                 horizon)["hit"]
    prob = billiards_from_data(q, goal, truth=v_true, radius=radius, restitution=restitution,
                               horizon=horizon)
    extras = {"rho": rho, "psi": psi, "speed": speed, "b": b, "start_hits": start_hits}
    return dataclasses.replace(prob, truth=Truth(prob.truth.x, MappingProxyType(
        {k: _frozen(v) for k, v in extras.items()})))


# --------------------------------------------------------------------------------------------
# §7.4 logistic-map chaos

LOGISTIC_X0 = 0.6
"""BFGS default start ``theta^(0)``."""
LOGISTIC_SIGMA_Y = 0.01
"""Observation noise ``sigma_y``."""
LOGISTIC_MAX_T = 40
"""Largest horizon accepted: ``2^T theta`` is exact in float64 (power-of-two scaling), but its
spacing of representable values ``~2^(T-52)`` must stay far below the period ``pi`` of the terms
for the loss to mean anything (``T <= 40``: below ``2^-12``). The benchmark uses ``T <= 20``."""
_LOGISTIC_MODES = ("closed", "iterated")


def _horizon(T) -> int:
    T = positive_int("T", T)
    if T > LOGISTIC_MAX_T:
        raise ValueError(f"T: must be <= {LOGISTIC_MAX_T} (float64 resolution of 2^T theta), got {T}")
    return T


def _pow2(T: int) -> np.ndarray:
    return 2.0 ** np.arange(1, T + 1)


def logistic_states(theta, T: int) -> np.ndarray:
    """Closed-form states ``x_t = sin^2(2^t theta)``, ``t = 1..T`` (conjugacy, §7.4).

    Parameters
    ----------
    theta : array_like
        ``(m,)`` (real or complex).
    T : int
        Horizon, ``1 <= T <= LOGISTIC_MAX_T``.

    Returns
    -------
    numpy.ndarray
        ``(m, T)``.
    """
    T = _horizon(T)
    theta = _real_array("theta", theta, 1, allow_complex=True)
    s = np.sin(theta[:, None] * _pow2(T))
    return s * s


def logistic_states_iterated(theta, T: int) -> tuple[np.ndarray, np.ndarray]:
    """States and tangents through the iterated map ``x_{t+1} = 4 x_t (1 - x_t)``.

    Forward mode: ``x_0 = sin^2 theta``, ``z_0 = sin 2 theta`` and ``z_{t+1} = 4 (1 - 2 x_t) z_t``,
    so ``z_t = dx_t/dtheta``. In float64 the iterated states depart from the closed form like
    ``2^t eps``.

    Parameters
    ----------
    theta : array_like
        ``(m,)``.
    T : int

    Returns
    -------
    x, z : numpy.ndarray
        ``(m, T)`` states and tangents for ``t = 1..T``.
    """
    T = _horizon(T)
    theta = _real_array("theta", theta, 1, allow_complex=True)
    return _iterate(theta, T)


def _iterate(theta: np.ndarray, T: int):
    xt = np.sin(theta) ** 2
    zt = np.sin(2.0 * theta)
    xs = np.empty((theta.size, T), dtype=xt.dtype)
    zs = np.empty_like(xs)
    for t in range(T):
        xt, zt = 4.0 * xt * (1.0 - xt), 4.0 * (1.0 - 2.0 * xt) * zt
        xs[:, t], zs[:, t] = xt, zt
    return xs, zs


def logistic_gradient_forward_mode(theta, y) -> np.ndarray:
    """``L'(theta) = (2/T) sum_t (x_t - y_t) z_t`` with the iterated-map forward mode.

    Parameters
    ----------
    theta : array_like
        ``(n,)``.
    y : array_like
        ``(n, T)`` observations.

    Returns
    -------
    numpy.ndarray
        ``(n,)``.
    """
    theta = _real_array("theta", theta, 1)
    y = _real_array("y", y, 2)
    _same_examples(theta=theta, y=y)
    T = _horizon(y.shape[1])
    xs, zs = _iterate(theta, T)
    return (2.0 / T) * np.sum((xs - y) * zs, axis=1)


class LogisticModel(ForwardModel):
    """``L_i(theta) = (1/T) sum_t (x_t(theta) - y_it)^2`` (spec §7.4).

    Attributes
    ----------
    y : numpy.ndarray
        ``(n, T)`` observations.
    mode : str
        ``"closed"`` (``x_t = sin^2(2^t theta)``, the benchmark's choice) or ``"iterated"``
        (the iterated map with forward-mode tangents).
    """

    d = 1
    analytic = True

    def __init__(self, y: np.ndarray, mode: str = "closed"):
        self.y, self.mode = y, mode
        self.n, self.T = y.shape
        self._p = _pow2(self.T)

    def _rows(self, idx) -> LogisticModel:
        return LogisticModel(self.y[idx], self.mode)

    def _evaluate(self, x, want_grad):
        if self.mode == "closed":
            arg = x * self._p                         # exact: power-of-two scaling
            s = np.sin(arg)
            xs = s * s
            res = xs - self.y
            L = np.mean(res * res, axis=1)
            if not want_grad:
                return L, None
            g = (2.0 / self.T) * np.sum(res * self._p * np.sin(2.0 * arg), axis=1)
        else:
            xs, zs = _iterate(x[:, 0], self.T)
            res = xs - self.y
            L = np.mean(res * res, axis=1)
            if not want_grad:
                return L, None
            g = (2.0 / self.T) * np.sum(res * zs, axis=1)
        return L, g[:, None]

    def _gradient_scale(self, x):
        if self.mode == "closed":
            res = np.sin(x * self._p) ** 2 - self.y
            return ((2.0 / self.T) * np.sum(np.abs(res) * self._p, axis=1))[:, None]
        xs, zs = _iterate(x[:, 0], self.T)
        return ((2.0 / self.T) * np.sum(np.abs(xs - self.y) * np.abs(zs), axis=1))[:, None]

    def _loss_grid(self, grid: np.ndarray) -> np.ndarray:
        # Shared grid: L_i(theta_m) = (|x(theta_m)|^2 - 2 x(theta_m).y_i + |y_i|^2)/T as a matrix
        # product; the oracle re-evaluates its candidates with the direct form (see WaveModel).
        if self.mode != "closed":
            return super()._loss_grid(grid)
        out = np.empty((self.n, grid.size))
        yy = np.sum(self.y * self.y, axis=1)
        block = max(1, 2_000_000 // self.T)
        for s in range(0, grid.size, block):
            X = np.sin(grid[s:s + block, None] * self._p) ** 2
            out[:, s:s + block] = (np.sum(X * X, axis=1)[None, :] - 2.0 * (self.y @ X.T)
                                   + yy[:, None]) / self.T
        return out


def _logistic_hint(n: int, T: int) -> OracleHint:
    # Period pi/2 (every term sin^2(2^t theta), t >= 1, has period pi/2^t). The fastest term of L
    # is sin^4(2^T theta), period pi/2^(T+1); §7.4's spacing pi/(2^T 1000) is 1/500 of it, so the
    # hint uses the §5.1 rule (1/1000 of the shortest period), which is the stricter one.
    return OracleHint("grid", lo=_frozen(np.zeros(n)), hi=_frozen(np.full(n, math.pi / 2)),
                      min_period=math.pi / 2.0 ** (T + 1),
                      reason="L has period pi/2 in theta: [0, pi/2] contains a global minimiser")


def logistic_from_data(y, *, truth=None, mode: str = "closed") -> Problem:
    """A logistic problem from given observations ``y`` of shape ``(n, T)``.

    Parameters
    ----------
    y : array_like
        ``(n, T)`` observations of ``x_1..x_T``.
    truth : array_like, optional
        ``(n,)`` true ``theta``; defaults to ``theta^(0)``.
    mode : str
        ``"closed"`` or ``"iterated"`` (see :class:`LogisticModel`).

    Returns
    -------
    Problem
        ``x0 = 0.6``, inputs ``u_i = 2 y_i - 1`` (``(n, T)``), oracle hint: grid over
        ``[0, pi/2]``.
    """
    if mode not in _LOGISTIC_MODES:
        raise ValueError(f"mode: must be one of {list(_LOGISTIC_MODES)}, got {mode!r}")
    y = _real_array("y", y, 2)
    T = _horizon(y.shape[1])
    tx = np.full(y.shape[0], LOGISTIC_X0) if truth is None else _real_array("truth", truth, 1)
    _same_examples(y=y, truth=tx)
    return _problem("logistic", [LOGISTIC_X0], 2.0 * y - 1.0, LogisticModel(_frozen(y), mode),
                    tx[:, None], {}, _logistic_hint(y.shape[0], T), {"T": T, "mode": mode})


def logistic_problem(n: int, T: int, seed: SeedLike, *, sigma_y: float = LOGISTIC_SIGMA_Y,
                     mode: str = "closed") -> Problem:
    """Generate ``n`` examples of the §7.4 logistic-map problem with horizon ``T``.

    Draws, in this order: ``x0* ~ U(0.05, 0.95)`` of shape ``(n,)``, then ``eps ~ N(0, I)`` of
    shape ``(n, T)``; ``theta* = arcsin(sqrt(x0*))`` and ``y_t = sin^2(2^t theta*) + sigma_y eps_t``.

    Parameters
    ----------
    n : int
    T : int
        Horizon, ``1 <= T <= LOGISTIC_MAX_T``.
    seed : int or numpy.random.Generator
    sigma_y : float
        Noise level (spec: 0.01), ``>= 0``.
    mode : str
        ``"closed"`` (default) or ``"iterated"``.

    Returns
    -------
    Problem
        See :func:`logistic_from_data`; ``truth.extras`` holds ``x0`` and ``noise``.
    """
    n = positive_int("n", n)
    T = _horizon(T)
    sigma_y = real("sigma_y", sigma_y, minimum=0.0)
    if mode not in _LOGISTIC_MODES:
        raise ValueError(f"mode: must be one of {list(_LOGISTIC_MODES)}, got {mode!r}")
    rng = _rng(seed)
    x0 = rng.uniform(0.05, 0.95, n)
    eps = rng.standard_normal((n, T))
    theta = np.arcsin(np.sqrt(x0))
    y = logistic_states(theta, T) + sigma_y * eps
    prob = logistic_from_data(y, truth=theta, mode=mode)
    return dataclasses.replace(prob, truth=Truth(prob.truth.x, MappingProxyType(
        {"x0": _frozen(x0), "noise": _frozen(eps)})), params=MappingProxyType(
        {"T": T, "mode": mode, "sigma_y": sigma_y}))
