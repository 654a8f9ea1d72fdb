"""Figure-1a claim (dln.weight_decay_noise_robustness), the D5 Monte Carlo helpers, and the figures.

The claim test drives the registered claim on its quick instances, so the five assertions and the
Monte Carlo tolerance are exactly those ``invbounds verify`` reports. The figure tests check that
``make_figures`` writes the three PNGs and that the plotted lines are the data functions' arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from bounds import dln_weight_decay as dlb
from verification import figures_dln as figs
from verification.claims import dln_noise
from verification.engine import Verdict
from verification.testing import check_claim

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLAIM = dln_noise.weight_decay_noise_robustness.claim


# --------------------------------------------------------------------------------------------
# the claim


@pytest.mark.statistical
def test_dln__weight_decay_noise_robustness():
    specs = CLAIM.instances("quick", 0)
    assert len(specs) == 3 and len({sp.seed for sp in specs}) == 3
    for spec in specs:
        res = check_claim(CLAIM, spec)
        labels = [c.label for c in res.evidence.comparisons]
        # All five assertions of section 10.1 and one MC check per (lambda, nu) were made.
        for tag in ("(1)", "(2)", "(3)", "(4)", "(5)"):
            assert any(lab.startswith(tag) for lab in labels), tag
        assert sum(lab.startswith("MC ") for lab in labels) == 2 * len(dln_noise.NOISE_LEVELS)


@pytest.mark.statistical
def test_noise_robustness_claim_detects_an_unfinished_run():
    # 100 steps: lambda = 0 has not interpolated and lambda = 1 has not removed the off-subspace
    # part yet, so assertions (1) and (3) must fail and the claim must say "violated".
    res = CLAIM.check(dln_noise.QUICK_SPEC.replace(steps=100))
    assert res.verdict is Verdict.VIOLATED
    failing = {c.label.split(")")[0] + ")" for c in res.evidence.comparisons if not c.holds}
    assert {"(1)", "(3)"} <= failing


def test_noise_robustness_claim_is_vacuous_without_weight_decay():
    res = CLAIM.check(dln_noise.QUICK_SPEC.replace(lam=0.0, steps=10))
    assert res.verdict is Verdict.VACUOUS
    assert "lam_positive" in res.failed_hypotheses


def test_paired_runs_share_data_init_and_step():
    runs = dln_noise.paired_runs(dln_noise.QUICK_SPEC)
    # Common random numbers: the t = 0 records (same data, same init) agree bitwise.
    for name in ("fit_error", "off_subspace_norm", "tail_norm"):
        assert runs.decay[name][0] == runs.plain[name][0]
    assert runs.decay.times[-1] == dln_noise.QUICK_SPEC.steps


# --------------------------------------------------------------------------------------------
# the D5 metric and its Monte Carlo estimate


@pytest.mark.statistical
@pytest.mark.parametrize("seed", range(4))
def test_monte_carlo_mse_agrees_with_exact_d5(seed):
    rng = np.random.default_rng(seed)
    d, m, s = 12, 7, 3
    R, _ = np.linalg.qr(rng.standard_normal((d, s)))
    A = rng.standard_normal((m, d)) / np.sqrt(m)
    M = rng.standard_normal((d, m)) / np.sqrt(m)
    sigmas = [0.0, 0.1, 1.0]
    mc = dln_noise.monte_carlo_test_mse(M, A, R, sigmas, rng, n_test=4000)
    exact = np.array([dlb.expected_test_mse(M, A, R, sg) for sg in sigmas])
    assert np.all(np.abs(mc.mean - exact) <= dln_noise.MC_Z * mc.stderr)
    assert np.all(mc.stderr > 0)


def test_noise_sigma_sets_the_noise_to_signal_ratio():
    rng = np.random.default_rng(3)
    R, _ = np.linalg.qr(rng.standard_normal((9, 2)))
    A = rng.standard_normal((5, 9))
    nu = 0.3
    sigma = dln_noise.noise_sigma(A, R, nu)
    # m sigma^2 = E||e||^2 must equal nu^2 E||A R z||^2 = nu^2 ||A R||_F^2 (class P identity).
    assert abs(5 * sigma**2 - nu**2 * np.linalg.norm(A @ R) ** 2) <= 1e-13 * np.linalg.norm(A) ** 2


def test_monte_carlo_mse_rejects_bad_input():
    rng = np.random.default_rng(0)
    R, _ = np.linalg.qr(rng.standard_normal((6, 2)))
    A = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match="M"):
        dln_noise.monte_carlo_test_mse(np.ones((4, 6)), A, R, [0.1], rng)
    with pytest.raises(ValueError, match="sigmas"):
        dln_noise.monte_carlo_test_mse(np.ones((6, 4)), A, R, [-0.1], rng)
    with pytest.raises(ValueError, match="n_test"):
        dln_noise.monte_carlo_test_mse(np.ones((6, 4)), A, R, [0.1], rng, n_test=1)
    with pytest.raises(ValueError, match="nu"):
        dln_noise.noise_sigma(A, R, -1.0)


# --------------------------------------------------------------------------------------------
# figure data and figures


def _line_data(ax):
    return [(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
            for line in ax.get_lines()]


def _plots(ax, x, y) -> bool:
    return any(lx.shape == np.shape(x) and np.array_equal(lx, x) and np.array_equal(ly, y)
               for lx, ly in _line_data(ax))


def test_noise_robustness_figure_data():
    data = figs.noise_robustness_data("quick", 0)
    for key in ("err_decay", "err_plain", "err_oracle", "fine_decay", "fine_plain", "fine_oracle",
                "mc_decay", "mc_plain"):
        assert np.all(np.isfinite(data[key])), key
    i1 = int(np.flatnonzero(data["nu"] == 1.0)[0])
    assert data["err_decay"][i1] < data["err_plain"][i1]
    # The fine curves pass through the protocol levels (same exact D5 metric).
    np.testing.assert_allclose(np.interp(data["nu"], data["nu_fine"], data["fine_plain"]),
                               data["err_plain"], rtol=1e-12, atol=1e-14)
    # Error bars bracket the Monte Carlo point.
    assert np.all(data["mc_decay_bar"][0] <= data["mc_decay"])
    assert np.all(data["mc_decay"] <= data["mc_decay_bar"][1])
    ax = figs.plot_noise_robustness(data).axes[0]
    assert _plots(ax, data["nu_fine"], data["fine_plain"])
    assert _plots(ax, data["nu_fine"], data["fine_decay"])
    assert _plots(ax, data["nu_fine"], data["fine_oracle"])


def test_two_phase_figure_data():
    data = figs.two_phase_data("quick", 0)
    assert np.all(data["t"] >= 1)
    for key in ("fit_decay", "fit_plain", "off_decay", "off_plain", "cert_decay", "cert_plain"):
        assert np.all(np.isfinite(data[key])) and np.all(data[key] > 0), key
    # D2: the drawn certificate bounds ||M P_perp||_2 at every record (class I allowance).
    assert np.all(data["off_decay"] <= data["cert_decay"] * (1 + 1e-10))
    # Two phases: weight decay ends far below its initial off-subspace norm, lambda = 0 does not.
    assert data["off_decay"][-1] < 1e-2 * data["off_decay"][0]
    assert data["off_plain"][-1] > 0.5 * data["off_plain"][0]
    ax_fit, ax_off = figs.plot_two_phase(data).axes
    assert _plots(ax_fit, data["t"], data["fit_decay"])
    assert _plots(ax_off, data["t"], data["off_decay"])
    assert _plots(ax_off, data["t"], data["cert_decay"])


def test_stepsize_figure_data():
    data = figs.stepsize_data("quick", 0)
    assert data["ks"] == figs.K_GRID
    fig = figs.plot_stepsize(data)
    ax_t, ax_kt = fig.axes[2], fig.axes[3]
    for k, run in data["runs"].items():
        if run["diverged"]:
            assert run["t"][-1] < run["diverged_at"]
            continue
        assert np.all(np.isfinite(run["fit"])) and np.all(np.isfinite(run["off"]))
        assert run["steps"] == figs.stepsize_steps(run["rho"], data["cap"])
        assert run["t"][-1] == run["steps"]
        assert _plots(ax_t, run["t"], run["off"])
        assert _plots(ax_kt, run["t"] * k, run["off"])
    # The talk's smallest multiples are stable (section 10.2).
    assert not data["runs"][1.0]["diverged"] and not data["runs"][2.0]["diverged"]


def test_make_figures_writes_three_pngs(tmp_path):
    paths = figs.make_figures(str(tmp_path / "figs"), profile="quick", seed=0)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["dln_fig1a_noise_robustness.png",
                                                     "dln_two_phase.png",
                                                     "dln_stepsize_multiples.png"]
    for p in paths:
        with open(p, "rb") as fh:
            head = fh.read()
        assert head[:8] == PNG_SIGNATURE and len(head) > 10_000, p


def test_make_figures_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        figs.make_figures(str(tmp_path), profile="huge")
    with pytest.raises(ValueError, match="seed"):
        figs.make_figures(str(tmp_path), seed=-1)
