"""Figure-1a claim: weight decay makes the trained deep linear network robust to test-time noise.

Protocol (``docs/theory/deep_linear.md`` section 10.1): for each seed, train the same data from the
same initialization (common random numbers: one batched run of the spec and its ``lam = 0``
partner) once without weight decay (``lambda = 0``) and once with ``lambda = 1``, both at the
weight-decay run's ``eta = 4 eta_hat`` (``gn_bound``; one ``eta`` for all ``lambda`` of a seed).
The test metric is the exact D5 relative test RMSE

    err(nu) = ((||M A R - R||_F^2 + sigma^2 ||M||_F^2) / s)^{1/2},   sigma = nu ||A R||_F / sqrt(m),

(``E||x||^2 = s``; ``sigma`` makes ``E||e||^2 = nu^2 E||A x||^2``), cross-checked by Monte Carlo
over ``N_TEST = 2000`` fresh test pairs per noise level.

Profiles of ``dln.weight_decay_noise_robustness``:

* ``paper``: the Figure-1 sizes ``d = 200, m = 100, L = 5, d_w = 400, s = 5``, ``n = 100``,
  ``T = 10 000`` steps, seeds 0-4 (about 40 s per GD run on the reference machine, so minutes).
* ``quick``: the same protocol scaled down to ``d = 40, m = 20, s = 3, L = 4, d_w = 60``, with
  ``n = 100`` kept (so ``lambda / sigma_s(Y)^2``, the size of the weight-decay bias, stays in the
  Figure-1 regime: the relative fit error at ``lambda = 1`` is about 0.02 in both), ``T = 5000``
  steps (``rho^T`` between ``5e-4`` and ``7e-3`` for ``lambda = 1``), seeds 0-2; about 1 s of CPU
  per seed.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from dynamics._validate import as_matrix, positive_int, real
from verification import tolerance as tol
from verification.dln_instances import (
    DEFAULT_INIT,
    LAM_POSITIVE,
    STANDARD_UPDATE,
    WIDE_FIRST_LAYER,
    DLNInstance,
    DLNSpec,
    materialize,
    record_schedule,
)
from verification.engine import Evidence, Hypothesis, HypothesisFailed, Kind, claim

REF = "docs/theory/deep_linear.md"

NOISE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
"""Relative noise levels ``nu`` of the protocol (section 10.1) [choice]."""
N_TEST = 2000
"""Monte Carlo test pairs per noise level (section 10.1) [choice]."""
MC_Z = 4.0
"""Monte Carlo agreement: within this many standard errors (section 10.1) [choice]."""
INTERPOLATION_RTOL = 1e-8
"""Assertion (1): ``r(T) <= 1e-8 ||X||_F`` for ``lambda = 0`` [choice]."""
KEEP_FRACTION = 0.5
"""Assertion (2): ``||M_0(T) P_perp||_2 >= 1/2 ||M(0) P_perp||_2`` [choice]."""
KILL_FRACTION = 1e-2
"""Assertion (3): ``||M_1(T) P_perp||_2 <= 1e-2 ||M(0) P_perp||_2`` [choice]."""
ROBUST_FROM_NU = 0.05
"""Assertion (4): ``err_1(nu) < err_0(nu)`` for every ``nu >= 0.05`` [choice]."""
RATIO_AT_NU1 = 2.0
"""Assertion (5): ``err_0(1) / err_1(1) >= 2`` [choice]."""

FIG1_SPEC = DLNSpec(d=200, m=100, s=5, n=100, L=5, d_w=400, lam=1.0, k=4.0, steps=10_000)
"""The Figure-1a configuration with weight decay (``lambda = 1``); ``lam = 0`` gives its partner."""
QUICK_SPEC = DLNSpec(d=40, m=20, s=3, n=100, L=4, d_w=60, lam=1.0, k=4.0, steps=5000)
"""The scaled-down configuration of the quick profile (see the module docstring)."""


# --------------------------------------------------------------------------------------------
# the D5 metric and its Monte Carlo estimate


def noise_sigma(A: np.ndarray, R: np.ndarray, nu: float) -> float:
    """Test-noise standard deviation ``sigma(nu) = nu ||A R||_F / sqrt(m)``.

    With ``z ~ N(0, I_s)``, ``E||A R z||^2 = ||A R||_F^2``, so ``E||e||^2 = m sigma^2 =
    nu^2 E||A x||^2``: ``nu`` is the noise-to-signal ratio of the measurements.
    """
    A = as_matrix("A", A)
    R = as_matrix("R", R)
    nu = real("nu", nu, minimum=0.0)
    return nu * float(np.linalg.norm(A @ R)) / np.sqrt(A.shape[0])


def relative_test_rmse(M: np.ndarray, A: np.ndarray, R: np.ndarray, sigma: float) -> float:
    """Exact relative test RMSE ``(E||M y - x||^2 / E||x||^2)^{1/2}`` (D5, ``E||x||^2 = s``)."""
    R = as_matrix("R", R)
    return float(np.sqrt(dlb.expected_test_mse(M, A, R, sigma) / R.shape[1]))


def oracle_relative_rmse(A: np.ndarray, R: np.ndarray, sigma: float) -> float:
    """Relative test RMSE of the oracle ``R (A R)^+``: ``sigma ||(A R)^+||_F / sqrt(s)`` (D5)."""
    R = as_matrix("R", R)
    return float(np.sqrt(dlb.oracle_test_mse(A, R, sigma) / R.shape[1]))


@dataclasses.dataclass(frozen=True)
class MonteCarloMSE:
    """Monte Carlo estimates of the test MSE ``E||M y - x||^2``, one entry per noise level.

    Attributes
    ----------
    mean, stderr : ndarray
        Sample mean and its standard error (sample standard deviation over ``sqrt(N)``).
    rounding_scale : ndarray
        ``mean_i (||M||_2 ||y_i|| + ||x_i||)^2``: the magnitude of the float64 operands of one
        sample, the scale of the rounding allowance of the cross-check.
    n_test : int
        Number of test pairs.
    """

    mean: np.ndarray
    stderr: np.ndarray
    rounding_scale: np.ndarray
    n_test: int


def monte_carlo_test_mse(M: np.ndarray, A: np.ndarray, R: np.ndarray, sigmas: Sequence[float],
                         rng: np.random.Generator, n_test: int = N_TEST) -> MonteCarloMSE:
    """Estimate ``E||M (A R z + e) - R z||^2`` for ``z ~ N(0, I_s)``, ``e ~ N(0, sigma^2 I_m)``.

    The same ``z`` and the same standardized noise are used for every ``sigma`` (common random
    numbers), so the estimates of neighbouring noise levels are positively correlated and the
    curve is smooth; each level on its own is an ordinary i.i.d. sample mean.

    Parameters
    ----------
    M : ndarray, shape (d, m)
        End-to-end map.
    A, R : ndarray
        Forward operator ``(m, d)`` and orthonormal signal basis ``(d, s)``.
    sigmas : sequence of float
        Noise standard deviations, ``>= 0``.
    rng : numpy.random.Generator
        Source of the test pairs.
    n_test : int
        Test pairs per level, ``>= 2``.

    Returns
    -------
    MonteCarloMSE
    """
    M = as_matrix("M", M)
    A = as_matrix("A", A)
    R = as_matrix("R", R)
    n_test = positive_int("n_test", n_test, minimum=2)
    sigmas = np.asarray([real("sigmas", s, minimum=0.0) for s in sigmas], dtype=float)
    if M.shape != (R.shape[0], A.shape[0]):
        raise ValueError(f"M: expected shape {(R.shape[0], A.shape[0])}, got {M.shape}")
    z = rng.standard_normal((R.shape[1], n_test))
    g = rng.standard_normal((A.shape[0], n_test))
    x = R @ z
    ax = A @ x
    m_norm = float(np.linalg.norm(M, 2))
    mean, se, scale = [], [], []
    for sigma in sigmas:
        y = ax + sigma * g
        sq = np.sum((M @ y - x) ** 2, axis=0)
        mean.append(float(np.mean(sq)))
        se.append(float(np.std(sq, ddof=1) / np.sqrt(n_test)))
        scale.append(float(np.mean((m_norm * np.linalg.norm(y, axis=0)
                                    + np.linalg.norm(x, axis=0)) ** 2)))
    return MonteCarloMSE(np.array(mean), np.array(se), np.array(scale), n_test)


# --------------------------------------------------------------------------------------------
# the paired runs (lambda = 0 and lambda > 0 on common random numbers)


@dataclasses.dataclass(frozen=True)
class PairedRuns:
    """The weight-decay run of a spec and its ``lambda = 0`` partner on the same data and init.

    Attributes
    ----------
    spec : DLNSpec
        The weight-decay spec (``lam > 0``).
    instance : DLNInstance
        Its materialization (data, initial weights, ``eta``); shared by both runs.
    decay, plain : Trajectory
        The runs with ``lam = spec.lam`` and with ``lam = 0``.
    """

    spec: DLNSpec
    instance: DLNInstance
    decay: dl.Trajectory
    plain: dl.Trajectory


_PAIRED: OrderedDict[DLNSpec, PairedRuns] = OrderedDict()
_PAIRED_MAX = 8


def paired_runs(spec: DLNSpec, progress: Callable[[int, int], None] | None = None) -> PairedRuns:
    """Run ``spec`` and its ``lambda = 0`` partner as one batched GD run (cached per spec).

    Both batch members start from the data, the initialization and the step size ``eta`` of
    ``materialize(spec)`` (common random numbers). The partner deliberately keeps the weight-decay
    run's ``eta``: section 10.1 uses the same ``eta`` for all ``lambda`` of a seed, while the
    ``gn_bound`` step of ``materialize(spec.replace(lam=0))`` would differ by the ``lam_bar`` term
    of ``eta_hat = 1 / (max(L_0, L_star) + lam_bar)``.

    Parameters
    ----------
    spec : DLNSpec
        The weight-decay spec.
    progress : callable, optional
        ``progress(t, steps)``, passed to :func:`dynamics.deep_linear.run_gd` (long runs).

    Raises
    ------
    verification.engine.HypothesisFailed
        ``stable_run`` if either run diverges (the instance is then vacuous).
    """
    if spec in _PAIRED:
        _PAIRED.move_to_end(spec)
        return _PAIRED[spec]
    inst = materialize(spec)
    X = np.stack([inst.data.X] * 2)
    Y = np.stack([inst.data.Y] * 2)
    W0 = [np.stack([W] * 2) for W in inst.weights0]
    try:
        traj = dl.run_gd(X, Y, W0, eta=np.full(2, inst.eta), steps=spec.steps,
                         lam=np.array([spec.lam, 0.0]), a=np.full(2, inst.a), c=np.full(2, inst.c),
                         update=spec.update, record_at=record_schedule(spec), reduce=spec.reduce,
                         progress=progress)
    except dl.DivergenceError as exc:
        members = ["lambda>0" if b == 0 else "lambda=0" for b in exc.batch_indices]
        raise HypothesisFailed("stable_run", f"{exc} ({', '.join(members)})") from exc
    parts = [dl.Trajectory(times=traj.times, records={k: v[:, b] for k, v in traj.records.items()},
                           weights=[W[b] for W in traj.weights], snapshots={},
                           reduction=None if traj.reduction is None else traj.reduction[b])
             for b in range(2)]
    out = PairedRuns(spec=spec, instance=inst, decay=parts[0], plain=parts[1])
    _PAIRED[spec] = out
    if len(_PAIRED) > _PAIRED_MAX:
        _PAIRED.popitem(last=False)
    return out


def noise_curves(spec: DLNSpec, levels: Sequence[float] = NOISE_LEVELS, *, monte_carlo: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Exact and Monte Carlo relative test RMSE against the noise level, ``lambda = 0`` vs ``> 0``.

    Returns
    -------
    dict
        ``nu`` and ``sigma`` (arrays over ``levels``); ``err_decay``, ``err_plain``, ``err_oracle``
        (exact D5 relative RMSE); if ``monte_carlo``, ``mc_decay`` and ``mc_plain``
        (:class:`MonteCarloMSE` of the unnormalized MSE, on the instance's test stream, the same
        test pairs for both runs); and the :class:`PairedRuns` as ``runs``.
    """
    runs = paired_runs(spec, progress)
    A, R = runs.instance.data.A, runs.instance.data.R
    nu = np.asarray([real("levels", v, minimum=0.0) for v in levels], dtype=float)
    sigma = np.array([noise_sigma(A, R, v) for v in nu])
    M_decay = dl.end_to_end(runs.decay.weights)
    M_plain = dl.end_to_end(runs.plain.weights)
    out = {"nu": nu, "sigma": sigma, "runs": runs,
           "err_decay": np.array([relative_test_rmse(M_decay, A, R, s) for s in sigma]),
           "err_plain": np.array([relative_test_rmse(M_plain, A, R, s) for s in sigma]),
           "err_oracle": np.array([oracle_relative_rmse(A, R, s) for s in sigma])}
    if monte_carlo:
        # One test stream per instance; the same pairs for both runs (common random numbers).
        out["mc_decay"] = monte_carlo_test_mse(M_decay, A, R, sigma, runs.instance.test_rng())
        out["mc_plain"] = monte_carlo_test_mse(M_plain, A, R, sigma, runs.instance.test_rng())
    return out


# --------------------------------------------------------------------------------------------
# the claim

FIG1_PROTOCOL = Hypothesis(
    "fig1_protocol", "section 10.1 settings: talk convention, gn_bound step, gaussian design",
    lambda sp: (sp.convention == "talk" and sp.stepsize == "gn_bound" and sp.design == "gaussian"))


@claim("dln.weight_decay_noise_robustness",
       provenance="[abstract] (Fig. 1 caption), [seed 000], [seed 002]", kind=Kind.STATISTICAL,
       statement="lambda > 0 gives lower test error than lambda = 0 under test noise, and lambda = 0 "
                 "keeps the off-subspace part (the five assertions of section 10.1, per seed)",
       hypotheses=[LAM_POSITIVE, FIG1_PROTOCOL, STANDARD_UPDATE, DEFAULT_INIT, WIDE_FIRST_LAYER],
       instances={"quick": [QUICK_SPEC.replace(seed=s) for s in range(3)],
                  "paper": [FIG1_SPEC.replace(seed=s) for s in range(5)]},
       reference=f"{REF}#d5-test-error-with-measurement-noise")
def weight_decay_noise_robustness(spec: DLNSpec) -> Evidence:
    ev = Evidence()
    cur = noise_curves(spec)  # a diverged run raises HypothesisFailed("stable_run"): vacuous
    runs = cur["runs"]
    inst = runs.instance
    nu, e1, e0 = cur["nu"], cur["err_decay"], cur["err_plain"]
    x_norm = float(np.linalg.norm(inst.data.X))
    r0_T = float(runs.plain["fit_error"][-1])
    r1_T = float(runs.decay["fit_error"][-1])
    off_init = float(runs.plain["off_subspace_norm"][0])
    off0_T = float(runs.plain["off_subspace_norm"][-1])
    off1_T = float(runs.decay["off_subspace_norm"][-1])
    i0 = int(np.flatnonzero(nu == 0.0)[0])
    i1 = int(np.flatnonzero(nu == 1.0)[0])

    # The five assertions are protocol thresholds with O(1) margins at the tested sizes, not
    # float64 identities; they are strict and get no rounding allowance.
    ev.compare("(1) lambda=0 interpolates: r_0(T) <= 1e-8 ||X||_F", r0_T, INTERPOLATION_RTOL * x_norm,
               iteration=spec.steps)
    ev.compare("(1) err_0(0) < err_1(0)", e0[i0], e1[i0], nu=0.0)
    ev.compare("(2) 1/2 ||M(0) P_perp||_2 <= ||M_0(T) P_perp||_2", KEEP_FRACTION * off_init, off0_T,
               iteration=spec.steps)
    ev.compare("(3) ||M_1(T) P_perp||_2 <= 1e-2 ||M(0) P_perp||_2", off1_T, KILL_FRACTION * off_init,
               iteration=spec.steps)
    for j in np.flatnonzero(nu >= ROBUST_FROM_NU):
        ev.compare(f"(4) err_1({nu[j]:g}) < err_0({nu[j]:g})", e1[j], e0[j], nu=float(nu[j]))
    ev.compare("(5) 2 err_1(1) <= err_0(1)", RATIO_AT_NU1 * e1[i1], e0[i1], nu=1.0)

    # Monte Carlo cross-check of the exact D5 metric (on the MSE, whose sample mean has a
    # standard error). Rounding: each sample's residual M y - x carries an error of a few u times
    # its operand scale (||M|| ||y|| + ||x||), so the squared norm is off by ~u times the squared
    # scale; class I with that scale covers it (it only matters at nu = 0, lambda = 0, where the
    # exact MSE itself is rounding-sized).
    for label, errs, mc in (("lambda=0", e0, cur["mc_plain"]), (f"lambda={spec.lam:g}", e1,
                                                                cur["mc_decay"])):
        exact = errs**2 * spec.s
        for j in range(nu.size):
            rounding = tol.inequality(mc.mean[j], exact[j], mc.rounding_scale[j], spec.m)
            if exact[j] <= rounding:
                # lambda = 0 at nu = 0: the network interpolates, the exact MSE and every sample
                # are rounding-sized, and their spread is no standard error; both must vanish.
                ev.compare(f"MC {label} nu={nu[j]:g}: mean and E at rounding level",
                           abs(mc.mean[j] - exact[j]), rounding, nu=float(nu[j]),
                           n_test=mc.n_test)
                continue
            ev.compare(f"MC {label} nu={nu[j]:g}: |mean - E| <= {MC_Z:g} SE",
                       abs(mc.mean[j] - exact[j]), MC_Z * mc.stderr[j], rounding,
                       nu=float(nu[j]), n_test=mc.n_test)

    rho_T = inst.rho**spec.steps
    ev.metrics.update({
        "eta": inst.eta, "eta_hat": inst.eta_hat.value, "rho": inst.rho, "rho^T": rho_T,
        "fit_error_T(lambda=0)/||X||": r0_T / x_norm, "fit_error_T(lambda>0)/||X||": r1_T / x_norm,
        "off_subspace_0": off_init, "off_subspace_T(lambda=0)": off0_T,
        "off_subspace_T(lambda>0)": off1_T, "nu": nu, "err_lambda0": e0, "err_lambda": e1,
        "err_oracle": cur["err_oracle"], "err_ratio_nu1": float(e0[i1] / e1[i1]),
    })
    return ev
