"""Figures of the two-layer DIP family (``invbounds figures dip --out DIR``).

Five figures of spec ``dip.md`` §11, each computed by a data function (returning the rows of its
tidy table and what the figure draws) and drawn by a plot function (returning the matplotlib
``Figure``). :func:`make_figures` writes ``<name>.png`` and ``<name>.csv`` (one row per run, with
its instance seed) as soon as each figure is done, so an interrupted ``paper`` run keeps every
finished figure.

(a) ``dip_phase_transition``: heat maps over cells ``(n, m)`` and widths ``k`` of
    ``P[R' < R]`` (certificate, §11 (i-a); ``z_0`` and ``V`` sampled directly, see
    :func:`network_sample`) next to the fraction of GD runs reaching ``L_T <= 1e-10 L_0``
    (§11 (i-b)), with the predicted ``k_1/2`` (§9 RMS prediction), ``k_D5`` (Theorem D5) and the
    [unverified] ``paper_width_4th_power`` profile overlaid;
(b) ``dip_tightness``: observed GF rate over the proven rates (``rho_emp/kappa``,
    ``rho_emp/kappa_star``), path length over ``R'`` and ``ell_star`` and ``min sigma_min/sigma_0``
    over ``sqrt(1 - Delta)``, across ``k`` (§11 (ii));
(c) ``dip_early_stopping``: signal error ``||x_tau - x_bar||`` of noisy GD runs against the step,
    with the certified stopping step ``tau_eps`` (``mpmath.iv`` ceiling), the discrepancy step
    ``tau_DP`` and the best step ``tau_opt`` (§11 (iii));
(d) ``dip_stepsize_sweep``: a GD step-size sweep in ``gamma lambda_max(M_0)``: where the discrete
    guarantee stops applying (``gamma L_nabla = 2``, ``R'_gamma >= R``) and what the dynamics do
    there (monotonicity, ``max ||theta - theta_0||/R'``, ``min sigma_min/sigma_0``, final loss;
    §11 (iv));
(e) ``dip_underdetermined``: Proposition Vac: for ``m < n`` the signal-space bound is ``+inf``
    (curve witness ``ratio(s) = O(s)``, trained witness ``A x_T = y`` with ``x_T != x_bar``), next
    to ``m >= n`` where the bound is finite and holds (§8, §11 (v)).

``profile="quick"`` uses small grids (the whole command runs in about a minute on 2 cores);
``profile="paper"`` the §11 sizes (hours; progress on stderr). Run ``r`` of a cell uses the
instance seed ``seed + r``: every row of a table rebuilds its instance with
``DIPSpec(..., seed=row["seed"])`` (or, for the sampled certificate rows of (a), with
:func:`network_sample` and the operator and signal streams of :func:`materialize`). Plotting uses
the Agg canvas directly, never ``pyplot``.

GD with a different step per batch member runs through :func:`dynamics.dip_two_layer.run_gd_batch`
(one step for the batch) by rescaling the data: with ``c_b = sqrt(gamma_b/gamma_ref)``, the instance
``(c_b A, c_b y)`` has loss ``c_b^2 f_b`` and gradient ``c_b^2 nabla f_b``, so the step ``gamma_ref`` on it
is exactly the step ``gamma_b`` on ``f_b`` (up to rounding); records are unscaled afterwards.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bounds import dip_two_layer as dipb
from dynamics import dip_two_layer as dip
from dynamics.errors import DivergenceError
from verification import stats
from verification.dip_instances import DIPSpec, flow, make_operator, materialize
from verification.engine import HypothesisFailed
from verification.figures_common import (  # noqa: F401  (read_table/write_table re-exported)
    PROFILES,
    Progress,
    check_profile,
    check_seed,
    read_table,
    stderr_progress,
    tick,
    write_table,
)

CONVERGED_RATIO = 1e-10
"""GD success: ``L_tau <= 1e-10 L_0`` (spec §11 (i-b))."""
GD_RTOL, GD_ATOL = 1e-9, 1e-14
"""GD inequality allowance of spec §10.3: ``lhs <= rhs (1 + 1e-9) + 1e-14 scale``."""
GD_FLOOR = 1e-24
"""Loss-based GD statements are made only while ``L_tau >= 1e-24 L_0`` (spec §10.3)."""
GF_RTOL, GF_ATOL = 1e-6, 1e-9
"""GF inequality allowance of spec §10.3: ``lhs <= rhs (1 + 1e-6) + 1e-9 scale``."""
RATE_FLOOR = 1e-6
"""The observed GF rate is measured at the last record with ``||r(t)|| >= 1e-6 ||r_0||``: well
above the GF floor ``1e-8 ||r_0||`` of §10.3, where the solver's absolute error (``<~1e-11 ||r_0||``,
see :mod:`verification.claims.dip_flow`) is negligible against ``||r||``."""
CLOPPER_LEVEL = 0.99
"""Two-sided level of the Clopper-Pearson intervals of (a) (spec §10.3)."""
NETWORK_CHUNK = 1 << 16
"""Columns of ``V`` drawn and reduced at a time by :func:`network_sample` (memory ``~8 n 2^16`` bytes)."""
BIG_K = 1 << 15
"""Instances at least this wide are dropped from the instance cache after use (memory)."""
FLOW_RELEASE_K = 1 << 12
"""Gradient flows at least this wide are dropped from the flow cache after use (memory)."""










def _release_caches(k: int) -> None:
    # materialize / flow keep up to 256 / 64 entries. A flow holds its dense output (~30 MB at
    # k = 2^12, measured, growing like k) and a case at k >= 2^15 holds ~n k + k d doubles (tens of
    # MB), so the paper grids would fill memory; small entries stay cached.
    if k >= FLOW_RELEASE_K:
        flow.cache_clear()
    if k >= BIG_K:
        materialize.cache_clear()


# --------------------------------------------------------------------------------------------
# tidy tables




# --------------------------------------------------------------------------------------------
# GD with one step per batch member


def _scaled(inst: dip.DIPInstance, c: float, W0=None) -> dip.DIPInstance:
    return dip.build_instance(inst.u, inst.W0 if W0 is None else W0, inst.V, c * inst.A, c * inst.y,
                              activation=inst.activation, x_bar=inst.x_bar, eps=c * inst.eps,
                              require_kd=False)


def _scales(gammas: Sequence[float]) -> tuple[float, np.ndarray]:
    gammas = np.asarray(gammas, dtype=float)
    if gammas.ndim != 1 or gammas.size == 0 or not np.all(np.isfinite(gammas)) or np.any(gammas <= 0):
        raise ValueError(f"gammas: expected positive finite steps, got {gammas}")
    ref = float(gammas.max())
    return ref, np.sqrt(gammas / ref)


def gd_batch(insts: Sequence[dip.DIPInstance], gammas: Sequence[float], loss: dip.RadialLoss,
             steps: int, *, record_every: int = 1) -> list[dict]:
    """GD of every instance with its own step, batched through :func:`dip.run_gd_batch`.

    A member that diverges (:class:`DivergenceError`) is re-run up to the step before divergence.

    Parameters
    ----------
    insts : sequence of DIPInstance
        Same ``(n, m, k, d, activation)``.
    gammas : sequence of float
        One step per instance.
    loss : RadialLoss
        An MSE loss (the rescaling of the module docstring is exact for MSE only).
    steps, record_every : int
        As in :func:`dip.run_gd`.

    Returns
    -------
    list of dict
        Per instance: ``times`` and the records of :data:`dip.RECORD_NAMES` (original units),
        ``z`` (final pre-activations) and ``diverged_at`` (step or ``None``).
    """
    if loss.name != "mse":
        raise ValueError(f"loss: the per-member step rescaling needs MSE, got {loss.name!r}")
    ref, c = _scales(gammas)
    scaled = [_scaled(inst, float(cb)) for inst, cb in zip(insts, c, strict=True)]
    return _gd_scaled(scaled, c, ref, loss, steps, record_every, None)


def _gd_scaled(scaled, c, ref, loss, steps, record_every, diverged_at):
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            traj = dip.run_gd_batch(scaled, loss, ref, steps, record_every=record_every)
    except DivergenceError as exc:
        bad = sorted(set(exc.batch_indices))
        good = [i for i in range(len(scaled)) if i not in bad]
        out: list[dict | None] = [None] * len(scaled)
        parts = [(good, steps, diverged_at), (bad, max(exc.iteration - 1, 0), exc.iteration)]
        for idx, n_steps, div in parts:
            if idx:
                sub = _gd_scaled([scaled[i] for i in idx], c[idx], ref, loss, n_steps, record_every, div)
                for i, res in zip(idx, sub, strict=True):
                    out[i] = res
        return out
    out = []
    for b in range(len(scaled)):
        rec = {name: traj.records[name][:, b].copy() for name in dip.RECORD_NAMES}
        rec["loss"] /= c[b] ** 2
        rec["fit_error"] /= c[b]
        out.append({"times": traj.times.copy(), **rec, "z": traj.z[b].copy(), "diverged_at": diverged_at})
    return out


def gd_until(insts: Sequence[dip.DIPInstance], gammas: Sequence[float], loss: dip.RadialLoss,
             t_max: int, *, ratio: float = CONVERGED_RATIO, record_every: int = 10,
             chunk: int = 500) -> list[dict]:
    """GD of every instance with its own step until ``L_tau <= ratio L_0`` or ``t_max`` steps.

    Runs in chunks of ``chunk`` steps; members that reached the target leave the batch, the others
    continue from their current weights. Only the loss is tracked.

    Returns
    -------
    list of dict
        Per instance: ``steps_to_tol`` (first recorded step with ``L_tau <= ratio L_0``; ``inf`` if
        none by ``t_max``), ``converged`` (bool), ``final_loss_ratio`` (``L/L_0`` at that step or at
        ``t_max``) and ``diverged`` (bool).
    """
    if loss.name != "mse":
        raise ValueError(f"loss: the per-member step rescaling needs MSE, got {loss.name!r}")
    ref, c = _scales(gammas)
    cur = [_scaled(inst, float(cb)) for inst, cb in zip(insts, c, strict=True)]
    L0 = np.array([float(dip.objective(s, loss)) for s in cur])
    res = [{"steps_to_tol": math.inf, "converged": False, "final_loss_ratio": 1.0, "diverged": False}
           for _ in insts]
    active = [i for i in range(len(insts)) if L0[i] > 0]
    for i in range(len(insts)):
        if L0[i] == 0:
            res[i].update(steps_to_tol=0, converged=True, final_loss_ratio=0.0)
    done = 0
    while active and done < t_max:
        n_steps = min(chunk, t_max - done)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                traj = dip.run_gd_batch([cur[i] for i in active], loss, ref, n_steps,
                                        record_every=record_every)
        except DivergenceError as exc:
            for j in set(exc.batch_indices):
                res[active[j]]["diverged"] = True
                res[active[j]]["final_loss_ratio"] = math.inf
            active = [i for j, i in enumerate(active) if j not in set(exc.batch_indices)]
            continue
        still = []
        for j, i in enumerate(active):
            r = traj.records["loss"][:, j] / L0[i]
            hit = np.flatnonzero(r <= ratio)
            if hit.size:
                res[i].update(steps_to_tol=int(done + traj.times[hit[0]]), converged=True,
                              final_loss_ratio=float(r[hit[0]]))
            else:
                res[i]["final_loss_ratio"] = float(r[-1])
                cur[i] = _scaled(cur[i], 1.0, W0=dip.weights_from_z(cur[i], traj.z[j]))
                still.append(i)
        active = still
        done += n_steps
    return res


def _certified_steps(q: float, ratio: float = CONVERGED_RATIO) -> float:
    """Steps after which ``L_tau <= q^tau L_0 (1 + 1e-9) + 1e-14 L_0 <= ratio L_0`` (§10.3 allowance)."""
    if not 0.0 < q < 1.0:
        return math.inf
    return float(math.ceil(math.log((ratio - GD_ATOL) / (1.0 + GD_RTOL)) / math.log(q)))


# --------------------------------------------------------------------------------------------
# (a) phase transitions


def _m_of(n: int, ratio: float) -> int:
    return max(1, math.floor(n * ratio + 0.5))


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
    """Grids of figure (a).

    Attributes
    ----------
    cert_cells, conv_cells : tuple of (n, m, activation)
        Cells of the certificate map (i-a) and of the convergence map (i-b).
    cert_log2k : tuple of int
        Certificate widths ``k = 2^j``.
    conv_k : tuple of int
        GD widths.
    cert_seeds, conv_seeds : int
        Runs per (cell, width).
    t_max, record_every, chunk : int
        GD horizon, loss-record spacing (the resolution of ``steps_to_tol``) and batch chunk.
    d : int
        Input dimension (raised to ``ceil(n/k)`` when ``k d < n``: laws do not depend on ``d``,
        Lemma D0); enters only the [unverified] profile's ``log d``.
    cond, delta0 : float
        Operator condition number; ``delta_0`` of Theorem D5.
    """

    cert_cells: tuple
    conv_cells: tuple
    cert_log2k: tuple
    conv_k: tuple
    cert_seeds: int
    conv_seeds: int
    t_max: int
    record_every: int = 10
    chunk: int = 500
    d: int = 8
    cond: float = 2.0
    delta0: float = 0.1


_QUICK_CELLS = tuple((n, _m_of(n, r), "tanh") for n in (5, 10) for r in (0.5, 1.0, 2.0))
PHASE = {
    "quick": PhaseConfig(cert_cells=_QUICK_CELLS, conv_cells=_QUICK_CELLS,
                         cert_log2k=tuple(range(4, 17)), conv_k=(2, 4, 8, 16, 32, 64, 128, 256),
                         cert_seeds=20, conv_seeds=16, t_max=3000),
    "paper": PhaseConfig(
        cert_cells=tuple((n, _m_of(n, r), "tanh") for n in (5, 10, 20, 40) for r in (0.25, 0.5, 1.0, 2.0)),
        conv_cells=tuple((n, _m_of(n, r), "tanh") for n in (5, 10, 20) for r in (0.5, 1.0, 2.0))
        + tuple((10, m, act) for act in ("sigmoid", "softplus", "relu") for m in (5, 10, 20)),
        cert_log2k=tuple(range(4, 21)), conv_k=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 1024),
        cert_seeds=100, conv_seeds=50, t_max=20_000),
}
"""Spec §11 (i) grids (``paper``) and their small version (``quick``)."""


def network_sample(n: int, k: int, seed: int, activation: str = "tanh") -> dict:
    """The network quantities of one initialization, without building ``W_0``.

    By Lemma D0, with ``||u|| = 1`` the pre-activations ``z_0 = W_0 u`` are exactly ``N(0, I_k)``, so
    ``z_0`` and a Rademacher ``V`` are drawn directly (stream ``SeedSequence([seed, n, k, 0xD1F])``,
    ``V`` in chunks of :data:`NETWORK_CHUNK` columns) and reduced on the fly.

    Returns
    -------
    dict
        ``K0`` (``V diag(phi'(z_0)^2) V^T / k``), ``g0`` (``V phi(z_0)/sqrt k``), ``L_J``
        (``B_2 max_i ||v_i|| / sqrt k``) and ``J_max`` (``B_1 ||V|| / sqrt k``), Lemmas D1-D2.
    """
    consts = dipb.activation_constants(activation)
    act = dip.activation(activation)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(n), int(k), 0xD1F]))
    z0 = rng.standard_normal(k)
    K = np.zeros((n, n))
    VV = np.zeros((n, n))
    g = np.zeros(n)
    col_max = 0.0
    for start in range(0, k, NETWORK_CHUNK):
        zc = z0[start:start + NETWORK_CHUNK]
        Vc = 2.0 * rng.integers(0, 2, size=(n, zc.size)).astype(np.float64) - 1.0
        Vs = Vc * act.dphi(zc)
        K += Vs @ Vs.T
        VV += Vc @ Vc.T
        g += Vc @ act.phi(zc)
        col_max = max(col_max, float(np.sqrt(np.max(np.sum(Vc * Vc, axis=0)))))
    v_norm = math.sqrt(max(float(np.linalg.eigvalsh(VV)[-1]), 0.0))
    L_J = consts.B2 * col_max / math.sqrt(k) if math.isfinite(consts.B2) else math.inf
    return {"K0": K / k, "g0": g / math.sqrt(k), "L_J": L_J, "J_max": consts.B1 * v_norm / math.sqrt(k)}


def certificate_quantities(K0, g0, L_J: float, J_max: float, A, y, *, k: int) -> dict:
    """Certificate quantities of one instance from its Gram matrix and initial output (spec §6-§7).

    The same rules as :func:`verification.dip_instances.materialize`: ``sigma_0 = 0`` below the
    ``1e-12`` eigenvalue floor or when ``k < n``; ``sigma_A`` from :func:`bounds.dip_two_layer.sigma_A`;
    ``psi_0 = ||A g_0 - y_eff||``; GD at ``gamma = 1/L_nabla(R)``.

    Returns
    -------
    dict
        ``sigma0``, ``sigma_A``, ``psi0``, ``R``, ``R_prime``, ``ratio`` (``R'/R``, ``inf`` without a
        certificate), ``s0``, ``L_nabla`` and the flags ``cert_sigma0`` (filled in by the caller),
        ``cert_gf`` (``R' < R``), ``cert_gf_refined`` (``R' < 2R``), ``cert_obs`` (``R'_A < R_A``),
        ``cert_gd`` (``R'_gamma < R``).
    """
    A = np.asarray(A, dtype=float)
    n = K0.shape[0]
    lam = np.linalg.eigvalsh(K0)
    sigma0 = 0.0
    if k >= n and lam[0] >= dip.SIGMA_FLOOR_RATIO * lam[-1]:
        sigma0 = math.sqrt(max(float(lam[0]), 0.0))
    sv = np.linalg.svd(A, compute_uv=False)
    rank_A = int(np.sum(sv > sv[0] * max(A.shape) * np.finfo(float).eps))
    norm_A = float(sv[0])
    sigmaA = dipb.sigma_A(A, radial=True, y_in_range=True)
    y_eff, _ = dipb.effective_data(A, y)
    psi0 = float(np.linalg.norm(A @ g0 - y_eff))
    M0 = np.linalg.eigvalsh(A @ K0 @ A.T)[::-1]
    lam_rA = M0[rank_A - 1] if k >= rank_A else 0.0
    s0 = math.sqrt(lam_rA) if lam_rA >= dip.SIGMA_FLOOR_RATIO * M0[0] else 0.0
    out = {"sigma0": sigma0, "sigma_A": sigmaA, "psi0": psi0, "norm_A": norm_A, "s0": s0,
           "lambda_max_M0": float(M0[0]), "R": 0.0, "R_prime": math.inf, "ratio": math.inf,
           "cert_gf": False, "cert_gf_refined": False, "cert_obs": False, "cert_gd": False,
           "L_nabla": math.inf}
    finite_LJ = math.isfinite(L_J)
    if sigma0 > 0 and sigmaA > 0 and finite_LJ:
        cert = dipb.certificate(sigma0, sigmaA, L_J, psi0)
        L_R = dipb.gradient_lipschitz(cert.R, L_J=L_J, norm_A=norm_A, J_max=J_max, r0=psi0)
        step = dipb.step_constants(1.0 / L_R, L_R, cert.R_prime, cert.kappa)
        out.update(R=cert.R, R_prime=cert.R_prime, ratio=cert.R_prime / cert.R, cert_gf=cert.base,
                   cert_gf_refined=cert.refined, L_nabla=L_R,
                   cert_gd=bool(step.admissible and step.R_prime_gamma < cert.R))
    if s0 > 0 and finite_LJ:
        out["cert_obs"] = dipb.observation_certificate(s0, norm_A, L_J, psi0).base
    return out


def predicted_k_half(n: int, A, y, activation: str = "tanh") -> float:
    """§9 RMS prediction of the 50% width of ``P[R' < R]`` (Rademacher ``V``) [derived, approximation].

    ``k_1/2 ~ 16 B_2^2 n (C_phi^2 ||A||_F^2 + ||y||^2) / (C_phi'^4 sigma_A^2)``; ``inf`` for ReLU or
    ``sigma_A = 0``.
    """
    c = dipb.activation_constants(activation)
    sA = dipb.sigma_A(A, radial=True, y_in_range=True)
    if not (math.isfinite(c.B2) and sA > 0):
        return math.inf
    num = 16.0 * c.B2 ** 2 * n * (c.C_phi ** 2 * float(np.sum(np.asarray(A) ** 2)) + float(np.sum(y ** 2)))
    return num / (c.C_dphi ** 4 * sA ** 2)


def _overlays(n: int, m: int, d: int, A, x_bar, activation: str, delta0: float) -> dict:
    """Predicted ``k_1/2``, ``k_D5`` and the [unverified] profile for one (operator, signal) draw."""
    y = A @ x_bar
    out = {"k_half_pred": predicted_k_half(n, A, y, activation), "k_D5": math.inf, "k_profile": math.inf}
    sA = dipb.sigma_A(A, radial=True, y_in_range=True)
    c = dipb.activation_constants(activation)
    norm_A = float(np.linalg.norm(A, 2))
    if sA > 0 and math.isfinite(c.B2) and n >= 2:
        rho = dipb.initial_residual_bound(norm_A, c.C_phi, n, float(np.linalg.norm(y)), delta0)
        out["k_D5"] = dipb.width_threshold(n, sA, rho, act=activation, delta0=delta0).k
    if sA > 0:
        out["k_profile"] = dipb.paper_width_4th_power(n, m, max(d, 2), sA, norm_A,
                                                      float(np.max(np.abs(y))), 0.0).value
    return out


def _operator_and_signal(n: int, m: int, cond: float, seed: int):
    """``A`` and the sphere signal ``x_bar`` of ``DIPSpec(n=n, m=m, cond=cond, t_R=None, seed=seed)``
    (the operator and data streams of :func:`materialize`)."""
    _, op_ss, data_ss = np.random.SeedSequence(seed).spawn(3)
    A = make_operator(m, n, cond, np.random.default_rng(op_ss))
    xi = np.random.default_rng(data_ss).standard_normal(n)
    return A, math.sqrt(n) * xi / np.linalg.norm(xi)


def _cells_union(cfg: PhaseConfig) -> list:
    rows = []
    for cell in (*cfg.cert_cells, *cfg.conv_cells):
        if tuple(cell) not in rows:
            rows.append(tuple(cell))
    return rows


def phase_transition_data(profile: str = "quick", seed: int = 0, *, config: PhaseConfig | None = None,
                          progress: Progress | None = None) -> dict:
    """What figure (a) plots, and its table.

    Returns
    -------
    dict
        ``config``, ``rows`` (one per run: ``kind`` ``certificate`` (sampled, (i-a)) or
        ``convergence`` (GD, (i-b)), with the certificate quantities of that very instance and,
        for GD, ``converged``, ``steps_to_tol``, ``certified_converges`` (a GD or GD+ certificate
        whose linear rate reaches ``1e-10 L_0`` within ``t_max``)), ``columns`` and ``cells`` (per
        cell: ``cert_p``/``conv_p`` over ``cert_k``/``conv_k`` with 99% Clopper-Pearson intervals
        ``*_lo``/``*_hi``, the 50% widths ``cert_k_half``/``conv_k_half`` (isotonic interpolation in
        ``log k``, :func:`verification.stats.crossing_point`), the median overlays ``k_half_pred``,
        ``k_D5``, ``k_profile``, and for the certificate cells the other events ``cert_events``
        (``P[sigma_0 >= C_phi'/2]``, ``P[R' < 2R]``, ``P[R'_A < R_A]``, ``P[R'_gamma < R]``), the
        median ``R'/R`` per width ``ratio_median`` and its log-log slope ``ratio_slope``
        (``-1/2`` expected, spec §9)).
    """
    cfg = config if config is not None else PHASE[check_profile(profile)]
    seed = check_seed(seed)
    rows: list[dict] = []
    ops: dict = {}

    def op(n, m, s):
        if (n, m, s) not in ops:
            ops[(n, m, s)] = _operator_and_signal(n, m, cfg.cond, s)
        return ops[(n, m, s)]

    cert_groups = sorted({(n, act) for n, _, act in cfg.cert_cells})
    total = len(cert_groups) * len(cfg.cert_log2k) + len(cfg.conv_cells) * len(cfg.conv_k)
    done = 0
    for n, act in cert_groups:
        ms = [m for nn, m, a in cfg.cert_cells if (nn, a) == (n, act)]
        c = dipb.activation_constants(act)
        for j in cfg.cert_log2k:
            k = 2 ** j
            for r in range(cfg.cert_seeds):
                s = seed + r
                # One network per (n, k, seed), shared by the m-cells (it does not depend on m).
                net = network_sample(n, k, s, act)
                for m in ms:
                    A, x_bar = op(n, m, s)
                    q = certificate_quantities(net["K0"], net["g0"], net["L_J"], net["J_max"], A,
                                               A @ x_bar, k=k)
                    rows.append({"kind": "certificate", "n": n, "m": m, "k": k, "d": cfg.d, "activation": act,
                                 "cond": cfg.cond, "seed": s, **q,
                                 "sigma0_over_Cdphi": q["sigma0"] / c.C_dphi,
                                 "cert_sigma0": q["sigma0"] >= c.C_dphi / 2,
                                 **_overlays(n, m, cfg.d, A, x_bar, act, cfg.delta0)})
            done += 1
            tick(progress, done, total, f"(i-a) n={n} {act} k=2^{j}")
    loss = dip.make_loss("mse")
    for n, m, act in cfg.conv_cells:
        c = dipb.activation_constants(act)
        for k in cfg.conv_k:
            d = max(cfg.d, -(-n // k))
            specs = [DIPSpec(n=n, m=m, k=k, d=d, activation=act, cond=cfg.cond, t_R=None, seed=seed + r)
                     for r in range(cfg.conv_seeds)]
            cases = [materialize(sp) for sp in specs]
            runs = gd_until([cs.inst for cs in cases], [cs.gamma for cs in cases], loss, cfg.t_max,
                            record_every=cfg.record_every, chunk=cfg.chunk)
            for sp, cs, run in zip(specs, cases, runs, strict=True):
                rows.append(_convergence_row(sp, cs, run, cfg, c))
            _release_caches(k)
            done += 1
            tick(progress, done, total, f"(i-b) n={n} m={m} {act} k={k}")
    return {"config": cfg, "seed": seed, "rows": rows, "columns": PHASE_COLUMNS,
            "cells": _phase_cells(cfg, rows)}


def _convergence_row(spec: DIPSpec, case, run: dict, cfg: PhaseConfig, c) -> dict:
    cert = case.cert
    base = cert is not None and case.step is not None and case.step.admissible and \
        case.step.R_prime_gamma < cert.R
    refined = case.refined_step is not None and case.refined_step.holds
    # Theorem GD item 4 / GD+: L_{tau+1} <= q L_tau with q = q_gamma or 1 - 2 rate_GD+.
    need = min(_certified_steps(case.step.q_gamma) if base else math.inf,
               _certified_steps(1.0 - 2.0 * case.refined_step.rate) if refined else math.inf)
    A, x_bar = case.inst.A, case.inst.x_bar
    row = {"kind": "convergence", "n": spec.n, "m": spec.m, "k": spec.k, "d": spec.d,
           "activation": spec.activation, "cond": spec.cond, "seed": spec.seed,
           "sigma0": case.sigma0, "sigma0_over_Cdphi": case.sigma0 / c.C_dphi,
           "sigma_A": case.sigmaA, "psi0": case.r0, "norm_A": case.norm_A, "s0": case.s0,
           "R": case.R, "R_prime": cert.R_prime if cert else math.inf,
           "ratio": cert.R_prime / cert.R if cert and cert.R > 0 else math.inf,
           "cert_sigma0": case.sigma0 >= c.C_dphi / 2, "cert_gf": bool(cert and cert.base),
           "cert_gf_refined": bool(cert and cert.refined), "cert_obs": bool(case.obs and case.obs.base),
           "cert_gd": bool(base), "cert_gd_refined": bool(refined), "L_nabla": case.L_nabla_R,
           "gamma": case.gamma, "t_max": cfg.t_max, "record_every": cfg.record_every,
           "steps_certified": need, "certified_converges": need <= cfg.t_max, **run,
           **_overlays(spec.n, spec.m, spec.d, A, x_bar, spec.activation, cfg.delta0)}
    return row


PHASE_COLUMNS = ("kind", "n", "m", "k", "d", "activation", "cond", "seed", "sigma0", "sigma0_over_Cdphi",
                 "sigma_A", "norm_A", "psi0", "s0", "lambda_max_M0", "R", "R_prime", "ratio", "L_nabla",
                 "cert_sigma0", "cert_gf", "cert_gf_refined", "cert_obs", "cert_gd", "cert_gd_refined",
                 "gamma", "t_max", "record_every", "steps_to_tol", "converged", "final_loss_ratio",
                 "diverged", "steps_certified", "certified_converges", "k_half_pred", "k_D5", "k_profile")


def _proportions(rows, ks, key):
    p, lo, hi, N = [], [], [], []
    for k in ks:
        sel = [r[key] for r in rows if r["k"] == k]
        x, n = int(sum(sel)), len(sel)
        a, b = stats.clopper_pearson(x, n, CLOPPER_LEVEL)
        p.append(x / n)
        lo.append(a)
        hi.append(b)
        N.append(n)
    return np.array(p), np.array(lo), np.array(hi), np.array(N)


def _phase_cells(cfg: PhaseConfig, rows: list[dict]) -> list[dict]:
    cells = []
    for n, m, act in _cells_union(cfg):
        mine = [r for r in rows if (r["n"], r["m"], r["activation"]) == (n, m, act)]
        cert = [r for r in mine if r["kind"] == "certificate"]
        conv = [r for r in mine if r["kind"] == "convergence"]
        cell = {"n": n, "m": m, "activation": act}
        for kind, sel, key in (("cert", cert, "cert_gf"), ("conv", conv, "converged")):
            ks = np.array(sorted({r["k"] for r in sel}), dtype=float)
            cell[f"{kind}_k"] = ks
            if ks.size:
                p, lo, hi, N = _proportions(sel, ks, key)
                cell.update({f"{kind}_p": p, f"{kind}_lo": lo, f"{kind}_hi": hi,
                             f"{kind}_k_half": stats.crossing_point(ks, p, weights=N)})
            else:
                cell.update({f"{kind}_p": np.array([]), f"{kind}_k_half": math.nan})
        for key in ("k_half_pred", "k_D5", "k_profile"):
            vals = [r[key] for r in mine]
            cell[key] = float(np.median(vals)) if vals else math.nan
        if cert:
            ks = cell["cert_k"]
            # The other certificate events of (i-a), and the median R'/R with its log-log slope
            # (-1/2 expected from the sqrt(k) scaling law, spec §9).
            cell["cert_events"] = {flag: _proportions(cert, ks, flag)[0]
                                   for flag in ("cert_sigma0", "cert_gf_refined", "cert_obs", "cert_gd")}
            med = np.array([np.median([r["ratio"] for r in cert if r["k"] == k]) for k in ks])
            cell["ratio_median"] = med
            ok = np.isfinite(med) & (med > 0)
            cell["ratio_slope"] = (float(np.polyfit(np.log(ks[ok]), np.log(med[ok]), 1)[0])
                                   if np.sum(ok) >= 2 else math.nan)
        cells.append(cell)
    return cells


# --------------------------------------------------------------------------------------------
# (b) tightness


@dataclasses.dataclass(frozen=True)
class TightnessConfig:
    """Instances of figure (b): constructed ``R'/R = t_R`` over ``ms x ks x t_Rs`` and natural ones."""

    n: int = 10
    ms: tuple = (5, 20)
    ks: tuple = (256, 1024, 4096)
    t_Rs: tuple = (0.1, 0.5, 0.9, 1.5)
    seeds: int = 3
    natural_m: int = 5
    natural_ks: tuple = ()
    natural_seeds: int = 0
    d: int = 8
    cond: float = 2.0


TIGHTNESS = {
    "quick": TightnessConfig(),
    "paper": TightnessConfig(ks=(2 ** 10, 2 ** 12, 2 ** 14), seeds=20,
                             natural_ks=tuple(2 ** j for j in range(15, 20)), natural_seeds=20),
}
"""Spec §11 (ii) (``paper``: MSE, GF) and a small version (``quick``: constructed instances only)."""

TIGHTNESS_COLUMNS = ("data", "n", "m", "k", "d", "cond", "t_R", "seed", "sigma0", "sigma_A", "psi0", "R",
                     "R_prime", "Delta", "cert_gf", "cert_gf_refined", "kappa", "kappa_star", "kappa_up",
                     "ell_star", "t_obs", "r_obs_ratio", "rho_emp", "rho_over_kappa", "rho_over_kappa_star",
                     "rho_over_kappa_up", "path_final", "path_over_R_prime", "path_over_ell_star",
                     "max_drift_over_path", "min_sigma_ratio", "sqrt_one_minus_Delta", "t_final",
                     "r_final_ratio", "status")


def _tightness_specs(cfg: TightnessConfig, seed: int) -> list[tuple[str, DIPSpec]]:
    out = []
    for m in cfg.ms:
        for k in cfg.ks:
            for t_R in cfg.t_Rs:
                out += [("constructed", DIPSpec(n=cfg.n, m=m, k=k, d=cfg.d, cond=cfg.cond, t_R=t_R,
                                                seed=seed + r)) for r in range(cfg.seeds)]
    for k in cfg.natural_ks:
        out += [("natural", DIPSpec(n=cfg.n, m=cfg.natural_m, k=k, d=cfg.d, cond=cfg.cond, t_R=None,
                                    seed=seed + r)) for r in range(cfg.natural_seeds)]
    return out


def tightness_row(data: str, spec: DIPSpec) -> dict:
    """One GF run of figure (b): observed rate, path length and ``sigma_min`` against the certificate.

    ``rho_emp = -ln(||r(t_obs)||/||r_0||)/t_obs`` at the last record with ``||r|| >= 1e-6 ||r_0||``
    (:data:`RATE_FLOOR`); ``path_final`` is the augmented path-length state at the end of the flow
    (terminal event ``||r|| <= 1e-9 ||r_0||``: the rest of the path is at most
    ``2 ||r||/(sigma_0 sigma_A) <= 1e-9 R'``, Theorem GF item 4).
    """
    case = materialize(spec)
    cert = case.cert
    row = {"data": data, "n": spec.n, "m": spec.m, "k": spec.k, "d": spec.d, "cond": spec.cond,
           "t_R": spec.t_R, "seed": spec.seed, "sigma0": case.sigma0, "sigma_A": case.sigmaA,
           "psi0": case.r0, "kappa_up": dipb.rate_upper(case.J_max, case.norm_A)}
    if cert is None:
        return {**row, "status": "no certificate (sigma_0 = 0)"}
    row.update(R=cert.R, R_prime=cert.R_prime, Delta=cert.Delta, cert_gf=cert.base,
               cert_gf_refined=cert.refined, kappa=cert.kappa, kappa_star=cert.kappa_star,
               ell_star=cert.ell_star,
               sqrt_one_minus_Delta=math.sqrt(1.0 - cert.Delta) if cert.refined else math.nan)
    try:
        traj = flow(spec)
    except HypothesisFailed as exc:
        return {**row, "status": f"flow failed: {exc}"}
    t, rec = traj.times, traj.records
    rr = rec["fit_error"] / case.r0
    live = np.flatnonzero((rr >= RATE_FLOOR) & (t > 0))
    if live.size:
        i = int(live[-1])
        rho = -math.log(rr[i]) / t[i]
        row.update(t_obs=float(t[i]), r_obs_ratio=float(rr[i]), rho_emp=rho, rho_over_kappa=rho / cert.kappa,
                   rho_over_kappa_star=rho / cert.kappa_star, rho_over_kappa_up=rho / row["kappa_up"])
    path = float(rec["path_length"][-1])
    row.update(path_final=path, path_over_R_prime=path / cert.R_prime,
               path_over_ell_star=path / cert.ell_star,
               max_drift_over_path=float(np.max(rec["drift"]) / path) if path > 0 else math.nan,
               min_sigma_ratio=float(np.min(rec["sigma_min"]) / case.sigma0),
               t_final=float(t[-1]), r_final_ratio=float(rr[-1]), status="ok")
    return row


def tightness_data(profile: str = "quick", seed: int = 0, *, config: TightnessConfig | None = None,
                   progress: Progress | None = None) -> dict:
    """What figure (b) plots, and its table (one row per GF run, :func:`tightness_row`)."""
    cfg = config if config is not None else TIGHTNESS[check_profile(profile)]
    seed = check_seed(seed)
    specs = _tightness_specs(cfg, seed)
    rows = []
    for i, (data, sp) in enumerate(specs):
        rows.append(tightness_row(data, sp))
        _release_caches(sp.k)
        tick(progress, i + 1, len(specs), f"{data} m={sp.m} k={sp.k} t_R={sp.t_R}")
    return {"config": cfg, "seed": seed, "rows": rows, "columns": TIGHTNESS_COLUMNS}


# --------------------------------------------------------------------------------------------
# (c) early stopping


@dataclasses.dataclass(frozen=True)
class EarlyStoppingConfig:
    """Runs of figure (c).

    Certified runs: constructed ``R'/R = cert_t_R`` (or natural teacher data when ``cert_t_R`` is
    ``None``) at width ``cert_k``, GD at ``gamma = 1/L_nabla(rho)`` (``cert_step_ball``), for
    ``ceil(cert_step_factor * tau_eps)`` steps (at most ``cert_max_steps``). Descriptive runs: natural
    teacher data at width ``desc_k``, ``gamma = 1/(||A||^2 J_max^2)``, ``desc_steps`` steps
    (uncertified: no ``tau_eps``).
    """

    n: int = 10
    m: int = 20
    d: int = 8
    cert_k: int = 512
    cert_conds: tuple = (10.0,)
    cert_t_R: float | None = 0.4
    cert_step_ball: str = "R"
    cert_noise: tuple = (0.05, 0.2)
    cert_seeds: int = 3
    cert_step_factor: float = 1.3
    cert_max_steps: int = 20_000
    desc_k: int = 512
    desc_conds: tuple = (10.0, 30.0)
    desc_noise: tuple = (0.05,)
    desc_seeds: int = 3
    desc_steps: int = 12_000
    record_every: int = 20
    dp_factor: float = 1.1


EARLY_STOPPING = {
    "quick": EarlyStoppingConfig(),
    "paper": EarlyStoppingConfig(cert_k=2 ** 18, cert_t_R=None, cert_step_ball="2R",
                                 cert_noise=(0.01, 0.05, 0.2), cert_seeds=10, cert_max_steps=10 ** 6,
                                 desc_k=2 ** 12, desc_conds=(10.0, 30.0, 100.0),
                                 desc_noise=(0.01, 0.05, 0.2), desc_seeds=20, desc_steps=200_000),
}
"""Spec §11 (iii) (``paper``) and a small version (``quick``: constructed certified runs)."""

EARLY_COLUMNS = ("kind", "data", "n", "m", "k", "d", "cond", "noise_rel", "seed", "gamma", "steps",
                 "record_every", "r0", "eps_eff", "sigma_n_A", "certificate", "q", "tau_eps_base",
                 "tau_eps_refined", "tau_eps", "tau_dp", "tau_opt", "err_0", "err_tau_eps", "err_dp",
                 "err_opt", "err_final", "least_squares_noise", "u_shape", "max_err_after_tau_eps",
                 "signal_bound_after_tau_eps", "max_fit_after_tau_eps", "diverged_at", "data_residual",
                 "y_norm", "x_bar_norm")


def _stopping_steps(case) -> dict:
    """Certified ``tau_eps`` of Theorem GD (``q_gamma``) and GD+ (``1 - 2 rate``), where they apply."""
    out = {"tau_eps_base": None, "tau_eps_refined": None, "certificate": "none", "q": math.nan}
    if not (case.r0 > case.eps_eff_norm > 0):
        return out
    cert = case.cert
    if cert is not None and case.step is not None and case.step.admissible and \
            case.step.R_prime_gamma < cert.R and 0 < case.step.q_gamma < 1:
        out["tau_eps_base"] = _certified_ceiling(case, case.step.q_gamma)
        if out["tau_eps_base"] is not None:
            out.update(certificate="gd", q=case.step.q_gamma)
    rs = case.refined_step
    if rs is not None and rs.holds and 0 < 1.0 - 2.0 * rs.rate < 1:
        out["tau_eps_refined"] = _certified_ceiling(case, 1.0 - 2.0 * rs.rate)
        if out["certificate"] == "none" and out["tau_eps_refined"] is not None:
            out.update(certificate="gd_refined", q=1.0 - 2.0 * rs.rate)
    return out


def _certified_ceiling(case, q: float) -> int | None:
    try:
        return dipb.early_stopping_steps(case.r0, case.eps_eff_norm, q)
    except ValueError:  # the enclosure straddles an integer at every precision tried: no certified step
        return None


def _data_identity(case) -> dict:
    """``||A x_bar + eps_eff - y_eff||`` (rounding of the data construction: pseudo-inverse and range
    projector, class P) and the norms that scale it."""
    inst = case.inst
    return {"data_residual": float(np.linalg.norm(inst.A @ inst.x_bar + inst.eps - inst.y)),
            "y_norm": float(np.linalg.norm(case.y_raw)), "x_bar_norm": float(np.linalg.norm(inst.x_bar))}


def _early_row(kind, data, spec, case, gamma, run, steps, cfg, stop) -> dict:
    t, err, fit = run["times"], run["signal_error"], run["fit_error"]
    eps, sn = case.eps_eff_norm, case.sigma_n_A
    i_opt = int(np.argmin(err))
    dp = np.flatnonzero(fit <= cfg.dp_factor * eps)
    taus = [v for v in (stop["tau_eps_base"], stop["tau_eps_refined"]) if v is not None]
    tau_eps = min(taus) if taus else None
    row = {"kind": kind, "data": data, "n": spec.n, "m": spec.m, "k": spec.k, "d": spec.d, "cond": spec.cond,
           "noise_rel": spec.noise_rel, "seed": spec.seed, "gamma": gamma, "steps": steps,
           "record_every": cfg.record_every, "r0": case.r0, "eps_eff": eps, "sigma_n_A": sn, **stop,
           "tau_eps": tau_eps, "tau_dp": float(t[dp[0]]) if dp.size else None, "tau_opt": float(t[i_opt]),
           "err_0": float(err[0]), "err_dp": float(err[dp[0]]) if dp.size else None,
           "err_opt": float(err[i_opt]), "err_final": float(err[-1]),
           "least_squares_noise": float(np.linalg.norm(np.linalg.pinv(case.inst.A) @ case.inst.eps)),
           "u_shape": bool(err[i_opt] < 0.9 * err[-1]), "diverged_at": run["diverged_at"],
           **_data_identity(case)}
    if tau_eps is not None:
        after = t >= tau_eps
        if np.any(after):
            row.update(err_tau_eps=float(err[np.flatnonzero(after)[0]]),
                       max_err_after_tau_eps=float(np.max(err[after])),
                       max_fit_after_tau_eps=float(np.max(fit[after])))
        if sn > 0:
            row["signal_bound_after_tau_eps"] = 2.0 * eps / sn
    return row


def early_stopping_data(profile: str = "quick", seed: int = 0, *, config: EarlyStoppingConfig | None = None,
                        progress: Progress | None = None) -> dict:
    """What figure (c) plots, and its table.

    Returns
    -------
    dict
        ``config``, ``rows`` (one per run: certified ``tau_eps`` (smallest of Theorem GD and GD+, each
        an ``mpmath.iv``-certified ceiling), ``tau_DP = min{tau: ||r_tau|| <= 1.1 ||eps_eff||}`` and
        ``tau_opt = argmin ||x_tau - x_bar||`` at record resolution, errors there, the U-shape flag
        ``err(tau_opt) < 0.9 err(T)``, and for certified runs the largest error and fit after
        ``tau_eps`` with the bound ``2 ||eps_eff||/sigma_n(A)``), ``columns`` and ``curves`` (per row:
        ``times``, ``signal_error``, ``fit_error``).
    """
    cfg = config if config is not None else EARLY_STOPPING[check_profile(profile)]
    seed = check_seed(seed)
    loss = dip.make_loss("mse")
    groups = [("certified", c, nr) for c in cfg.cert_conds for nr in cfg.cert_noise]
    groups += [("descriptive", c, nr) for c in cfg.desc_conds for nr in cfg.desc_noise]
    rows, curves = [], []
    for gi, (kind, cond, noise) in enumerate(groups):
        if kind == "certified":
            data = "constructed" if cfg.cert_t_R is not None else "teacher"
            specs = [DIPSpec(n=cfg.n, m=cfg.m, k=cfg.cert_k, d=cfg.d, cond=cond, t_R=cfg.cert_t_R,
                             signal="teacher", noise_rel=noise, step_ball=cfg.cert_step_ball, seed=seed + r)
                     for r in range(cfg.cert_seeds)]
        else:
            data = "teacher"
            specs = [DIPSpec(n=cfg.n, m=cfg.m, k=cfg.desc_k, d=cfg.d, cond=cond, t_R=None, signal="teacher",
                             noise_rel=noise, seed=seed + r) for r in range(cfg.desc_seeds)]
        cases = [materialize(sp) for sp in specs]
        if kind == "certified":
            stops = [_stopping_steps(cs) for cs in cases]
            gammas = [cs.gamma for cs in cases]
            taus = [max(v for v in (st["tau_eps_base"], st["tau_eps_refined"]) if v is not None)
                    for st in stops if st["certificate"] != "none"]
            # Without any certified tau_eps in the batch the runs are descriptive-length.
            steps = min(cfg.cert_max_steps, math.ceil(cfg.cert_step_factor * max(taus))) if taus \
                else cfg.desc_steps
        else:
            stops = [{"tau_eps_base": None, "tau_eps_refined": None, "certificate": "none", "q": math.nan}
                     for _ in cases]
            gammas = [1.0 / (cs.norm_A ** 2 * cs.J_max ** 2) for cs in cases]
            steps = cfg.desc_steps
        runs = gd_batch([cs.inst for cs in cases], gammas, loss, steps, record_every=cfg.record_every)
        for sp, cs, g, run, st in zip(specs, cases, gammas, runs, stops, strict=True):
            rows.append(_early_row(kind, data, sp, cs, g, run, steps, cfg, st))
            curves.append({"times": run["times"], "signal_error": run["signal_error"],
                           "fit_error": run["fit_error"]})
        _release_caches(specs[0].k)
        tick(progress, gi + 1, len(groups), f"{kind} cond={cond:g} noise={noise:g}")
    return {"config": cfg, "seed": seed, "rows": rows, "columns": EARLY_COLUMNS, "curves": curves}


# --------------------------------------------------------------------------------------------
# (d) step-size sweep


@dataclasses.dataclass(frozen=True)
class StepSweepConfig:
    """Runs of figure (d): constructed ``R'/R = t_R``, GD for ``steps`` steps at ``gamma = c/L_nabla(R)``
    for ``c`` in ``L_grid`` and ``gamma = c/lambda_max(M_0)`` for ``c`` in ``lmax_grid``."""

    n: int = 10
    m: int = 6
    k: int = 1024
    d: int = 8
    t_R: float = 0.4
    seeds: int = 4
    steps: int = 1000
    cond: float = 2.0
    L_grid: tuple = (0.25, 0.5, 1.0, 1.5, 1.9, 1.99)
    lmax_grid: tuple = (0.5, 1.0, 1.5, 1.9, 2.0, 2.1, 2.5, 3.0, 5.0, 10.0, 30.0)


STEP_SWEEP = {
    "quick": StepSweepConfig(),
    "paper": StepSweepConfig(k=2 ** 13, seeds=20, steps=5000),
}
"""Spec §11 (iv) (``paper``, constructed data) and a small version (``quick``)."""

STEP_COLUMNS = ("grid", "multiplier", "n", "m", "k", "d", "cond", "t_R", "seed", "steps", "gamma",
                "gamma_L_nabla", "gamma_lambda_max", "L_nabla", "L_nabla_2R", "lambda_max_M0", "R",
                "R_prime", "R_prime_gamma", "q_gamma", "admissible", "certified", "refined_certified",
                "monotone", "first_increase", "max_drift_over_R_prime", "min_sigma_ratio",
                "final_loss_ratio", "proven_final_loss_ratio", "plugin_violated", "diverged_at")


def _above_floor(L, L0):
    return L >= GD_FLOOR * L0


def step_sweep_row(grid: str, mult: float, spec: DIPSpec, case, lmax: float, gamma: float, run: dict) -> dict:
    """One run of figure (d).

    ``monotone``: no step with ``L_{tau+1} > L_tau (1 + 1e-9) + 1e-14 L_0`` while ``L_tau >= 1e-24 L_0``
    (the §10.3 GD allowance and floor); ``plugin_violated``: the Theorem GD rate with ``L_nabla``
    replaced by ``lambda_max(M_0)`` (not a theorem) fails at some step (only for
    ``gamma lambda_max < 2``).
    """
    cert = case.cert
    L0 = float(run["loss"][0])
    L = run["loss"]
    live = _above_floor(L[:-1], L0)
    up = np.flatnonzero(live & (L[1:] > L[:-1] * (1 + GD_RTOL) + GD_ATOL * L0))
    step = dipb.step_constants(gamma, case.L_nabla_R, cert.R_prime, cert.kappa)
    refined = dipb.refined_step(gamma, case.L_nabla_2R, case.sigma0, case.sigmaA, cert.Delta, cert.R_prime)
    certified = bool(step.admissible and step.R_prime_gamma < cert.R)
    tau = run["times"]
    proven = step.q_gamma ** tau[-1] if certified else math.nan
    plugin = None
    if gamma * lmax < 2.0:
        q_p = 1.0 - 2.0 * gamma * (1.0 - gamma * lmax / 2.0) * cert.kappa
        ok = _above_floor(L, L0)
        plugin = bool(np.any(ok & (L > q_p ** tau * L0 * (1 + GD_RTOL) + GD_ATOL * L0)))
    return {"grid": grid, "multiplier": mult, "n": spec.n, "m": spec.m, "k": spec.k, "d": spec.d,
            "cond": spec.cond, "t_R": spec.t_R, "seed": spec.seed, "steps": int(tau[-1]), "gamma": gamma,
            "gamma_L_nabla": gamma * case.L_nabla_R, "gamma_lambda_max": gamma * lmax,
            "L_nabla": case.L_nabla_R, "L_nabla_2R": case.L_nabla_2R, "lambda_max_M0": lmax, "R": cert.R,
            "R_prime": cert.R_prime, "R_prime_gamma": step.R_prime_gamma, "q_gamma": step.q_gamma,
            "admissible": step.admissible, "certified": certified, "refined_certified": refined.holds,
            "monotone": up.size == 0, "first_increase": int(tau[up[0] + 1]) if up.size else None,
            "max_drift_over_R_prime": float(np.max(run["drift"]) / cert.R_prime),
            "min_sigma_ratio": float(np.min(run["sigma_min"]) / case.sigma0),
            "final_loss_ratio": float(L[-1] / L0), "proven_final_loss_ratio": proven,
            "plugin_violated": plugin, "diverged_at": run["diverged_at"]}


def step_sweep_data(profile: str = "quick", seed: int = 0, *, config: StepSweepConfig | None = None,
                    progress: Progress | None = None) -> dict:
    """What figure (d) plots, and its table (one row per (step, seed), :func:`step_sweep_row`)."""
    cfg = config if config is not None else STEP_SWEEP[check_profile(profile)]
    seed = check_seed(seed)
    loss = dip.make_loss("mse")
    specs = [DIPSpec(n=cfg.n, m=cfg.m, k=cfg.k, d=cfg.d, cond=cfg.cond, t_R=cfg.t_R, seed=seed + r)
             for r in range(cfg.seeds)]
    cases = [materialize(sp) for sp in specs]
    lmax = [float(np.linalg.eigvalsh(cs.inst.A @ dip.gram(cs.inst) @ cs.inst.A.T)[-1]) for cs in cases]
    jobs = [("gamma_L_nabla", c) for c in cfg.L_grid] + [("gamma_lambda_max", c) for c in cfg.lmax_grid]
    rows = []
    for j, (grid, mult) in enumerate(jobs):
        gammas = [mult / (cs.L_nabla_R if grid == "gamma_L_nabla" else lm) for cs, lm in zip(cases, lmax,
                                                                                                 strict=True)]
        runs = gd_batch([cs.inst for cs in cases], gammas, loss, cfg.steps, record_every=1)
        for sp, cs, lm, g, run in zip(specs, cases, lmax, gammas, runs, strict=True):
            rows.append(step_sweep_row(grid, mult, sp, cs, lm, g, run))
        tick(progress, j + 1, len(jobs), f"{grid} = {mult:g}")
    _release_caches(cfg.k)
    return {"config": cfg, "seed": seed, "rows": rows, "columns": STEP_COLUMNS}


# --------------------------------------------------------------------------------------------
# (e) underdetermined vacuity


@dataclasses.dataclass(frozen=True)
class UnderdeterminedConfig:
    """Runs of figure (e): teacher signal, noiseless, ``m`` in ``(m_under < n, m_over >= n)``."""

    n: int = 10
    m_under: int = 5
    m_over: int = 20
    k: int = 1024
    d: int = 8
    seeds: int = 3
    steps: int = 3000
    record_every: int = 30
    s_grid: tuple = (1e-1, 1e-2, 1e-3, 1e-4)
    cond: float = 2.0


UNDERDETERMINED = {
    "quick": UnderdeterminedConfig(),
    "paper": UnderdeterminedConfig(k=2 ** 15, seeds=20, steps=4000),
}
"""Spec §11 (v) (``paper``) and a small version (``quick``)."""


def _under_columns(s_grid) -> tuple:
    return ("regime", "n", "m", "k", "d", "cond", "seed", "rank_A", "sigma_n_A", "norm_A", "L_J", "sigma0",
            "teacher_interior", "delta_norm", *(f"ratio_s_{s:g}" for s in s_grid), "mu_upper_curve", "gamma",
            "steps", "signal_error_0", "signal_error_final", "fit_final", "trained_ratio",
            "signal_bound_final", "diverged_at", "data_residual", "y_norm", "x_bar_norm")


def curve_witness(case, s_grid, rng: np.random.Generator) -> dict:
    """``ratio(s) = ||A(x_s - x_bar)||/||x_s - x_bar||`` along ``x_s = G(z_star + s J_z^+ h)``.

    ``h`` is a unit vector of ``ker A`` when ``m < n`` (Proposition Vac: ``ratio(s) = O(s)``), a random
    unit vector otherwise (then ``ratio(s) >= sigma_n(A)``). ``J_z = V diag phi'(z_star)/sqrt k``.
    """
    inst = case.inst
    A, V, k = inst.A, inst.V, inst.k
    if case.rank_A < inst.n:
        h = np.linalg.svd(A)[2][case.rank_A]
    else:
        h = rng.standard_normal(inst.n)
        h /= np.linalg.norm(h)
    Jz = V * dip.activation(inst.activation).dphi(case.z_star) / math.sqrt(k)
    delta = Jz.T @ np.linalg.solve(Jz @ Jz.T, h)
    ratios = {}
    for s in s_grid:
        diff = dip.generator(inst, z=case.z_star + s * delta) - inst.x_bar
        ratios[s] = float(np.linalg.norm(A @ diff) / np.linalg.norm(diff))
    return {"delta_norm": float(np.linalg.norm(delta)), "ratios": ratios}


def underdetermined_data(profile: str = "quick", seed: int = 0, *,
                         config: UnderdeterminedConfig | None = None,
                         progress: Progress | None = None) -> dict:
    """What figure (e) plots, and its table.

    The signal-space bound is Rec-sig in regime (a), ``(||y_tau - y|| + ||eps||)/sigma_n(A)``
    (:func:`bounds.dip_two_layer.recovery_signal`); for ``m < n`` there is no admissible ``mu > 0``
    (Proposition Vac) and the bound is recorded as ``+inf``.

    Returns
    -------
    dict
        ``config``, ``rows`` (one per run), ``columns``, ``curves`` (per row: ``times``,
        ``signal_error``, ``fit_error``, ``signal_bound`` (``inf`` for ``m < n``)) and ``ratios`` (per
        row: ``ratio(s)`` over ``config.s_grid``).
    """
    cfg = config if config is not None else UNDERDETERMINED[check_profile(profile)]
    seed = check_seed(seed)
    loss = dip.make_loss("mse")
    rows, curves, ratios = [], [], []
    for j, m in enumerate((cfg.m_under, cfg.m_over)):
        specs = [DIPSpec(n=cfg.n, m=m, k=cfg.k, d=cfg.d, cond=cfg.cond, t_R=None, signal="teacher",
                         seed=seed + r) for r in range(cfg.seeds)]
        cases = [materialize(sp) for sp in specs]
        runs = gd_batch([cs.inst for cs in cases], [cs.gamma for cs in cases], loss, cfg.steps,
                        record_every=cfg.record_every)
        for sp, cs, run in zip(specs, cases, runs, strict=True):
            inst = cs.inst
            wit = curve_witness(cs, cfg.s_grid, np.random.default_rng(sp.seed))
            fit, err = run["fit_error"], run["signal_error"]
            try:
                bound = np.asarray(dipb.recovery_signal(fit, cs.eps_eff_norm, cs.sigma_n_A), dtype=float)
            except ValueError:  # mu = sigma_n(A) = 0: Proposition Vac, no finite bound
                bound = np.full_like(fit, math.inf)
            x_T = dip.generator(inst, z=run["z"])
            dist = float(np.linalg.norm(x_T - inst.x_bar))
            radius = (cs.cert.R_prime + float(np.linalg.norm(inst.W0))) if cs.cert is not None else math.nan
            row = {"regime": "m<n" if m < cfg.n else "m>=n", "n": sp.n, "m": m, "k": sp.k, "d": sp.d,
                   "cond": sp.cond, "seed": sp.seed, "rank_A": cs.rank_A, "sigma_n_A": cs.sigma_n_A,
                   "norm_A": cs.norm_A, "L_J": cs.L_J, "sigma0": cs.sigma0,
                   "teacher_interior": bool(float(np.linalg.norm(cs.z_star)) < radius),
                   "delta_norm": wit["delta_norm"],
                   **{f"ratio_s_{s:g}": wit["ratios"][s] for s in cfg.s_grid},
                   "mu_upper_curve": min(wit["ratios"].values()), "gamma": cs.gamma, "steps": cfg.steps,
                   "signal_error_0": float(err[0]), "signal_error_final": float(err[-1]),
                   "fit_final": float(fit[-1]),
                   "trained_ratio": float(np.linalg.norm(inst.A @ (x_T - inst.x_bar)) / dist) if dist > 0
                   else math.nan,
                   "signal_bound_final": float(bound[-1]), "diverged_at": run["diverged_at"],
                   **_data_identity(cs)}
            rows.append(row)
            curves.append({"times": run["times"], "signal_error": err, "fit_error": fit,
                           "signal_bound": bound})
            ratios.append(np.array([wit["ratios"][s] for s in cfg.s_grid]))
        _release_caches(cfg.k)
        tick(progress, j + 1, 2, f"m={m}")
    return {"config": cfg, "seed": seed, "rows": rows, "columns": _under_columns(cfg.s_grid),
            "curves": curves, "ratios": ratios}


# --------------------------------------------------------------------------------------------
# plots


LOSS_DRAW_FLOOR = 1e-30
ERROR_DRAW_FLOOR = 1e-18
ROUNDING_BAND = 1e-14
"""Shaded in (e): signal-space quantities of O(1) signals below ~1e-14 are rounding (there the
error may exceed the Rec-sig bound by the class-I allowance the tests use)."""


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 and math.isfinite(x) else math.nan


def _edges(x: np.ndarray) -> np.ndarray:
    if x.size == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def _cell_label(cell: dict) -> str:
    act = "" if cell["activation"] == "tanh" else f", {cell['activation']}"
    return f"n={cell['n']}, m={cell['m']}{act}"


def _marker(ax, x, y, xmax, **kw):
    """Overlay marker at ``x``; values beyond the axis are drawn at its edge as '>' with the value."""
    if not math.isfinite(x):
        return
    if x > xmax:
        ax.plot([xmax - 0.15], [y], marker=">", ls="none", ms=kw.get("ms", 7), color=kw.get("mec", "k"),
                clip_on=False)
        ax.text(xmax - 0.4, y + 0.3, f"2^{x:.1f}", fontsize=5, ha="right", color=kw.get("mec", "k"))
        return
    ax.plot([x], [y], ls="none", **kw)


def plot_phase_transition(data: dict) -> Figure:
    """Figure (a): certificate and convergence maps side by side, with the width predictions."""
    cfg = data["config"]
    cells = data["cells"]
    fig = _figure(12.0, 1.6 + 0.42 * len(cells))
    axes = fig.subplots(1, 2, sharey=True)
    x_all = [_log2(k) for c in cells for k in (*c["cert_k"], *c["conv_k"])]
    x_lo, x_hi = min(x_all) - 0.5, max(x_all) + 0.5
    over = [_log2(c[key]) for c in cells for key in ("k_half_pred", "k_D5", "k_profile")]
    x_max = max(x_hi, min(max((v for v in over if math.isfinite(v)), default=x_hi) + 0.5, x_hi + 6))
    mesh = None
    for ax, kind, title in ((axes[0], "cert", "(i-a) certificate P[R' < R] (GF)"),
                            (axes[1], "conv", f"(i-b) GD reaches L_T ≤ 1e-10 L_0 by T = {cfg.t_max}")):
        for i, cell in enumerate(cells):
            ks = cell[f"{kind}_k"]
            if ks.size == 0:
                continue
            xs = np.log2(ks)
            mesh = ax.pcolormesh(_edges(xs), [i - 0.5, i + 0.5], cell[f"{kind}_p"][None, :], cmap="viridis",
                                 vmin=0.0, vmax=1.0, shading="flat")
        ax.set_title(title, fontsize=9)
        ax.set_xlim(x_lo, x_max)
        ax.set_xlabel("log2 k")
        ax.set_facecolor("0.85")
    axes[0].set_yticks(range(len(cells)), [_cell_label(c) for c in cells], fontsize=7)
    axes[0].set_ylim(-0.5, len(cells) - 0.5)
    styles = {
        "cert_k_half": dict(marker="|", ms=12, mew=2.5, color="red", label="observed 50% point"),
        "k_half_pred": dict(marker="o", ms=6, mfc="white", mec="black", label="predicted k_1/2 (§9 RMS)"),
        "k_D5": dict(marker="^", ms=6, mfc="orange", mec="black", label="k_D5 (Theorem D5, δ0 = 0.1)"),
        "k_profile": dict(marker="X", ms=6, mfc="magenta", mec="black", label="profile (unverified, C=C'=1)"),
    }
    for i, cell in enumerate(cells):
        for key, st in styles.items():
            _marker(axes[0], _log2(cell[key]), i, x_max, **{k: v for k, v in st.items() if k != "label"})
        _marker(axes[1], _log2(cell["conv_k_half"]), i, x_max, marker="|", ms=12, mew=2.5, color="red")
        _marker(axes[1], _log2(cell["cert_k_half"]), i, x_max, marker="|", ms=12, mew=2.5, color="0.6")
        _marker(axes[1], _log2(cell["n"]), i, x_max, marker="s", ms=5, mfc="none", mec="cyan", mew=1.5)
        _marker(axes[1], _log2(cell["m"]), i, x_max, marker="D", ms=5, mfc="none", mec="white", mew=1.5)
    handles = [axes[0].plot([], [], ls="none", **st)[0] for st in styles.values()]
    axes[0].legend(handles=handles, fontsize=6, loc="lower left", framealpha=0.9)
    h2 = [axes[1].plot([], [], ls="none", marker="|", ms=10, mew=2.5, color="red",
                       label="empirical 50% point")[0],
          axes[1].plot([], [], ls="none", marker="|", ms=10, mew=2.5, color="0.6",
                       label="certificate 50% point (left)")[0],
          axes[1].plot([], [], ls="none", marker="s", ms=5, mfc="none", mec="cyan",
                       label="k = n (D1(iv))")[0],
          axes[1].plot([], [], ls="none", marker="D", ms=5, mfc="none", mec="white", label="k = m (D1b)")[0]]
    axes[1].legend(handles=h2, fontsize=6, loc="lower left", framealpha=0.9, facecolor="0.5")
    if mesh is not None:
        fig.colorbar(mesh, ax=list(axes), shrink=0.8, label="fraction of seeds")
    fig.suptitle(f"Phase transitions in the width: certificate vs empirical convergence\n"
                 f"(Rademacher V, tanh unless labelled, cond(A) = {cfg.cond:g}, sphere signal, noiseless "
                 f"MSE; {cfg.cert_seeds} (i-a) / {cfg.conv_seeds} (i-b) seeds per cell; seed {data['seed']});"
                 f" grey: not run", fontsize=9)
    return fig


def _t_key(row: dict) -> float:
    return row["t_R"] if row["t_R"] is not None else -1.0


def plot_tightness(data: dict) -> Figure:
    """Figure (b): observed over proven rates, path length over its bounds, ``sigma_min`` margin."""
    cfg = data["config"]
    rows = [r for r in data["rows"] if r.get("status") == "ok"]
    fig = _figure(13.0, 4.4)
    axes = fig.subplots(1, 3)
    cmap = matplotlib.colormaps["plasma"]
    groups = sorted({(r["data"], _t_key(r), r["m"]) for r in rows})
    t_vals = sorted({g[1] for g in groups if g[1] >= 0})
    markers = {m: mk for m, mk in zip(sorted({g[2] for g in groups}), "osD^v", strict=False)}

    def color(t_R):
        if t_R < 0:
            return "black"
        return cmap(0.1 + 0.8 * t_vals.index(t_R) / max(len(t_vals) - 1, 1))

    for data_kind, t_R, m in groups:
        sel = [r for r in rows if (r["data"], _t_key(r), r["m"]) == (data_kind, t_R, m)]
        ks = np.array(sorted({r["k"] for r in sel}))
        lab = (f"R'/R = {t_R:g}" if t_R >= 0 else "natural") + f", m = {m}"
        for ax, pairs in ((axes[0], (("rho_over_kappa", "-", True), ("rho_over_kappa_star", "--", False))),
                          (axes[1], (("path_over_R_prime", "-", True), ("path_over_ell_star", "--", False))),
                          (axes[2], (("min_sigma_over_bound", "-", True),))):
            for key, ls, filled in pairs:
                vals = []
                for k in ks:
                    if key == "min_sigma_over_bound":
                        v = [r["min_sigma_ratio"] / r["sqrt_one_minus_Delta"] for r in sel
                             if r["k"] == k and r["cert_gf_refined"]]
                    else:
                        v = [r.get(key) for r in sel if r["k"] == k]
                        v = [x for x in v if x is not None and math.isfinite(x)]
                    vals.append((np.median(v), np.min(v), np.max(v)) if v else (np.nan,) * 3)
                vals = np.array(vals)
                if not np.any(np.isfinite(vals[:, 0])):
                    continue
                ax.errorbar(ks, vals[:, 0], yerr=[vals[:, 0] - vals[:, 1], vals[:, 2] - vals[:, 0]], ls=ls,
                            marker=markers[m], ms=4, mfc=color(t_R) if filled else "white", color=color(t_R),
                            capsize=2, lw=1, label=lab if filled and ax is axes[0] else None)
    axes[0].axhline(1.0, color="gray", lw=0.8)
    axes[0].set_ylabel("ρ_emp / κ  (solid),  ρ_emp / κ_*  (dashed)")
    axes[0].set_title("observed rate / proven rate (≥ 1 proven; ρ_emp/κ ≥ κ_*/κ = 4(1 − Δ))", fontsize=8)
    axes[1].axhline(1.0, color="gray", lw=0.8)
    axes[1].set_ylabel("ℓ(∞) / R'  (solid),  ℓ(∞) / ℓ_*  (dashed)")
    axes[1].set_title("path length / proven bound (≤ 1 proven)", fontsize=8)
    axes[2].axhline(1.0, color="gray", lw=0.8)
    axes[2].set_ylabel("min_t σ_min(J) / σ_0  ÷  √(1 − Δ)")
    axes[2].set_title("Jacobian margin / GF+ bound σ_* (≥ 1 proven)", fontsize=8)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width k")
        ax.grid(alpha=0.3, which="both", lw=0.4)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"Tightness of the GF certificates (MSE; n = {cfg.n}, cond(A) = {cfg.cond:g}; constructed "
                 f"y with R'/R = t_R; median and range over {cfg.seeds} seeds; seed {data['seed']})",
                 fontsize=9)
    return fig


def plot_early_stopping(data: dict) -> Figure:
    """Figure (c): signal error against the GD step, with ``tau_eps``, ``tau_DP`` and ``tau_opt``."""
    cfg = data["config"]
    rows, curves = data["rows"], data["curves"]
    panels = sorted({(r["kind"], r["cond"]) for r in rows}, key=lambda p: (p[0] != "certified", p[1]))
    fig = _figure(4.4 * len(panels), 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    cmap = matplotlib.colormaps["viridis"]
    noises = sorted({r["noise_rel"] for r in rows})
    for ax, (kind, cond) in zip(axes, panels, strict=True):
        for row, cur in zip(rows, curves, strict=True):
            if (row["kind"], row["cond"]) != (kind, cond):
                continue
            col = cmap(0.15 + 0.7 * noises.index(row["noise_rel"]) / max(len(noises) - 1, 1))
            t = np.maximum(cur["times"], 1.0)
            first = row["seed"] == min(r["seed"] for r in rows if (r["kind"], r["cond"], r["noise_rel"]) ==
                                       (kind, cond, row["noise_rel"]))
            ax.loglog(t, cur["signal_error"], color=col, lw=1,
                      label=f"noise {row['noise_rel']:g}" if first else None)
            if row["tau_eps"] is not None:
                ax.axvline(row["tau_eps"], color=col, ls="--", lw=0.8,
                           label="τ_ε (certified, mpmath.iv)" if first else None)
                if row.get("signal_bound_after_tau_eps") is not None:
                    ax.axhline(row["signal_bound_after_tau_eps"], color=col, ls=":", lw=0.8,
                               label="2‖ε_eff‖/σ_n(A) (bound for τ ≥ τ_ε)" if first else None)
            if row["tau_dp"] is not None:
                ax.plot(max(row["tau_dp"], 1.0), row["err_dp"], "v", color=col, mec="black", ms=6,
                        label="τ_DP (‖r‖ ≤ 1.1‖ε_eff‖)" if first else None)
            ax.plot(max(row["tau_opt"], 1.0), row["err_opt"], "*", color=col, mec="black", ms=9,
                    label="τ_opt (min error)" if first else None)
        sel = [r for r in rows if (r["kind"], r["cond"]) == (kind, cond)]
        data_kind = sel[0]["data"]
        k = sel[0]["k"]
        ax.set_title(f"{kind} ({data_kind} data), cond(A) = {cond:g}, k = {k}", fontsize=8)
        ax.set_xlabel("GD step τ")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("signal error ‖x_τ − x̄‖")
    fig.suptitle(f"Early stopping with noise (n = {cfg.n}, m = {cfg.m}, MSE; certified runs: GD at "
                 f"γ = 1/L∇({cfg.cert_step_ball}); descriptive: γ = 1/(‖A‖²J_max²); records every "
                 f"{cfg.record_every} steps; seed {data['seed']})", fontsize=9)
    return fig


def plot_step_sweep(data: dict) -> Figure:
    """Figure (d): what GD does across steps, against ``gamma lambda_max(M_0)``."""
    cfg = data["config"]
    rows = data["rows"]
    fig = _figure(11.0, 7.6)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    x = np.array([r["gamma_lambda_max"] for r in rows])
    cert = np.array([r["certified"] for r in rows])
    adm = np.array([r["admissible"] for r in rows])
    ratio = np.median([r["lambda_max_M0"] / r["L_nabla"] for r in rows])
    edge_L = 2.0 * ratio
    edge_R = 2.0 * (1.0 - cfg.t_R) * ratio
    panels = (("monotone", "monotone descent (1 = yes)"),
              ("max_drift_over_R_prime", "max_τ ‖θ_τ − θ_0‖ / R'"),
              ("min_sigma_ratio", "min_τ σ_min(J(θ_τ)) / σ_0"),
              ("final_loss_ratio", f"L_T / L_0  (T = {cfg.steps})"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        y = np.array([float(r[key]) for r in rows])
        if key == "final_loss_ratio":
            # Losses below 1e-30 L_0 are rounding-level (and may be exactly 0): drawn at 1e-30.
            y = np.maximum(y, LOSS_DRAW_FLOOR)
        for mask, st, lab in ((cert, dict(color="tab:green", marker="o"), "certified (γ L∇ < 2, R'_γ < R)"),
                              (adm & ~cert, dict(color="tab:orange", marker="s"), "γ L∇ < 2 but R'_γ ≥ R"),
                              (~adm, dict(color="tab:red", marker="x"), "γ L∇ ≥ 2 (no theorem)")):
            if np.any(mask):
                ax.scatter(x[mask], y[mask], s=14, alpha=0.7, label=lab, **st)
        ax.axvspan(x.min() / 1.2, edge_R, color="tab:green", alpha=0.08)
        ax.axvline(edge_R, color="tab:green", ls="--", lw=0.8)
        ax.axvline(edge_L, color="tab:red", ls="--", lw=0.8)
        ax.axvline(2.0, color="black", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3, which="both", lw=0.4)
    axes[1].axhline(1.0 / cfg.t_R, color="gray", lw=0.8)
    axes[1].text(x.min(), 1.0 / cfg.t_R * 1.1, "R (ball of Lemma S / Weyl)", fontsize=6, color="gray")
    axes[1].set_yscale("log")
    axes[2].axhline(0.5, color="gray", lw=0.8)
    axes[3].set_yscale("log")
    axes[3].set_ylabel(f"L_T / L_0  (T = {cfg.steps}; ≤ {LOSS_DRAW_FLOOR:g} drawn at {LOSS_DRAW_FLOOR:g})",
                       fontsize=8)
    axes[0].legend(fontsize=6, loc="lower left")
    for ax in axes[2:]:
        ax.set_xlabel("γ λ_max(M_0)")
    trans = axes[0].get_xaxis_transform()
    axes[0].text(edge_R, 0.55, " R'_γ = R", fontsize=6, color="tab:green", transform=trans)
    axes[0].text(edge_L, 0.45, " γ L∇ = 2", fontsize=6, color="tab:red", transform=trans)
    axes[0].text(2.0, 0.35, " γ λ_max(M_0) = 2", fontsize=6, transform=trans)
    fig.suptitle(f"GD step-size sweep (n = {cfg.n}, m = {cfg.m}, k = {cfg.k}, constructed "
                 f"R'/R = {cfg.t_R:g}, {cfg.seeds} seeds, seed {data['seed']}); edges at the median "
                 f"λ_max(M_0)/L∇ = {ratio:.3f}",
                 fontsize=9)
    return fig


def plot_underdetermined(data: dict) -> Figure:
    """Figure (e): curve witness and trained runs, ``m < n`` (bound ``+inf``) next to ``m >= n``."""
    cfg = data["config"]
    rows, curves, ratios = data["rows"], data["curves"], data["ratios"]
    fig = _figure(11.0, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    s = np.array(cfg.s_grid)
    colors = {"m<n": "tab:red", "m>=n": "tab:blue"}
    seen = set()
    for row, cur, rat in zip(rows, curves, ratios, strict=True):
        reg = row["regime"]
        first = reg not in seen
        seen.add(reg)
        ax1.loglog(s, rat, "o-", color=colors[reg], ms=4, lw=1,
                   label=f"m = {row['m']} ({reg}): h ∈ ker A" if first and reg == "m<n"
                   else (f"m = {row['m']} ({reg}): random h" if first else None))
        if reg == "m>=n":
            ax1.axhline(row["sigma_n_A"], color=colors[reg], ls=":", lw=0.8,
                        label="σ_n(A) ≤ μ (m ≥ n)" if first else None)
        t = np.maximum(cur["times"], 1.0)
        # Errors below 1e-18 are rounding-level for O(1) signals (and may be exactly 0): drawn at 1e-18.
        ax2.loglog(t, np.maximum(cur["signal_error"], ERROR_DRAW_FLOOR), color=colors[reg], lw=1.2,
                   label=f"‖x_τ − x̄‖, m = {row['m']}" if first else None)
        ax2.loglog(t, np.maximum(cur["fit_error"], ERROR_DRAW_FLOOR), color=colors[reg], lw=0.8, ls=":",
                   label=f"‖y_τ − y‖, m = {row['m']}" if first else None)
        if np.all(np.isfinite(cur["signal_bound"])):
            ax2.loglog(t, np.maximum(cur["signal_bound"], ERROR_DRAW_FLOOR), color=colors[reg], lw=1, ls="--",
                       label="Rec-sig bound (‖y_τ − y‖ + ‖ε‖)/σ_n(A)" if first else None)
    under = [r for r, row in zip(ratios, rows, strict=True) if row["regime"] == "m<n"]
    if under:
        ax1.loglog(s, s * max(r[0] / s[0] for r in under), color="gray", lw=0.8, ls="--", label="slope 1")
    ax1.set_xlabel("s")
    ax1.set_ylabel("‖A(x_s − x̄)‖ / ‖x_s − x̄‖")
    ax1.set_title("curve witness x_s = G(z* + s J_z⁺ h): ratio → 0 means μ(x̄) = 0", fontsize=8)
    ax1.legend(fontsize=6)
    ax2.axhspan(ERROR_DRAW_FLOOR, ROUNDING_BAND, color="0.9", zorder=0, label="float64 rounding level")
    ax2.set_xlabel("GD step τ")
    ax2.set_title("trained runs (noiseless): for m < n the signal bound is +∞ (μ(x̄) = 0, Prop. Vac)",
                  fontsize=8)
    ax2.legend(fontsize=6, loc="lower left")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both", lw=0.4)
    fig.suptitle(f"Underdetermined signal bound is vacuous (n = {cfg.n}, "
                 f"m ∈ {{{cfg.m_under}, {cfg.m_over}}}, k = {cfg.k}, teacher x̄, {cfg.seeds} seeds, "
                 f"seed {data['seed']})", fontsize=9)
    return fig


# --------------------------------------------------------------------------------------------
# entry point

FIGURES = (
    ("dip_phase_transition", "(a) phase transitions", "phase", phase_transition_data, plot_phase_transition),
    ("dip_tightness", "(b) tightness", "tightness", tightness_data, plot_tightness),
    ("dip_early_stopping", "(c) early stopping", "early_stopping", early_stopping_data, plot_early_stopping),
    ("dip_stepsize_sweep", "(d) step sizes", "step_sweep", step_sweep_data, plot_step_sweep),
    ("dip_underdetermined", "(e) m < n", "underdetermined", underdetermined_data, plot_underdetermined),
)
"""``(file stem, progress label, configs key, data function, plot function)`` per figure."""


def make_figures(out_dir: str, profile: str = "quick", seed: int = 0, *, configs: dict | None = None,
                 show_progress: bool = True) -> list[str]:
    """Compute and write the five DIP figures, each as PNG and tidy CSV, as soon as it is done.

    Parameters
    ----------
    out_dir : str
        Output directory (created if missing).
    profile : {"quick", "paper"}
        Small grids (about a minute) or the §11 sizes (hours, progress on stderr).
    seed : int
        Base instance seed (run ``r`` of a cell uses ``seed + r``).
    configs : dict, optional
        Per-figure config overrides, keyed ``phase``, ``tightness``, ``early_stopping``,
        ``step_sweep``, ``underdetermined`` (e.g. tiny grids for tests).
    show_progress : bool
        Progress lines on stderr.

    Returns
    -------
    list of str
        The written paths, PNG then CSV, in the order (a)-(e).
    """
    check_profile(profile)
    check_seed(seed)
    configs = dict(configs or {})
    unknown = set(configs) - {key for _, _, key, _, _ in FIGURES}
    if unknown:
        raise ValueError(f"configs: unknown figure keys {sorted(unknown)}")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for stem, label, key, data_fn, plot_fn in FIGURES:
        progress = stderr_progress("dip", label) if show_progress else None
        data = data_fn(profile, seed, config=configs.get(key), progress=progress)
        png = os.path.join(out_dir, f"{stem}.png")
        csv_path = os.path.join(out_dir, f"{stem}.csv")
        # The table first: it is the record; the PNG is drawn from the same data.
        write_table(csv_path, data["rows"], data["columns"])
        plot_fn(data).savefig(png)
        paths += [png, csv_path]
    return paths
