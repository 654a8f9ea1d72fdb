"""JPO training claims: the MLP's hand-written backprop, the output-bias identity and the absence of
ground truth from training (spec ``jpo.md`` §2.3, §4, §9 rows ``jpo.mlp_backprop_check``,
``jpo.bias_gradient_is_mean_example_gradient``, ``jpo.no_ground_truth_in_training``).

The claims run :mod:`dynamics.joint` on a small synthetic problem defined here,
:class:`RippleToyProblem` (quadratic plus ripple, with its own ground-truth array), so that they depend
on no other family module.

Tolerances, and where the allowances come from:

* Central differences (spec §8): ``h = 1e-6 max(1, |theta_k|)``, relative ``1e-6`` of the backprop
  value, plus the rounding of the difference quotient ``(delta(theta+) + delta(theta-))/(theta+ - theta-)``
  where ``delta`` is a first-order running-error bound of the float64 evaluation of the differenced
  function (:func:`output_rounding` for the network, :meth:`RippleToyProblem.loss_rounding` for the
  loss, ``gamma_m = m u/(1 - m u)`` for every sum of ``m`` terms), evaluated at both perturbed points.
  The truncation error ``h^2 f'''/6`` is left to the relative ``1e-6`` budget of the catalogue.
* Bias identity: relative ``1e-13`` of ``S_j = (1/n) sum_i |C(g_i)_j|``, the scale of the rounding of
  the two summation orders (``(n + 2) u S_j`` at most, below ``1e-13 S_j`` for ``n <= 448``: the
  hypothesis ``summation_rounding``). Clipped gradients against an independent reference clip: exact
  for ``elem``; ``(d + 6) u |g_ik|`` for ``norm`` (norm, quotient and product roundings of both).
* No ground truth: bitwise equality, no allowance.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import sys
import types
from collections.abc import Callable

import numpy as np

from dynamics import joint
from dynamics._validate import as_matrix, choice, positive_int, real
from dynamics.errors import DivergenceError
from verification.engine import Evidence, Hypothesis, Kind, claim
from verification.instances import spec_type

REF = "docs/theory/jpo.md#jpo-training"
UNIT_ROUNDOFF = 2.0 ** -53
FD_STEP = 1e-6
"""Spec §8: central differences with ``h = 1e-6 max(1, |theta_k|)``."""
FD_RTOL = 1e-6
"""Catalogue row jpo.mlp_backprop_check: relative ``1e-6``."""
BIAS_RTOL = 1e-13
"""Catalogue row jpo.bias_gradient_is_mean_example_gradient: relative ``1e-13``."""
LIBM_ULPS = 4.0
"""Accuracy allowed for NumPy's ``tanh``/``sin``: a few ulps of the result (glibc and NumPy's SIMD
kernels are within 1-2 ulp; 4 leaves headroom)."""
BACKPROP_MAX_SIZES = (8, 16, 16, 3)
BACKPROP_MAX_N = 8
MAX_SUMMATION_N = 448
"""``(n + 2) u <= 1e-13`` iff ``n <= 448``: beyond, the worst-case summation rounding alone can exceed
the catalogue's ``1e-13``."""

# Spec §8: seeds of a claim are keyed by its 0-based index k in the §9 table.
_CATALOGUE_INDEX = {"jpo.mlp_backprop_check": 1, "jpo.bias_gradient_is_mean_example_gradient": 2,
                    "jpo.no_ground_truth_in_training": 3}
_SEED_BASE = 20240815


def _rng(claim_id: str, seed: int, stream: int) -> np.random.Generator:
    """Stream ``stream`` of instance ``seed`` of a claim: ``SeedSequence([20240815 + k, seed, stream])``."""
    return np.random.default_rng(np.random.SeedSequence(
        [_SEED_BASE + _CATALOGUE_INDEX[claim_id], int(seed), int(stream)]))


def _gamma(m: int) -> float:
    """``gamma_m = m u/(1 - m u)``: the relative rounding of a sum of ``m`` terms."""
    mu = m * UNIT_ROUNDOFF
    return mu / (1.0 - mu)


# --------------------------------------------------------------------------------------------
# a local synthetic problem: quadratic plus ripple


def ripple_toy_loss(observations, phases, amp: float, omega: float) -> joint.LossAndGrad:
    """Per-example losses ``L_i(x) = 1/2 ||x - y_i||^2 + amp sum_j sin(omega x_j + phi_ij)``.

    The returned callback closes over copies of ``observations`` and ``phases`` only.

    Parameters
    ----------
    observations : array_like, shape (n, d)
        ``y_i``.
    phases : array_like, shape (n, d)
        Known quantities ``phi_i``.
    amp, omega : float
        Ripple amplitude ``>= 0`` and frequency ``> 0``.

    Returns
    -------
    callable
        ``x (n, d) -> (losses (n,), grads (n, d))``, ``g_i = x - y_i + amp omega cos(omega x + phi_i)``.

    Raises
    ------
    ValueError
        If the arrays are not finite, their shapes differ, or a parameter is out of range.
    """
    y = as_matrix("observations", observations).copy()
    phi = as_matrix("phases", phases).copy()
    if phi.shape != y.shape:
        raise ValueError(f"phases: expected shape {y.shape} (that of observations), got {phi.shape}")
    amp = real("amp", amp, minimum=0.0)
    omega = real("omega", omega, minimum=0.0, strict=True)

    def loss_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = x - y
        arg = omega * x + phi
        losses = 0.5 * np.sum(r * r, axis=1) + amp * np.sum(np.sin(arg), axis=1)
        grads = r + (amp * omega) * np.cos(arg)
        return losses, grads

    return loss_and_grad


@dataclasses.dataclass(frozen=True, eq=False)
class RippleToyProblem:
    """``n`` quadratic-plus-ripple inverse problems with a ground truth (for the claims and tests).

    ``truth`` (``x*_i ~ U(-1, 1)^d``) is used only to generate ``observations = truth + noise N(0, 1)``;
    the network input is ``u_i = y_i``, the loss is :func:`ripple_toy_loss` of ``(y, phases)``.

    Attributes
    ----------
    truth, observations, phases : numpy.ndarray, shape (n, d)
    amp, omega : float
    """

    truth: np.ndarray
    observations: np.ndarray
    phases: np.ndarray
    amp: float
    omega: float

    def __post_init__(self):
        obs = as_matrix("observations", self.observations)
        for name in ("truth", "phases"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != obs.shape:
                raise ValueError(f"{name}: expected shape {obs.shape} (that of observations), "
                                 f"got {arr.shape}")
        as_matrix("phases", self.phases)
        real("amp", self.amp, minimum=0.0)
        real("omega", self.omega, minimum=0.0, strict=True)

    @property
    def n(self) -> int:
        return int(self.observations.shape[0])

    @property
    def d(self) -> int:
        return int(self.observations.shape[1])

    def inputs(self) -> np.ndarray:
        """Network inputs ``u_i = y_i`` (a copy)."""
        return np.array(self.observations, dtype=np.float64)

    def loss_and_grad(self) -> joint.LossAndGrad:
        """The training callback; built from observations and phases only."""
        return ripple_toy_loss(self.observations, self.phases, self.amp, self.omega)

    def loss_rounding(self, x: np.ndarray) -> np.ndarray:
        """First-order bound on the float64 rounding of the callback's ``L_i(x)``, shape ``(n,)``.

        ``r = x - y`` carries ``u |r|``, ``r^2`` then ``3u r^2``; ``omega x + phi`` carries
        ``gamma_2 (omega |x| + |phi|)``, times ``|cos| <= 1``, plus the ``sin`` rounding; each of the two
        sums over ``d`` terms adds ``gamma_d`` of its absolute sum, the final ``+`` one ``u``.
        """
        d = self.d
        r = x - self.observations
        quad = 0.5 * np.sum(r * r, axis=1)
        arg_err = _gamma(2) * (self.omega * np.abs(x) + np.abs(self.phases))
        ripple_abs = self.amp * np.sum(np.abs(np.sin(self.omega * x + self.phases)), axis=1)
        ripple_err = self.amp * np.sum(arg_err + LIBM_ULPS * UNIT_ROUNDOFF, axis=1) \
            + (_gamma(d) + 2 * UNIT_ROUNDOFF) * ripple_abs
        quad_err = (_gamma(d) + 3 * UNIT_ROUNDOFF) * quad
        return quad_err + ripple_err + UNIT_ROUNDOFF * (quad + ripple_abs)

    def leaky_loss_and_grad(self) -> joint.LossAndGrad:
        """A deliberately wrong callback that reads ``truth`` (the negative control of
        ``jpo.no_ground_truth_in_training``): the toy loss plus ``1/2 ||x - x*_i||^2``."""
        base = ripple_toy_loss(self.observations, self.phases, self.amp, self.omega)

        def leaky(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            losses, grads = base(x)
            r = x - self.truth
            return losses + 0.5 * np.sum(r * r, axis=1), grads + r

        return leaky


def make_ripple_toy(n: int, d: int, seed: int, *, amp: float = 0.5, omega: float = 6.0,
                    noise: float = 0.1) -> RippleToyProblem:
    """Generate a :class:`RippleToyProblem` from ``default_rng(SeedSequence([seed, 4004]))``.

    Parameters
    ----------
    n, d : int
        Examples and unknowns per example.
    seed : int
        Data seed ``s``.
    amp, omega : float
        Ripple amplitude ``>= 0`` and frequency ``> 0``.
    noise : float
        Observation noise standard deviation ``>= 0``.
    """
    n, d = positive_int("n", n), positive_int("d", d)
    seed = positive_int("seed", seed, minimum=0)
    noise = real("noise", noise, minimum=0.0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4004]))
    truth = rng.uniform(-1.0, 1.0, (n, d))
    observations = truth + noise * rng.standard_normal((n, d))
    phases = rng.uniform(0.0, 2.0 * math.pi, (n, d))
    return RippleToyProblem(truth=truth, observations=observations, phases=phases, amp=amp, omega=omega)


# --------------------------------------------------------------------------------------------
# rounding of the network output


def output_rounding(mlp: joint.MLP, theta: np.ndarray, inputs: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """First-order running-error bound ``E`` on ``|fl(N_theta(u_i)) - N_theta(u_i)|``, shape ``(n, d)``.

    Layer by layer (exact inputs): ``a = W h + b`` with ``k = fan_in`` costs ``gamma_{k+1} (|W||h| + |b|)``
    plus the propagated ``|W| E_prev``; ``tanh`` is 1-Lipschitz and adds a few ulps of ``|h|``; the output
    adds ``x0`` (``gamma_{k+2}`` of ``|W||h| + |b| + |x0|``).
    """
    h = inputs
    E = np.zeros_like(inputs)
    layers = mlp.unflatten(theta)
    for W, b in layers[:-1]:
        absW = np.abs(W)
        a = h @ W.T + b
        mag = np.abs(h) @ absW.T + np.abs(b)
        h = np.tanh(a)
        E = _gamma(W.shape[1] + 1) * mag + E @ absW.T + LIBM_ULPS * UNIT_ROUNDOFF * np.abs(h)
    W, b = layers[-1]
    absW = np.abs(W)
    mag = np.abs(h) @ absW.T + np.abs(b) + np.abs(x0)
    return _gamma(W.shape[1] + 2) * mag + E @ absW.T


# --------------------------------------------------------------------------------------------
# instance specs


def _check_sizes(sizes) -> tuple[int, ...]:
    if not isinstance(sizes, tuple) or len(sizes) < 2:
        raise ValueError(f"sizes: expected a tuple of at least two layer sizes, got {sizes!r}")
    return tuple(positive_int("sizes", s) for s in sizes)


@spec_type
@dataclasses.dataclass(frozen=True)
class JPONetworkSpec:
    """An MLP at a random parameter point on a :class:`RippleToyProblem` (the gradient claims).

    With ``train_steps = 0``, ``theta`` is the ``init`` draw (with ``kappa_out``) with every weight
    multiplied by ``weight_scale`` and biases ``N(0, bias_scale^2)`` (a random point, not only an
    initialization); with ``train_steps > 0`` it is the network of
    :func:`dynamics.joint.train_jpo` (``seed``, ``init``, ``kappa_out``, ``clip``) after that many steps
    (a trained point). Inputs: the toy's observations in the first ``min(d_in, d)`` columns, ``N(0, 1)``
    in the others; ``x0 ~ N(0, I_d)``.

    Attributes
    ----------
    sizes : tuple of int
        ``(d_in, h_1, ..., d)``; the toy problem has ``d = sizes[-1]`` unknowns per example.
    n : int
        Examples.
    clip : str
        ``none``, ``elem`` or ``norm``.
    clip_c : float or None
        Threshold; ``None`` takes the default median rule at the evaluated point.
    init : str
    kappa_out, weight_scale, bias_scale : float
    amp, omega : float
        The toy loss.
    train_steps : int
        ``0``: a random point; ``> 0``: the network after that many training steps.
    n_coords : int
        Weight coordinates checked by central differences.
    seed : int
    """

    sizes: tuple = (2, 8, 8, 3)
    n: int = 6
    clip: str = "none"
    clip_c: float | None = None
    init: str = "lecun"
    kappa_out: float = 1.0
    weight_scale: float = 1.0
    bias_scale: float = 0.5
    amp: float = 0.5
    omega: float = 3.0
    train_steps: int = 0
    n_coords: int = 20
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "sizes", _check_sizes(self.sizes))
        positive_int("n", self.n)
        joint.Clip(self.clip, self.clip_c)
        choice("init", self.init, joint.INIT_SCHEMES)
        real("kappa_out", self.kappa_out, minimum=0.0)
        real("weight_scale", self.weight_scale, minimum=0.0)
        real("bias_scale", self.bias_scale, minimum=0.0)
        real("amp", self.amp, minimum=0.0)
        real("omega", self.omega, minimum=0.0, strict=True)
        positive_int("train_steps", self.train_steps, minimum=0)
        positive_int("n_coords", self.n_coords)
        positive_int("seed", self.seed, minimum=0)


@spec_type
@dataclasses.dataclass(frozen=True)
class JPOTruthSpec:
    """A JPO training run on a :class:`RippleToyProblem` whose truth array is corrupted afterwards.

    Attributes
    ----------
    n, d : int
    hidden : tuple of int
    steps : int
    clip : str
        Any :meth:`dynamics.joint.Clip.parse` string.
    init : str
    kappa_out, amp, omega : float
    seed : int
        The data seed ``s`` (network seed ``1000 + s``).
    """

    n: int = 32
    d: int = 1
    hidden: tuple = (16, 16)
    steps: int = 200
    clip: str = "none"
    init: str = "lecun"
    kappa_out: float = 1.0
    amp: float = 0.5
    omega: float = 6.0
    seed: int = 0

    def __post_init__(self):
        positive_int("n", self.n)
        positive_int("d", self.d)
        if not isinstance(self.hidden, tuple):
            raise ValueError(f"hidden: expected a tuple, got {self.hidden!r}")
        for h in self.hidden:
            positive_int("hidden", h)
        positive_int("steps", self.steps)
        joint.Clip.parse(self.clip)
        choice("init", self.init, joint.INIT_SCHEMES)
        real("kappa_out", self.kappa_out, minimum=0.0)
        real("amp", self.amp, minimum=0.0)
        real("omega", self.omega, minimum=0.0, strict=True)
        positive_int("seed", self.seed, minimum=0)


@dataclasses.dataclass
class _NetworkCase:
    spec: JPONetworkSpec
    mlp: joint.MLP
    theta: np.ndarray
    inputs: np.ndarray
    x0: np.ndarray
    problem: RippleToyProblem
    loss_and_grad: joint.LossAndGrad
    clip: joint.Clip


def network_case(spec: JPONetworkSpec, claim_id: str) -> _NetworkCase:
    """Materialize a :class:`JPONetworkSpec` (deterministic in ``spec`` and the claim)."""
    mlp = joint.MLP(spec.sizes)
    d_in, d = mlp.d_in, mlp.d_out
    problem = make_ripple_toy(spec.n, d, spec.seed, amp=spec.amp, omega=spec.omega)
    rng = _rng(claim_id, spec.seed, 0)
    inputs = rng.standard_normal((spec.n, d_in))
    inputs[:, :min(d_in, d)] = problem.observations[:, :min(d_in, d)]
    x0 = rng.standard_normal(d)
    clip = joint.Clip(spec.clip, spec.clip_c)
    loss_and_grad = problem.loss_and_grad()
    if spec.train_steps > 0:
        theta = joint.train_jpo(inputs, loss_and_grad, x0, sizes=mlp.sizes, steps=spec.train_steps,
                                clip=clip, init=spec.init, kappa_out=spec.kappa_out, seed=spec.seed,
                                record_every=spec.train_steps).theta
    else:
        theta = mlp.init(rng, init=spec.init, kappa_out=spec.kappa_out)
        for name, sl in mlp.block_slices():
            if name.startswith("W"):
                theta[sl] *= spec.weight_scale
            else:
                theta[sl] = spec.bias_scale * rng.standard_normal(sl.stop - sl.start)
    return _NetworkCase(spec, mlp, theta, inputs, x0, problem, loss_and_grad, clip)


# --------------------------------------------------------------------------------------------
# jpo.mlp_backprop_check


def _small_network(spec: JPONetworkSpec) -> bool:
    return (len(spec.sizes) == len(BACKPROP_MAX_SIZES)
            and all(s <= m for s, m in zip(spec.sizes, BACKPROP_MAX_SIZES, strict=True))
            and spec.n <= BACKPROP_MAX_N)


SMALL_NETWORK = Hypothesis("small_network", "sizes <= [8, 16, 16, 3] componentwise, n <= 8 (catalogue row)",
                           _small_network)


def _coordinates(mlp: joint.MLP, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct coordinates: one per parameter block first (so every layer's ``W`` and ``b``
    is checked), the rest uniformly among the others."""
    count = min(count, mlp.n_params)
    firsts = [int(rng.integers(sl.start, sl.stop)) for _, sl in mlp.block_slices()][:count]
    rest = np.setdiff1d(np.arange(mlp.n_params), firsts)
    extra = rng.choice(rest, size=count - len(firsts), replace=False) if count > len(firsts) else []
    return np.concatenate([np.array(firsts, dtype=np.int64), np.asarray(extra, dtype=np.int64)])


def _central_difference(f: Callable[[np.ndarray], tuple[float, float]], theta: np.ndarray, k: int
                        ) -> tuple[float, float]:
    """Central difference of ``f`` along coordinate ``k`` and its rounding allowance.

    ``f(theta) -> (value, rounding bound of value)``. The step actually taken is
    ``theta+ - theta-`` (exact in float64 for ``h << |theta_k|`` by Sterbenz, and otherwise exact as a
    difference of nearby doubles), so the representation error of ``theta_k +- h`` does not enter.
    """
    h = FD_STEP * max(1.0, abs(float(theta[k])))
    tp, tm = theta.copy(), theta.copy()
    tp[k] += h
    tm[k] -= h
    step = float(tp[k] - tm[k])
    fp, dp = f(tp)
    fm, dm = f(tm)
    fd = (fp - fm) / step
    # the subtraction and the division add one rounding each
    return fd, (dp + dm) / step + 2 * UNIT_ROUNDOFF * abs(fd)


@claim("jpo.mlp_backprop_check", provenance="[derived]", kind=Kind.IDENTITY,
       statement="hand backprop of the MLP equals grad_theta J (clip none: central differences of J) "
                 "and, for every clip variant, equals (1/n) sum_i (dN(u_i)/dtheta)^T C(g_i) (central "
                 "differences of theta -> sum_i <v_i, N_theta(u_i)> with v = C(g)/n frozen at theta: this "
                 "form needs no distance from the clip boundaries); 20 coordinates, h = 1e-6 "
                 "max(1, |theta_k|), rel 1e-6 plus the derived float64 rounding of the difference quotient",
       hypotheses=[SMALL_NETWORK],
       instances={"quick": [JPONetworkSpec(),
                            JPONetworkSpec(clip="elem", seed=1),
                            JPONetworkSpec(clip="norm", sizes=(8, 16, 16, 3), n=8, init="he", seed=2),
                            JPONetworkSpec(clip="elem", clip_c=0.3, sizes=(1, 4, 3, 1), n=3, seed=3,
                                           weight_scale=3.0),
                            JPONetworkSpec(clip="norm", clip_c=2.0, sizes=(3, 5, 7, 2), n=8, init="glorot",
                                           kappa_out=0.1, seed=4),
                            JPONetworkSpec(sizes=(1, 16, 16, 1), n=8, train_steps=50, seed=5)],
                  "paper": [JPONetworkSpec(sizes=sz, n=n, clip=c, init=i, weight_scale=w, seed=s,
                                           train_steps=t)
                            for s, (sz, n, c, i, w, t) in enumerate(
                                [((8, 16, 16, 3), 8, "none", "lecun", 1.0, 0),
                                 ((8, 16, 16, 3), 8, "elem", "he", 2.0, 0),
                                 ((8, 16, 16, 3), 8, "norm", "glorot", 0.5, 0),
                                 ((1, 16, 16, 1), 8, "none", "lecun", 1.0, 200),
                                 ((4, 16, 16, 2), 8, "elem", "lecun", 1.0, 200),
                                 ((2, 1, 1, 1), 1, "norm", "lecun", 1.0, 0),
                                 ((5, 3, 9, 3), 7, "none", "he", 4.0, 0)])]},
       reference=REF)
def mlp_backprop_check(spec: JPONetworkSpec) -> Evidence:
    cid = "jpo.mlp_backprop_check"
    case = network_case(spec, cid)
    mlp, theta, inputs, x0, problem = case.mlp, case.theta, case.inputs, case.x0, case.problem
    n = spec.n
    jg = joint.joint_gradient(mlp, theta, inputs, x0, case.loss_and_grad, case.clip)
    v = jg.clipped_grads / n

    def objective(t: np.ndarray) -> tuple[float, float]:
        x = mlp.forward(t, inputs, x0)
        losses, grads = case.loss_and_grad(x)
        E = output_rounding(mlp, t, inputs, x0)
        # first order: |L(x~) - L(x)| <= |g| . E, plus the loss's own rounding and the mean over n
        delta = (np.sum(np.abs(grads) * E) + np.sum(problem.loss_rounding(x))) / n \
            + _gamma(n) * float(np.mean(np.abs(losses)))
        return float(np.mean(losses)), float(delta)

    def surrogate(t: np.ndarray) -> tuple[float, float]:
        x = mlp.forward(t, inputs, x0)
        E = output_rounding(mlp, t, inputs, x0)
        delta = np.sum(np.abs(v) * E) + _gamma(x.size + 1) * np.sum(np.abs(v * x))
        return float(np.sum(v * x)), float(delta)

    coords = _coordinates(mlp, spec.n_coords, _rng(cid, spec.seed, 1))
    blocks = mlp.block_slices()

    def block_of(k: int) -> str:
        return next(name for name, sl in blocks if sl.start <= k < sl.stop)

    ev = Evidence(metrics={"n_params": mlp.n_params, "clip": str(jg.clip), "mean_loss": jg.mean_loss,
                           "coordinates": [int(k) for k in coords]})
    worst = 0.0
    for k in (int(k) for k in coords):
        bp = float(jg.grad[k])
        checks = [("(dN/dtheta)^T C(g)/n, " + str(jg.clip), surrogate)]
        if case.clip.kind == "none":
            checks.insert(0, ("dJ/dtheta", objective))
        for what, f in checks:
            fd, allowance = _central_difference(f, theta, k)
            c = ev.compare(f"backprop = {what} ({block_of(k)}, coordinate {k})", abs(fd - bp),
                           FD_RTOL * abs(bp), allowance, finite_difference=fd, backprop=bp)
            worst = max(worst, c.observed / max(c.bound + c.allowance, np.finfo(float).tiny))
    ev.metrics["worst_ratio"] = worst
    return ev


# --------------------------------------------------------------------------------------------
# jpo.bias_gradient_is_mean_example_gradient


SUMMATION_ROUNDING = Hypothesis(
    "summation_rounding", f"(n + 2) u <= 1e-13, i.e. n <= {MAX_SUMMATION_N}: the catalogue's relative 1e-13 "
    "covers the worst-case rounding of the two summation orders", lambda sp: sp.n <= MAX_SUMMATION_N)


def reference_clip(grads: np.ndarray, clip: joint.Clip) -> np.ndarray:
    """An independent per-example implementation of spec §4.3's ``C`` (loops, ``math.fsum``)."""
    out = np.array(grads, dtype=np.float64)
    if clip.kind == "none":
        return out
    c = float(clip.c)
    for i, row in enumerate(out):
        if clip.kind == "elem":
            out[i] = [c if g > c else (-c if g < -c else g) for g in row]
        else:
            norm = math.sqrt(math.fsum(float(g) * float(g) for g in row))
            if norm > c:
                out[i] = row * (c / norm)
    return out


@claim("jpo.bias_gradient_is_mean_example_gradient", provenance="[derived]", kind=Kind.IDENTITY,
       statement="the output-bias gradient is the mean clipped example gradient, grad_{b_L} J = (1/n) sum_i "
                 "C(g_i), for any network and clip variant (rel 1e-13 of (1/n) sum_i |C(g_i)|); also "
                 "sum_i (dx_i/db_L)^T v_i = sum_i v_i for a random cotangent v, and the clipped gradients "
                 "equal an independent implementation of C",
       hypotheses=[SUMMATION_ROUNDING],
       instances={"quick": [JPONetworkSpec(),
                            JPONetworkSpec(clip="elem", seed=1, weight_scale=4.0),
                            JPONetworkSpec(clip="norm", seed=2, kappa_out=0.0),
                            JPONetworkSpec(sizes=(1, 32, 32, 1), n=256, clip="norm", seed=3),
                            JPONetworkSpec(sizes=(4, 64, 64, 2), n=256, clip="elem", clip_c=1.0, seed=4),
                            JPONetworkSpec(sizes=(128, 64, 64, 1), n=64, init="he", kappa_out=0.1, seed=5),
                            JPONetworkSpec(sizes=(2, 3, 1), n=17, clip="norm", clip_c=0.05, seed=6),
                            JPONetworkSpec(sizes=(1, 32, 32, 1), n=64, clip="elem", train_steps=100, seed=7)],
                  "paper": [JPONetworkSpec(sizes=sz, n=n, clip=c, weight_scale=w, train_steps=t, seed=s)
                            for s, (sz, n, c, w, t) in enumerate(
                                [((1, 32, 32, 1), 256, "none", 1.0, 1000),
                                 ((1, 32, 32, 1), 256, "elem", 1.0, 1000),
                                 ((1, 32, 32, 1), 256, "norm", 1.0, 1000),
                                 ((4, 64, 64, 2), 256, "norm", 3.0, 0),
                                 ((128, 64, 64, 1), 256, "elem", 0.3, 0),
                                 ((5, 64, 64, 1), 448, "none", 1.0, 0)])]},
       reference=REF)
def bias_gradient_is_mean_example_gradient(spec: JPONetworkSpec) -> Evidence:
    cid = "jpo.bias_gradient_is_mean_example_gradient"
    case = network_case(spec, cid)
    mlp, n = case.mlp, spec.n
    jg = joint.joint_gradient(mlp, case.theta, case.inputs, case.x0, case.loss_and_grad, case.clip)
    d = mlp.d_out
    b_slice = mlp.block_slices()[-1][1]
    ev = Evidence(metrics={"clip": str(jg.clip), "n_params": mlp.n_params})

    ref = reference_clip(jg.example_grads, jg.clip)
    # norm: the training code's (g/||g||) c carries <= (d/2 + 3) u relative (norm of d squares, sqrt,
    # quotient, product), the reference g (c/||g||) <= 3.5 u; (d + 6) u covers both
    clip_tol = 0.0 if jg.clip.kind != "norm" else (d + 6) * UNIT_ROUNDOFF
    ev.compare(f"C(g_i) = reference {jg.clip} (max |diff| - (d + 6) u |g| for norm)",
               float(np.max(np.abs(jg.clipped_grads - ref) - clip_tol * np.abs(jg.example_grads))), 0.0)

    mean_ref = np.sum(ref, axis=0) / n
    scale = np.sum(np.abs(ref), axis=0) / n
    # the rounding of the two sums (and of the clip difference above) is what the 1e-13 covers
    diff = np.abs(jg.grad[b_slice] - mean_ref) - clip_tol * np.sum(np.abs(jg.example_grads), axis=0) / n
    for j in range(d):
        ev.compare(f"grad_b_L[{j}] = mean_i C(g_i)[{j}]", float(max(diff[j], 0.0)),
                   BIAS_RTOL * float(scale[j]), scale=float(scale[j]), value=float(mean_ref[j]))
    cot = _rng(cid, spec.seed, 2).standard_normal((n, d))
    vj = mlp.vjp(case.theta, case.inputs, case.x0, cot)[b_slice]
    vscale = np.sum(np.abs(cot), axis=0)
    vdiff = np.abs(vj - np.sum(cot, axis=0))
    ev.compare("dx_i/db_L = I: vjp_b_L(v) = sum_i v_i (max over components, relative to sum_i |v_i|)",
               float(np.max(vdiff / vscale)), BIAS_RTOL)
    ev.metrics["max_relative_error"] = float(np.max(diff / np.where(scale > 0, scale, 1.0)))
    return ev


# --------------------------------------------------------------------------------------------
# jpo.no_ground_truth_in_training


def _module_dict_ids() -> set[int]:
    return {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)}


def reachable_arrays(root, *, limit: int = 100_000) -> list[np.ndarray]:
    """The NumPy arrays reachable from ``root`` through the garbage collector's reference graph.

    Modules, classes and module namespaces (a function's ``__globals__``) are not followed: they reach
    everything. Arrays are not GC containers, so a view's base is not followed either; callers compare
    memory (:func:`numpy.shares_memory`), which catches views.

    Raises
    ------
    ValueError
        If more than ``limit`` objects are reachable (the walk escaped into the interpreter).
    """
    skip = _module_dict_ids()
    seen: set[int] = set()
    arrays: list[np.ndarray] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type) or id(obj) in skip:
            continue
        seen.add(id(obj))
        if len(seen) > limit:
            raise ValueError(f"root: more than {limit} objects reachable; the walk escaped")
        if isinstance(obj, np.ndarray):
            arrays.append(obj)
            if obj.base is not None:
                stack.append(obj.base)
            continue
        stack.extend(gc.get_referents(obj))
    return arrays


def _reaches(root, target: np.ndarray) -> bool:
    return any(np.shares_memory(a, target) for a in reachable_arrays(root))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _train_truth_spec(spec: JPOTruthSpec, problem: RippleToyProblem, loss=None) -> joint.JPOResult:
    return joint.train_jpo(problem.inputs(), loss if loss is not None else problem.loss_and_grad(),
                           np.zeros(spec.d), hidden=spec.hidden, steps=spec.steps, clip=spec.clip,
                           init=spec.init, kappa_out=spec.kappa_out, seed=spec.seed,
                           record_every=max(1, spec.steps // 10))


@claim("jpo.no_ground_truth_in_training", provenance="[prior version]", kind=Kind.IDENTITY,
       statement="the trained weights do not depend on the ground truth: permuting, replacing, offsetting or "
                 "NaN-corrupting the truth array after data generation leaves the trained weights, outputs "
                 "and loss history bitwise equal, and no array sharing memory with the truth is reachable "
                 "from the training callback or its inputs (spec §4.4); a callback that reads the truth "
                 "is detected by both checks (negative control)",
       instances={"quick": [JPOTruthSpec(), JPOTruthSpec(clip="elem", seed=1),
                            JPOTruthSpec(n=16, d=2, hidden=(8, 8), clip="norm", init="he", seed=2)],
                  "paper": [JPOTruthSpec(n=256, d=1, hidden=(32, 32), steps=3000, clip=c, seed=s)
                            for s, c in enumerate(["none", "elem", "norm", "elem(1.0)"])]
                  + [JPOTruthSpec(n=256, d=2, hidden=(64, 64), steps=1000, kappa_out=0.1, seed=4)]},
       reference=REF)
def no_ground_truth_in_training(spec: JPOTruthSpec) -> Evidence:
    cid = "jpo.no_ground_truth_in_training"
    problem = make_ripple_toy(spec.n, spec.d, spec.seed, amp=spec.amp, omega=spec.omega)
    ev = Evidence()
    loss = problem.loss_and_grad()
    inputs = problem.inputs()
    ev.compare("no array reachable from loss_and_grad shares memory with the truth",
               float(_reaches(loss, problem.truth)), 0.0)
    ev.compare("inputs do not share memory with the truth",
               float(np.shares_memory(inputs, problem.truth)), 0.0)
    base = _train_truth_spec(spec, problem)
    rng = _rng(cid, spec.seed, 0)
    truth0 = problem.truth.copy()

    def corrupt_in_place(how: str) -> None:
        t = problem.truth
        if how == "permuted rows":
            t[...] = t[rng.permutation(t.shape[0])]
        elif how == "offset by 1e3":
            t += 1e3
        elif how == "NaN":
            t[...] = np.nan
        else:  # "replaced": a new array object with other values
            object.__setattr__(problem, "truth", rng.standard_normal(t.shape))

    for how in ("permuted rows", "offset by 1e3", "NaN", "replaced"):
        corrupt_in_place(how)
        fields = ("theta", "outputs", "history_loss", "final_losses")
        try:
            run = _train_truth_spec(spec, problem)
            mismatches, error = sum(not _same_bits(getattr(base, f), getattr(run, f)) for f in fields), ""
        except (ValueError, DivergenceError) as exc:  # training that fails only now read the truth
            mismatches, error = len(fields), f"{type(exc).__name__}: {exc}"
        ev.compare(f"trained weights, outputs, history bitwise equal after truth {how}",
                   float(mismatches), 0.0, error=error)
        object.__setattr__(problem, "truth", truth0.copy())

    # Negative control: the same checks on a callback that reads the truth must detect it.
    leaky = problem.leaky_loss_and_grad()
    ev.compare("control: the truth is reachable from a leaking callback",
               float(not _reaches(leaky, problem.truth)), 0.0)
    ref = _train_truth_spec(spec, problem, leaky)
    problem.truth[...] = problem.truth[rng.permutation(spec.n)] + 0.25
    try:
        rerun = _train_truth_spec(spec, problem, problem.leaky_loss_and_grad())
        changed = not _same_bits(ref.theta, rerun.theta)
    except (ValueError, DivergenceError):
        changed = True
    ev.compare("control: a leaking callback's trained weights change with the truth", float(not changed), 0.0)
    ev.metrics.update({"final_mean_loss": base.mean_loss, "clip": str(base.clip),
                       "evaluations": base.evaluations})
    return ev
