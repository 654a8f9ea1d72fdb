"""DIP figures (``invbounds figures dip``): files, tables, and facts the plotted data must satisfy.

Every figure is computed once on tiny grids (module fixture). The tests then check that
:func:`make_figures` writes each PNG and tidy CSV, that the CSV is the data behind the figure, and
that the rows satisfy theorems of spec ``dip.md`` on the runs where their hypotheses hold (certified
runs): these can fail if the dynamics, the certificate constants or the figure code are wrong.
Allowances follow spec §10.3 (GD ``(1 + 1e-9)`` relative ``+ 1e-14`` scale, GF ``(1 + 1e-6)``
relative ``+ 1e-9`` scale) plus the float64 classes of :mod:`verification.tolerance`.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from bounds import dip_two_layer as dipb
from dynamics import dip_two_layer as dip
from verification import figures_dip as figs
from verification import tolerance as tol
from verification.dip_instances import DIPSpec, materialize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GD_RTOL, GD_ATOL = 1e-9, 1e-14
GF_RTOL, GF_ATOL = 1e-6, 1e-9

TINY = {
    # n = m = 3 with cond(A) = 1 certifies GD at k = 4096, so "certified => converged" is exercised.
    "phase": figs.PhaseConfig(cert_cells=((3, 3, "tanh"), (4, 2, "tanh")), conv_cells=((3, 3, "tanh"),),
                              cert_log2k=(4, 8, 12), conv_k=(2, 8, 4096), cert_seeds=6, conv_seeds=6,
                              t_max=2000, cond=1.0),
    "tightness": figs.TightnessConfig(n=4, ms=(2, 8), ks=(64, 256), t_Rs=(0.5, 1.5), seeds=2),
    "early_stopping": figs.EarlyStoppingConfig(n=4, m=8, cert_k=128, cert_conds=(3.0,), cert_noise=(0.2,),
                                               cert_seeds=2, desc_k=128, desc_conds=(10.0,), desc_seeds=2,
                                               desc_steps=2000),
    "step_sweep": figs.StepSweepConfig(n=4, m=3, k=128, seeds=2, steps=300, L_grid=(0.5, 1.5, 1.99),
                                       lmax_grid=(1.0, 2.5, 30.0)),
    "underdetermined": figs.UnderdeterminedConfig(n=6, m_under=3, m_over=12, k=256, seeds=2, steps=1500),
}
DATA_FUNCTIONS = {key: fn for _, _, key, fn, _ in figs.FIGURES}


@pytest.fixture(scope="module")
def data():
    return {key: DATA_FUNCTIONS[key]("quick", 0, config=cfg) for key, cfg in TINY.items()}


def _rows(data, key, **match):
    return [r for r in data[key]["rows"] if all(r.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------------------------
# files and tables


def test_make_figures_writes_every_png_and_table(tmp_path, data):
    out = str(tmp_path / "figs")
    paths = figs.make_figures(out, profile="quick", seed=0, configs=TINY, show_progress=False)
    stems = [stem for stem, *_ in figs.FIGURES]
    assert [os.path.basename(p) for p in paths] == [f"{s}.{ext}" for s in stems for ext in ("png", "csv")]
    for stem, (_, _, key, _, _) in zip(stems, figs.FIGURES, strict=True):
        with open(os.path.join(out, f"{stem}.png"), "rb") as fh:
            head = fh.read()
        assert head[:8] == PNG_SIGNATURE and len(head) > 10_000, stem
        table = figs.read_table(os.path.join(out, f"{stem}.csv"))
        rows = data[key]["rows"]
        # One row per run, with its seed, and the CSV is exactly the data behind the figure
        # (floats are written with repr, so they round-trip).
        assert len(table) == len(rows) > 0
        assert all(isinstance(r["seed"], int) for r in table)
        for got, want in zip(table, rows, strict=True):
            for col in data[key]["columns"]:
                a, b = got[col], want.get(col)
                if isinstance(b, float) and math.isnan(b):
                    assert isinstance(a, float) and math.isnan(a), (stem, col)
                elif isinstance(b, float | int) and not isinstance(b, bool):
                    assert a == b, (stem, col, a, b)
                else:
                    assert a == b or (a is None and b is None), (stem, col, a, b)


def test_make_figures_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        figs.make_figures(str(tmp_path), profile="huge")
    with pytest.raises(ValueError, match="seed"):
        figs.make_figures(str(tmp_path), seed=-1)
    with pytest.raises(ValueError, match="configs"):
        figs.make_figures(str(tmp_path), configs={"nonsense": None})


def test_table_round_trip(tmp_path):
    rows = [{"a": 1, "b": 0.1 + 0.2, "c": math.inf, "d": True, "e": None, "f": "x"}]
    path = figs.write_table(str(tmp_path / "t.csv"), rows, ("a", "b", "c", "d", "e", "f"))
    assert figs.read_table(path) == rows


# --------------------------------------------------------------------------------------------
# GD helpers (per-member steps through run_gd_batch)


def test_gd_batch_with_member_steps_equals_single_runs():
    specs = [DIPSpec(n=4, m=6, k=64, d=3, t_R=None, seed=s) for s in range(3)]
    cases = [materialize(sp) for sp in specs]
    gammas = [0.3, 0.7, 1.1]
    loss = dip.make_loss("mse")
    batch = figs.gd_batch([c.inst for c in cases], gammas, loss, 200, record_every=10)
    for case, gamma, got in zip(cases, gammas, batch, strict=True):
        ref = dip.run_gd(case.inst, loss, gamma, 200, record_every=10)
        np.testing.assert_array_equal(got["times"], ref.times)
        # The rescaled data differ from the original at rounding level (u relative) only, so each
        # step differs by ~u times the size of the state; over 200 steps that accumulates to at most
        # ~200 u ~ 5e-14 of the scale (measured: ~1e-16 absolute on the residual), hence atol 1e-12
        # of the scale, plus 1e-9 relative for the quantities that do not decay.
        r0 = ref.records["fit_error"][0]
        np.testing.assert_allclose(got["fit_error"], ref.records["fit_error"], rtol=1e-9, atol=1e-12 * r0)
        np.testing.assert_allclose(np.sqrt(2 * got["loss"]), ref.records["fit_error"], rtol=1e-9,
                                   atol=1e-12 * r0)
        for name in ("drift", "path_length", "signal_error"):
            scale = float(np.max(np.abs(ref.records[name])))
            np.testing.assert_allclose(got[name], ref.records[name], rtol=1e-9, atol=1e-12 * scale,
                                       err_msg=name)


def test_gd_until_matches_the_full_run():
    specs = [DIPSpec(n=4, m=4, k=k, d=3, t_R=None, seed=1) for k in (8, 512)]
    cases = [materialize(sp) for sp in specs]
    loss = dip.make_loss("mse")
    for case in cases:
        full = figs.gd_batch([case.inst], [case.gamma], loss, 1200, record_every=10)[0]
        ratio = full["loss"] / full["loss"][0]
        hit = np.flatnonzero(ratio <= figs.CONVERGED_RATIO)
        # Chunks of 70 steps (not a multiple of the record spacing) continue from the weights.
        got = figs.gd_until([case.inst], [case.gamma], loss, 1200, record_every=10, chunk=70)[0]
        if hit.size:
            assert got["converged"] and abs(got["steps_to_tol"] - full["times"][hit[0]]) <= 10
        else:
            assert not got["converged"] and got["steps_to_tol"] == math.inf
            np.testing.assert_allclose(got["final_loss_ratio"], ratio[-1], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# (a) phase transitions


def test_certificate_quantities_agree_with_materialize():
    for spec in (DIPSpec(n=5, m=3, k=512, d=4, t_R=None, seed=2), DIPSpec(n=4, m=8, k=64, t_R=None, seed=3),
                 DIPSpec(n=6, m=6, k=4, d=3, t_R=None, seed=0)):
        case = materialize(spec)
        q = figs.certificate_quantities(dip.gram(case.inst), dip.generator(case.inst), case.L_J, case.J_max,
                                        case.inst.A, case.y_raw, k=spec.k)
        assert q["sigma0"] == case.sigma0 and q["s0"] == pytest.approx(case.s0, rel=1e-12, abs=0)
        assert q["psi0"] == pytest.approx(case.r0, rel=1e-12)
        if case.cert is None:
            assert q["ratio"] == math.inf and not q["cert_gf"]
            continue
        for key, want in (("R", case.cert.R), ("R_prime", case.cert.R_prime), ("L_nabla", case.L_nabla_R)):
            assert q[key] == pytest.approx(want, rel=1e-10), key
        assert q["cert_gf"] == case.cert.base


def test_network_sample_constants_and_law():
    n, k = 3, 64
    consts = dipb.activation_constants("tanh")
    Ks = []
    for s in range(300):
        net = figs.network_sample(n, k, s)
        # Rademacher columns have norm sqrt(n) exactly: L_J = B_2 sqrt(n/k) (Lemma D2).
        assert net["L_J"] == pytest.approx(consts.B2 * math.sqrt(n / k), rel=1e-15)
        Ks.append(net["K0"])
    Ks = np.array(Ks)
    # E K_0 = C_phi'^2 I (spec §12 dip.ntk_expectation): every entry within 5 standard errors.
    mean, se = Ks.mean(axis=0), Ks.std(axis=0, ddof=1) / math.sqrt(len(Ks))
    assert np.all(np.abs(mean - consts.C_dphi ** 2 * np.eye(n)) <= 5 * se)


def test_phase_transition_rows(data):
    cert_rows = _rows(data, "phase", kind="certificate")
    conv_rows = _rows(data, "phase", kind="convergence")
    cfg = TINY["phase"]
    assert len(cert_rows) == len(cfg.cert_cells) * len(cfg.cert_log2k) * cfg.cert_seeds
    assert len(conv_rows) == len(cfg.conv_cells) * len(cfg.conv_k) * cfg.conv_seeds
    for r in data["phase"]["rows"]:
        # Implications between the certificates: R'_gamma = 2R' < R at gamma = 1/L_nabla(R) gives
        # R' < R, which gives R' < 2R (spec §6-§7).
        assert (not r["cert_gd"]) or r["cert_gf"]
        assert (not r["cert_gf"]) or r["cert_gf_refined"]
        if r["k"] < r["n"]:  # rank J <= k < n (Lemma D1(iv))
            assert r["sigma0"] == 0.0 and not r["cert_gf_refined"]
    # Same seed, same (n, m): the sampled and the GD instance share the operator (materialize's
    # operator stream), so sigma_A and ||A|| agree exactly.
    for c in conv_rows:
        for r in cert_rows:
            if (r["n"], r["m"], r["seed"]) == (c["n"], c["m"], c["seed"]):
                assert (r["sigma_A"], r["norm_A"]) == (c["sigma_A"], c["norm_A"])


def test_certified_runs_converge(data):
    conv_rows = _rows(data, "phase", kind="convergence")
    certified = [r for r in conv_rows if r["certified_converges"]]
    assert certified, "the tiny grid must contain GD-certified runs (else this test is vacuous)"
    # Theorem GD item 4 / GD+: a certificate whose linear rate reaches 1e-10 L_0 by t_max implies
    # convergence by t_max; per run, and hence per (cell, k) the certified fraction never exceeds
    # the converged fraction on the same seeds.
    for r in certified:
        assert r["converged"] and r["steps_to_tol"] <= r["steps_certified"] + r["record_every"], r
    for k in {r["k"] for r in conv_rows}:
        sel = [r for r in conv_rows if r["k"] == k]
        assert sum(r["certified_converges"] for r in sel) <= sum(r["converged"] for r in sel)
    # GD with k < n never has sigma_0 > 0 and no certificate applies there.
    assert not any(r["certified_converges"] for r in conv_rows if r["k"] < r["n"])


def test_phase_transition_cells_and_plot(data):
    d = data["phase"]
    for cell in d["cells"]:
        for kind, key in (("cert", "cert_gf"), ("conv", "converged")):
            rows = [r for r in d["rows"] if (r["n"], r["m"], r["activation"]) == (cell["n"], cell["m"],
                                                                                    cell["activation"])
                    and r["kind"] == ("certificate" if kind == "cert" else "convergence")]
            for k, p in zip(cell[f"{kind}_k"], cell[f"{kind}_p"], strict=True):
                sel = [r[key] for r in rows if r["k"] == k]
                assert p == sum(sel) / len(sel)
            if len(cell[f"{kind}_k"]):
                assert np.all(cell[f"{kind}_lo"] <= cell[f"{kind}_p"])
                assert np.all(cell[f"{kind}_p"] <= cell[f"{kind}_hi"])
    fig = figs.plot_phase_transition(d)
    drawn = [np.asarray(c.get_array()).ravel() for ax in fig.axes[:2] for c in ax.collections]
    for cell in d["cells"]:
        for kind in ("cert", "conv"):
            if len(cell[f"{kind}_k"]):
                assert any(a.shape == cell[f"{kind}_p"].shape and np.array_equal(a, cell[f"{kind}_p"])
                           for a in drawn)


# --------------------------------------------------------------------------------------------
# (b) tightness


def test_tightness_rows_satisfy_gf_theorems(data):
    rows = _rows(data, "tightness", status="ok")
    assert len(rows) == len(data["tightness"]["rows"]) and rows
    refined = [r for r in rows if r["cert_gf_refined"]]
    base = [r for r in rows if r["cert_gf"]]
    assert refined and base and len(base) < len(refined)  # t_R = 1.5: refined only
    for r in rows:
        # Constructed data: R'/R = t_R exactly (spec §10.5), to rounding.
        assert abs(r["R_prime"] / r["R"] - r["t_R"]) <= 1e-10 * r["t_R"]
    for r in refined:
        t, x = r["t_obs"], r["r_obs_ratio"]
        # GF+ rate at t_obs: ||r||/||r_0|| <= e^{-kappa_star t}(1 + 1e-6) + 1e-9 ...
        assert x <= math.exp(-r["kappa_star"] * t) * (1 + GF_RTOL) + GF_ATOL
        # ... i.e. rho_emp >= kappa_star up to (ln(1 + 1e-6) - ln(1 - 1e-9/x))/t.
        allow = (math.log1p(GF_RTOL) - math.log1p(-GF_ATOL / x)) / t
        assert r["rho_emp"] >= r["kappa_star"] - allow
        assert r["rho_over_kappa_star"] >= 1 - allow / r["kappa_star"]
        # GF-: ||r(t)|| >= e^{-kappa_up t} ||r_0|| (allowance mirrored), so rho_emp <= kappa_up.
        assert x >= math.exp(-r["kappa_up"] * t) * (1 - GF_RTOL) - GF_ATOL
        # GF+ item 1: ell <= ell_star and sigma_min >= sigma_0 sqrt(1 - Delta).
        assert r["path_final"] <= r["ell_star"] * (1 + GF_RTOL) + GF_ATOL * r["R_prime"]
        assert r["min_sigma_ratio"] >= r["sqrt_one_minus_Delta"] * (1 - GF_RTOL) - GF_ATOL
        # ||theta(t) - theta_0|| <= ell(t).
        assert r["max_drift_over_path"] <= 1 + GF_RTOL
    for r in base:
        assert r["path_over_R_prime"] <= 1 + GF_RTOL + GF_ATOL


def test_tightness_plot_draws_the_medians(data):
    fig = figs.plot_tightness(data["tightness"])
    rows = [r for r in data["tightness"]["rows"] if r["t_R"] == 0.5 and r["m"] == 2]
    ks = sorted({r["k"] for r in rows})
    want = [np.median([r["rho_over_kappa"] for r in rows if r["k"] == k]) for k in ks]
    assert any(np.array_equal(np.asarray(line.get_ydata(), float), want) for line in fig.axes[0].get_lines())


# --------------------------------------------------------------------------------------------
# (c) early stopping


def test_early_stopping_after_tau_eps_within_the_proven_bound(data):
    d = data["early_stopping"]
    certified = [(r, c) for r, c in zip(d["rows"], d["curves"], strict=True) if r["kind"] == "certified"]
    assert certified and all(r["certificate"] != "none" for r, _ in certified)
    for r, cur in certified:
        eps, sn = r["eps_eff"], r["sigma_n_A"]
        # The data identity A x_bar + eps_eff = y_eff holds to class P (pseudo-inverse, projector).
        data_tol = tol.pseudo_inverse(r["y_norm"] + eps, r["cond"], r["m"])
        assert r["data_residual"] <= data_tol
        after = cur["times"] >= r["tau_eps"]
        assert np.any(after) and r["steps"] >= r["tau_eps"]
        for tau_name in ("tau_eps_base", "tau_eps_refined"):
            if r[tau_name] is not None:
                assert r[tau_name] >= r["tau_eps"]
        # GD early stopping (spec §7): ||r_tau|| <= ||eps_eff|| for tau >= tau_eps ...
        assert np.all(cur["fit_error"][after] <= eps * (1 + GD_RTOL) + GD_ATOL * r["r0"])
        # ... hence in regime (a) ||x_tau - x_bar|| <= 2 ||eps_eff||/sigma_n(A) (spec §8).
        bound = 2 * eps / sn
        allow = bound * GD_RTOL + (GD_ATOL * r["r0"] + data_tol) / sn
        assert np.all(cur["signal_error"][after] <= bound + allow)
        assert r["max_err_after_tau_eps"] == float(np.max(cur["signal_error"][after]))
        assert r["signal_bound_after_tau_eps"] == bound
        # tau_DP <= tau_eps: at the first record past tau_eps, ||r|| <= ||eps|| < 1.1 ||eps||.
        assert r["tau_dp"] is not None and r["tau_dp"] <= cur["times"][np.flatnonzero(after)[0]]


def test_early_stopping_rows_describe_the_curves(data):
    d = data["early_stopping"]
    kinds = {r["kind"] for r in d["rows"]}
    assert kinds == {"certified", "descriptive"}
    for r, cur in zip(d["rows"], d["curves"], strict=True):
        err = cur["signal_error"]
        assert r["err_opt"] == float(err.min()) and r["err_opt"] <= r["err_final"]
        assert r["err_final"] == float(err[-1]) and r["err_0"] == float(err[0])
        assert r["u_shape"] == (r["err_opt"] < 0.9 * r["err_final"])
        if r["kind"] == "descriptive":
            assert r["tau_eps"] is None and r["certificate"] == "none"
    fig = figs.plot_early_stopping(d)
    drawn = [np.asarray(line.get_ydata(), float) for ax in fig.axes for line in ax.get_lines()]
    for cur in d["curves"]:
        assert any(np.array_equal(y, cur["signal_error"]) for y in drawn)


# --------------------------------------------------------------------------------------------
# (d) step sizes


def test_step_sweep_certified_steps_obey_theorem_gd(data):
    rows = data["step_sweep"]["rows"]
    certified = [r for r in rows if r["certified"]]
    assert certified and any(not r["admissible"] for r in rows) and any(r["admissible"] and not r["certified"]
                                                                          for r in rows)
    for r in rows:
        # lambda_max(M_0) <= ||A||^2 J_max^2 <= L_nabla (spec §7), to class I rounding.
        assert r["lambda_max_M0"] <= r["L_nabla"] * (1 + 1e-12)
        assert r["certified"] == (r["admissible"] and r["R_prime_gamma"] < r["R"])
    for r in certified:
        assert r["gamma_lambda_max"] < 2.0  # the certified range lies in the stable range
        assert r["monotone"] and r["first_increase"] is None  # Theorem GD item 1
        # Item 2: ||theta_tau - theta_0|| <= ell_tau <= R'_gamma, and sigma_min >= sigma_0/2.
        assert r["max_drift_over_R_prime"] * r["R_prime"] <= r["R_prime_gamma"] * (1 + GD_RTOL) + GD_ATOL
        assert r["min_sigma_ratio"] >= 0.5 * (1 - GD_RTOL)
        # Item 4: L_T <= q_gamma^T L_0.
        assert r["final_loss_ratio"] <= r["proven_final_loss_ratio"] * (1 + GD_RTOL) + GD_ATOL


def test_step_sweep_grid_is_the_requested_steps(data):
    cfg = TINY["step_sweep"]
    rows = data["step_sweep"]["rows"]
    for grid, mults, col in (("gamma_L_nabla", cfg.L_grid, "gamma_L_nabla"),
                             ("gamma_lambda_max", cfg.lmax_grid, "gamma_lambda_max")):
        sel = [r for r in rows if r["grid"] == grid]
        assert sorted({r["multiplier"] for r in sel}) == sorted(mults)
        for r in sel:
            assert r[col] == pytest.approx(r["multiplier"], rel=1e-12)
            assert r["steps"] == cfg.steps or r["diverged_at"] is not None


# --------------------------------------------------------------------------------------------
# (e) underdetermined


def test_underdetermined_bound_is_vacuous_and_overdetermined_bound_holds(data):
    d = data["underdetermined"]
    cfg = TINY["underdetermined"]
    pairs = list(zip(d["rows"], d["curves"], d["ratios"], strict=True))
    under = [p for p in pairs if p[0]["m"] < p[0]["n"]]
    over = [p for p in pairs if p[0]["m"] >= p[0]["n"]]
    assert len(under) == len(over) == cfg.seeds
    s = np.array(cfg.s_grid)
    for r, cur, ratio in under:
        # Proposition Vac: no admissible mu > 0, the signal-space bound is +inf at every step.
        assert r["sigma_n_A"] == 0.0 and r["signal_bound_final"] == math.inf
        assert np.all(np.isinf(cur["signal_bound"]))
        # Curve witness: ratio(s)/s <= ||A|| L_J ||delta||^2/(2 - s L_J ||delta||^2) (Taylor, as in
        # dip.underdetermined_signal_bound_vacuous), so mu(x_bar) = 0. Rounding of x_s - x_bar (two
        # k-term sums of size ||x||) over ||x_s - x_bar|| >= s - L_J s^2 ||delta||^2/2.
        d2 = r["delta_norm"] ** 2
        denom = 2 - s * r["L_J"] * d2
        assert np.all(denom > 0)
        nd = s - r["L_J"] * s ** 2 * d2 / 2
        allow = np.array([tol.update_path(2 * r["x_bar_norm"] + v, r["k"]) for v in s])
        allow *= r["norm_A"] / (nd * s)
        assert np.all(ratio / s <= r["norm_A"] * r["L_J"] * d2 / denom + allow)
    for r, cur, ratio in over:
        # Regime (a): mu >= sigma_n(A) along any curve, and the bound is finite and holds.
        sn = r["sigma_n_A"]
        assert sn > 0 and math.isfinite(r["signal_bound_final"])
        assert np.all(ratio >= sn * (1 - 1e-12))
        data_tol = tol.pseudo_inverse(r["y_norm"], r["cond"], r["m"])
        assert r["data_residual"] <= data_tol
        err, bound = cur["signal_error"], cur["signal_bound"]
        assert np.all(np.isfinite(bound))
        # Rounding of x = V phi(z)/sqrt k and x_bar (k-term sums) dominates: dims = k.
        allow = np.array([tol.inequality(e, b, r["x_bar_norm"] + r["y_norm"] / sn, r["k"])
                          for e, b in zip(err, bound, strict=True)]) + data_tol / sn
        assert np.all(err <= bound + allow)


def test_underdetermined_plot_draws_the_runs(data):
    d = data["underdetermined"]
    fig = figs.plot_underdetermined(d)
    drawn = [np.asarray(line.get_ydata(), float) for line in fig.axes[1].get_lines()]
    for cur in d["curves"]:
        want = np.maximum(cur["signal_error"], figs.ERROR_DRAW_FLOOR)
        assert any(np.array_equal(y, want) for y in drawn)
