"""Figures of the deep-linear family (``invbounds figures dln --out DIR``).

Three PNG figures, each computed by a data function (returning what the figure plots) and drawn
by a plot function (returning the matplotlib ``Figure``):

(a) ``dln_fig1a_noise_robustness.png``: the Figure-1a experiment (section 10.1): exact D5 relative
    test RMSE against the noise level ``nu`` for ``lambda = 0`` and ``lambda = 1``, the oracle
    curve, and Monte Carlo estimates with 2-standard-error bars;
(b) ``dln_two_phase.png``: the two-phase picture of the same runs: fit error and
    ``||M P_perp||_2`` against the iteration on log axes, with the D2 certificate
    ``rho^t ||W_{L:2}(t)||_2 ||W_1(0) P_perp||_2`` and the a-posteriori time ``T_D2(1/d_w)``;
(c) ``dln_stepsize_multiples.png``: the talk's step-size experiment (section 10.2),
    ``eta = k eta_hat`` for ``k`` in ``K_GRID``, against ``t`` and against ``k t``; divergent
    ``k`` are marked.

``profile="quick"`` uses scaled-down sizes (seconds); ``profile="paper"`` the Figure-1 sizes for
(a)/(b) and the section-10.2 sizes for (c) (minutes; progress on stderr). Plotting uses the Agg
canvas directly, never ``pyplot``, so no global backend state is touched. matplotlib is imported
at module level, so ``invbounds figures`` reports a missing matplotlib with its install hint.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from dynamics._validate import real
from verification.claims import dln_noise
from verification.dln_instances import DLNSpec, materialize
from verification.figures_common import check_profile, check_seed

FINE_NU = np.linspace(0.0, 1.0, 101)
"""Noise levels of the drawn exact curves (the protocol levels are marked on top)."""
K_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
"""Step multiples of section 10.2 [choice]."""
STEPSIZE_SPECS = {
    "quick": DLNSpec(d=40, m=20, s=3, n=30, L=4, d_w=60, lam=1.0),
    "paper": DLNSpec(d=100, m=50, s=5, n=100, L=5, d_w=200, lam=1.0),
}
"""Section 10.2 configuration (``paper``) and its CI-size version (``quick``, section 10.3 sizes)."""
STEPSIZE_CAP = {"quick": 10_000, "paper": 40_000}
"""``T_k = min(ceil(ln(1e4) / -ln rho_k), cap)``; the quick cap keeps the command in seconds."""
STEPSIZE_DECADES = 1e4
"""``T_k`` is the time for ``rho_k^t`` to fall by this factor (section 10.2)."""






def stderr_progress(label: str, delay: float = 1.0) -> Callable[[int, int], None]:
    """A ``progress(t, steps)`` callback for :func:`dynamics.deep_linear.run_gd` that keeps one
    line on stderr up to date, at most once a second and only once the run takes ``delay`` s.
    """
    t0 = time.perf_counter()
    state = {"shown": False, "last": -math.inf}

    def report(t: int, steps: int) -> None:
        now = time.perf_counter()
        # run_gd reports every max(1, steps // 50) steps below `steps`; this is the last report.
        final = t + max(1, steps // 50) > steps - 1
        if now - t0 < delay or (now - state["last"] < 1.0 and not final):
            return
        if final and not state["shown"]:
            return
        state["shown"], state["last"] = True, now
        sys.stderr.write(f"\r[invbounds figures dln] {label}: step {t}/{steps} ({now - t0:.0f}s)"
                         + ("\n" if final else ""))
        sys.stderr.flush()

    return report


# --------------------------------------------------------------------------------------------
# data


def noise_robustness_spec(profile: str = "quick", seed: int = 0) -> DLNSpec:
    """The weight-decay spec of figure (a)/(b): the claim's quick or Figure-1 configuration."""
    base = dln_noise.QUICK_SPEC if check_profile(profile) == "quick" else dln_noise.FIG1_SPEC
    return base.replace(seed=check_seed(seed))


def noise_robustness_data(profile: str = "quick", seed: int = 0, *, progress=None) -> dict:
    """What figure (a) plots.

    Returns
    -------
    dict
        ``spec``, ``eta``; ``nu`` (protocol levels) with the exact ``err_decay``, ``err_plain``,
        ``err_oracle`` there; ``nu_fine`` with ``fine_decay``, ``fine_plain``, ``fine_oracle``
        (the drawn curves); ``mc_decay``, ``mc_plain`` (Monte Carlo relative RMSE at the protocol
        levels) and ``mc_decay_bar``, ``mc_plain_bar`` (``(2, n)`` arrays: RMSE at mean -/+ 2
        standard errors of the MSE, the error bars); ``runs`` (the paired trajectories).
    """
    spec = noise_robustness_spec(profile, seed)
    cur = dln_noise.noise_curves(spec, progress=progress)
    runs = cur["runs"]
    A, R = runs.instance.data.A, runs.instance.data.R
    M1, M0 = dl.end_to_end(runs.decay.weights), dl.end_to_end(runs.plain.weights)
    sig = [dln_noise.noise_sigma(A, R, v) for v in FINE_NU]
    out = {"spec": spec, "eta": runs.instance.eta, "runs": runs, "nu": cur["nu"],
           "err_decay": cur["err_decay"], "err_plain": cur["err_plain"],
           "err_oracle": cur["err_oracle"], "nu_fine": FINE_NU,
           "fine_decay": np.array([dln_noise.relative_test_rmse(M1, A, R, s) for s in sig]),
           "fine_plain": np.array([dln_noise.relative_test_rmse(M0, A, R, s) for s in sig]),
           "fine_oracle": np.array([dln_noise.oracle_relative_rmse(A, R, s) for s in sig])}
    for key in ("decay", "plain"):
        mc = cur[f"mc_{key}"]
        out[f"mc_{key}"] = np.sqrt(mc.mean / spec.s)
        lo = np.sqrt(np.maximum(mc.mean - 2 * mc.stderr, 0.0) / spec.s)
        hi = np.sqrt((mc.mean + 2 * mc.stderr) / spec.s)
        out[f"mc_{key}_bar"] = np.vstack([lo, hi])
        out["n_test"] = mc.n_test
    return out


def two_phase_data(profile: str = "quick", seed: int = 0, *, progress=None) -> dict:
    """What figure (b) plots (the same paired runs as figure (a)).

    Returns
    -------
    dict
        ``spec``, ``eta``, ``rho``; ``t`` (record iterations ``>= 1``, for log axes);
        ``fit_decay``, ``fit_plain`` (``||M Y - X||_F``), ``off_decay``, ``off_plain``
        (``||M P_perp||_2``), ``cert_decay``, ``cert_plain`` (the D2 certificate
        ``rho^t ||W_{L:2}(t)||_2 ||W_1(0) P_perp||_2``, ``rho = 1`` for ``lambda = 0``);
        ``eps = 1/d_w`` and ``T_D2`` (:func:`bounds.dln_weight_decay.T_D2` with ``B_max`` from the
        records).
    """
    spec = noise_robustness_spec(profile, seed)
    runs = dln_noise.paired_runs(spec, progress)
    inst = runs.instance
    Q = dl.range_basis(inst.data.Y, spec.s)
    W1 = inst.weights0[0]
    w1p0 = float(np.linalg.norm(W1 - (W1 @ Q) @ Q.T, 2))
    times = runs.decay.times
    keep = times >= 1
    rho = inst.rho
    cert_decay = rho**times * runs.decay["tail_norm"] * w1p0
    cert_plain = runs.plain["tail_norm"] * w1p0
    eps = 1.0 / spec.d_w
    b_max = float(np.max(runs.decay["tail_norm"]) * w1p0)
    return {"spec": spec, "eta": inst.eta, "rho": rho, "t": times[keep],
            "fit_decay": runs.decay["fit_error"][keep], "fit_plain": runs.plain["fit_error"][keep],
            "off_decay": runs.decay["off_subspace_norm"][keep],
            "off_plain": runs.plain["off_subspace_norm"][keep],
            "cert_decay": cert_decay[keep], "cert_plain": cert_plain[keep], "eps": eps,
            "T_D2": dlb.T_D2(eps, rho, b_max), "x_norm": float(np.linalg.norm(inst.data.X))}


_STEPSIZE_CACHE: dict[tuple, dict] = {}


def stepsize_steps(rho: float, cap: int) -> int:
    """``T_k = min(ceil(ln(1e4) / -ln rho_k), cap)`` (section 10.2); ``cap`` if ``rho_k <= 0``."""
    if not 0.0 < rho < 1.0:
        return cap
    return min(math.ceil(math.log(STEPSIZE_DECADES) / -math.log(rho)), cap)


def stepsize_data(profile: str = "quick", seed: int = 0, *, ks=K_GRID,
                  progress_factory: Callable[[str], Callable | None] | None = None) -> dict:
    """What figure (c) plots: one GD run per step multiple ``k`` (same data and initialization).

    Returns
    -------
    dict
        ``spec`` (the base spec), ``eta_hat``, ``ks``, and per ``k`` in ``runs`` a dict with
        ``steps`` (``T_k``), ``t`` (record iterations ``>= 1``), ``fit``, ``off`` (records),
        ``rho``, ``diverged`` (bool) and ``diverged_at`` (iteration or ``None``). A divergent run is
        re-run up to the step before divergence, so its curve shows the blow-up. Results are
        cached per ``(profile, seed, ks)`` (figure and tests share them); do not mutate them.
    """
    base = STEPSIZE_SPECS[check_profile(profile)].replace(seed=check_seed(seed))
    ks = tuple(float(real("ks", k, minimum=0.0, strict=True)) for k in ks)
    key = (profile, base.seed, ks)
    if key in _STEPSIZE_CACHE:
        return _STEPSIZE_CACHE[key]
    cap = STEPSIZE_CAP[profile]
    runs = {}
    eta_hat = None
    for k in ks:
        spec = base.replace(k=float(k))
        inst = materialize(spec)
        eta_hat = inst.eta_hat.value
        steps = stepsize_steps(inst.rho, cap)
        prog = progress_factory(f"(c) k={k:g}") if progress_factory else None
        kw = dict(eta=inst.eta, lam=spec.lam, a=inst.a, c=inst.c, update=spec.update)
        diverged_at = None
        try:
            traj = dl.run_gd(inst.data.X, inst.data.Y, inst.weights0, steps=steps, progress=prog,
                             **kw)
        except dl.DivergenceError as exc:
            diverged_at = exc.iteration
            traj = dl.run_gd(inst.data.X, inst.data.Y, inst.weights0,
                             steps=max(exc.iteration - 1, 1), **kw)
        keep = traj.times >= 1
        runs[float(k)] = {"steps": steps, "t": traj.times[keep], "fit": traj["fit_error"][keep],
                          "off": traj["off_subspace_norm"][keep], "rho": inst.rho,
                          "diverged": diverged_at is not None, "diverged_at": diverged_at}
    out = {"spec": base, "eta_hat": eta_hat, "ks": ks, "runs": runs, "cap": cap}
    _STEPSIZE_CACHE[key] = out
    while len(_STEPSIZE_CACHE) > 4:
        _STEPSIZE_CACHE.pop(next(iter(_STEPSIZE_CACHE)))
    return out


# --------------------------------------------------------------------------------------------
# plots


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _sizes(spec: DLNSpec) -> str:
    return f"d={spec.d}, m={spec.m}, s={spec.s}, L={spec.L}, d_w={spec.d_w}, n={spec.n}"


def plot_noise_robustness(data: dict) -> Figure:
    """Figure (a): relative test RMSE against ``nu``, ``lambda = 0`` vs ``lambda = 1`` and oracle."""
    spec = data["spec"]
    i1 = int(np.argmin(np.abs(data["nu"] - 1.0)))
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    ax.plot(data["nu_fine"], data["fine_plain"], color="tab:red", label=r"$\lambda=0$ (exact D5)")
    ax.plot(data["nu_fine"], data["fine_decay"], color="tab:blue",
            label=rf"$\lambda={spec.lam:g}$ (exact D5)")
    ax.plot(data["nu_fine"], data["fine_oracle"], color="black", ls="--",
            label=r"oracle $R(AR)^\dagger$")
    for key, color in (("plain", "tab:red"), ("decay", "tab:blue")):
        mc, bar = data[f"mc_{key}"], data[f"mc_{key}_bar"]
        ax.errorbar(data["nu"], mc, yerr=np.abs(bar - mc), fmt="o", ms=4, mfc="white",
                    color=color, capsize=2, lw=1,
                    label=f"Monte Carlo ±2 SE ({data['n_test']} pairs/level)" if key == "decay"
                    else None)
    ax.set_xlabel(r"relative noise level $\nu$  ($\sigma = \nu\,\|AR\|_F/\sqrt{m}$)")
    ax.set_ylabel("relative test RMSE  err(ν)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Noise robustness with and without weight decay (Fig. 1a protocol)", fontsize=11)
    ax.set_title(f"{_sizes(spec)}; λ ∈ {{0, {spec.lam:g}}}, η = {spec.k:g}·η̂ = {data['eta']:.3g},"
                 f"\nT = {spec.steps} iterations, seed {spec.seed}; err_0(1)/err_1(1) = "
                 f"{data['err_plain'][i1] / data['err_decay'][i1]:.2f}", fontsize=8)
    return fig


def plot_two_phase(data: dict) -> Figure:
    """Figure (b): fit error and ``||M P_perp||_2`` against the iteration, with the D2 certificate."""
    spec = data["spec"]
    fig = _figure(10.0, 4.4)
    ax1, ax2 = fig.subplots(1, 2)
    t = data["t"]
    ax1.loglog(t, data["fit_decay"], color="tab:blue", label=rf"$\lambda={spec.lam:g}$")
    ax1.loglog(t, data["fit_plain"], color="tab:red", ls="--", label=r"$\lambda=0$")
    ax1.set_xlabel("iteration t")
    ax1.set_ylabel(r"fit error $\|W_{L:1}Y-X\|_F$")
    ax1.set_title("training fit (Phase 1: fast fit; Phase 2: plateau)", fontsize=9)
    ax2.loglog(t, data["off_decay"], color="tab:blue", label=rf"$\|MP_\perp\|_2$, $\lambda={spec.lam:g}$")
    ax2.loglog(t, data["cert_decay"], color="tab:blue", ls=":", lw=2,
               label=r"D2: $\rho^t\|W_{L:2}(t)\|_2\|W_1(0)P_\perp\|_2$")
    ax2.loglog(t, data["off_plain"], color="tab:red", ls="--", label=r"$\|MP_\perp\|_2$, $\lambda=0$")
    ax2.loglog(t, data["cert_plain"], color="tab:red", ls=":", lw=1,
               label=r"D2 with $\rho=1$ ($\lambda=0$)")
    ax2.axhline(data["eps"], color="gray", lw=0.8)
    ax2.text(t[0], data["eps"] * 1.15, r"$\varepsilon = 1/d_w$", fontsize=7, color="gray")
    if data["T_D2"] <= t[-1]:
        ax2.axvline(data["T_D2"], color="gray", ls="-.", lw=0.8)
        ax2.text(data["T_D2"], data["eps"] * 3, r"$T_{D2}(\varepsilon)$ ", fontsize=7, color="gray",
                 ha="right")
    else:
        ax2.text(t[0], data["eps"] / 1.6, rf"$T_{{D2}}(\varepsilon)$ = {data['T_D2']} > T", fontsize=7,
                 color="gray")
    ax2.set_xlabel("iteration t")
    ax2.set_ylabel(r"off-subspace norm $\|W_{L:1}P_\perp\|_2$")
    ax2.set_title("adaptation to the latent subspace", fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=7)
    fig.suptitle(f"Two phases of GD with weight decay: {_sizes(spec)}, λ = {spec.lam:g} (and 0), "
                 f"η = {spec.k:g}·η̂ = {data['eta']:.3g}, T = {spec.steps} iterations, "
                 f"seed {spec.seed}", fontsize=9)
    return fig


def plot_stepsize(data: dict) -> Figure:
    """Figure (c): fit error and ``||M P_perp||_2`` for ``eta = k eta_hat``, against ``t`` and ``k t``."""
    spec = data["spec"]
    fig = _figure(10.0, 7.6)
    axes = fig.subplots(2, 2)
    cmap = matplotlib.colormaps["viridis"]
    ks = data["ks"]
    for i, k in enumerate(ks):
        run = data["runs"][k]
        color = cmap(i / max(len(ks) - 1, 1))
        label = f"k={k:g}, T={run['steps']}" if not run["diverged"] else \
            f"k={k:g}: diverged at t={run['diverged_at']}"
        for row, key in enumerate(("fit", "off")):
            for col, scale in enumerate((1.0, k)):
                ax = axes[row, col]
                ax.loglog(run["t"] * scale, run[key], color=color, ls="--" if run["diverged"] else "-",
                          label=label if (row, col) == (0, 0) else None)
                if run["diverged"]:
                    ax.plot(run["t"][-1] * scale, run[key][-1], "x", color="red", ms=8, mew=2)
    axes[0, 0].set_ylabel(r"fit error $\|W_{L:1}Y-X\|_F$")
    axes[1, 0].set_ylabel(r"$\|W_{L:1}P_\perp\|_2$")
    for row in range(2):
        axes[row, 0].set_xlabel("iteration t")
        axes[row, 1].set_xlabel("rescaled time k·t")
    for ax in axes.ravel():
        ax.grid(alpha=0.3, which="both", lw=0.4)
    axes[0, 0].legend(fontsize=7, title="red x: divergent (fit error > 1e3·max(r(0), ‖X‖_F)\n"
                      "or non-finite; curve up to the step before)", title_fontsize=7)
    fig.suptitle(f"Step-size multiples η = k·η̂ (η̂ = {data['eta_hat']:.3g}, gn_bound): "
                 f"{_sizes(spec)}, λ = {spec.lam:g}, seed {spec.seed}\n"
                 f"T_k = min(⌈ln(1e4)/(−ln ρ_k)⌉, {data['cap']}) iterations; "
                 f"right column: curves against k·t collapse", fontsize=9)
    return fig


# --------------------------------------------------------------------------------------------
# entry point


def make_figures(out_dir: str, profile: str = "quick", seed: int = 0) -> list[str]:
    """Compute and write the three deep-linear figures as PNG files.

    Parameters
    ----------
    out_dir : str
        Output directory (created if missing).
    profile : {"quick", "paper"}
        Scaled-down sizes (seconds) or the paper's sizes (minutes, progress on stderr).
    seed : int
        Instance seed (data, initialization and test pairs).

    Returns
    -------
    list of str
        The written paths, in the order (a), (b), (c).
    """
    check_profile(profile)
    check_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    progress = stderr_progress("(a)/(b) lambda=0 and lambda>0 runs")
    paths = []
    jobs = (("dln_fig1a_noise_robustness.png",
             lambda: plot_noise_robustness(noise_robustness_data(profile, seed, progress=progress))),
            ("dln_two_phase.png", lambda: plot_two_phase(two_phase_data(profile, seed))),
            ("dln_stepsize_multiples.png",
             lambda: plot_stepsize(stepsize_data(profile, seed, progress_factory=stderr_progress))))
    for name, job in jobs:
        fig = job()
        path = os.path.join(out_dir, name)
        fig.savefig(path)
        paths.append(path)
    return paths
