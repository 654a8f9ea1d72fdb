"""JPO figures (``verification.figures_jpo``): files, tables, and facts the plotted data must satisfy.

Every figure's data is computed once on tiny runs (module fixture: ``n in {8, 16}``, 2 seeds, 300
Adam steps, small sign-law pools). The tests check that :func:`make_figures` writes each PNG and
tidy CSV and that the CSV is the data behind the figure, and that the data satisfy exact
statements of spec ``jpo.md`` on every run and example: refinement never worse (§2.4, allowance
``1e-12 (1 + |L|)`` of §9), oracle validity (§5.1), ``w <= 1 - g_BFGS`` (§5.2), the zero-gradient
trap count (§7.3a), the Monte Carlo sign frequency within 5 standard errors of the exact
Gil-Pelaez law (§6.3, §5.3), the ripple feature SNR within 5 standard errors of its closed form
(§6.9), and every drawn landscape lying above the oracle minimum. Each of these fails if the
dynamics, the oracle or the figure code are wrong.

Two spec findings are pinned at the end as strict ``xfail`` tests, each next to a passing test that
its counterexample satisfies the spec's hypotheses (``docs/theory/jpo.md``, "Summary of
corrections"): refinement can be worse than its start for SciPy's BFGS (§2.4), and the win-rate cap
``w <= 1 - g_BFGS`` needs an oracle exact for the methods, not only ``tau``-valid (§5.2).
"""

from __future__ import annotations

import itertools
import math
import os
import warnings

import numpy as np
import pytest

from bounds import joint_vs_bfgs as jvb
from dynamics import bfgs_reference as br
from verification import figures_jpo as figs
from verification import jpo_oracle as jo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MC_STANDARD_ERRORS = 5.0
"""Spec §5.3: Monte Carlo estimates within 5 standard errors (false alarm 5.7e-7 per point)."""
TINY = figs.FigureConfig(ns=(8, 16), seeds=2, steps=300, landscape_examples=2, landscape_points=400,
                         map_points=(40, 30), sign_ns=(1, 4, 16, 64), sign_pool=1 << 13)
TIMING_COLUMNS = {c for c in figs.SWEEP_COLUMNS if c.startswith("seconds_")}


@pytest.fixture(scope="module")
def data():
    out = {}
    for name in figs.PROBLEMS:
        sweep = figs.sweep_data(name, "quick", 0, config=TINY)
        out[name] = {"sweep": sweep, "landscape": figs.landscape_data(sweep),
                     "sign_law": figs.sign_law_data(name, "quick", 0, config=TINY)}
    return out


def _runs(data):
    for name, d in data.items():
        for key, run in d["sweep"]["runs"].items():
            yield name, key, run


# --------------------------------------------------------------------------------------------
# files and tables


def test_make_figures_writes_every_png_and_table(tmp_path, data):
    out = str(tmp_path / "figs")
    paths = figs.make_figures(out, profile="quick", seed=0, config=TINY, problems=("ripple",),
                              show_progress=False)
    keys = ("sign_law", "win_rate", "landscape")
    expected = [f"jpo_ripple_{k}.{ext}" for k in keys for ext in ("png", "csv")]
    assert [os.path.basename(p) for p in paths] == expected
    assert [k for k, _ in figs.FIGURES] == list(keys)
    source = {"sign_law": data["ripple"]["sign_law"], "win_rate": data["ripple"]["sweep"],
              "landscape": data["ripple"]["landscape"]}
    for key in keys:
        with open(os.path.join(out, f"jpo_ripple_{key}.png"), "rb") as fh:
            head = fh.read()
        assert head[:8] == PNG_SIGNATURE and len(head) > 10_000, key
        table = figs.read_table(os.path.join(out, f"jpo_ripple_{key}.csv"))
        rows = source[key]["rows"]
        # One row per run / example / Monte Carlo point, with its seed; the CSV is exactly the data
        # behind the figure (floats round-trip through repr). The runs are recomputed by
        # make_figures, so equality also checks that they are reproducible bitwise (spec §4.4);
        # only the advisory wall times differ.
        assert len(table) == len(rows) > 0
        assert all(isinstance(r["seed"], int) for r in table)
        for got, want in zip(table, rows, strict=True):
            for col in source[key]["columns"]:
                if col in TIMING_COLUMNS:
                    continue
                assert got[col] == want.get(col), (key, col, got[col], want.get(col))


def test_make_figures_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        figs.make_figures(str(tmp_path), profile="huge")
    with pytest.raises(ValueError, match="seed"):
        figs.make_figures(str(tmp_path), seed=-1)
    with pytest.raises(ValueError, match="problems"):
        figs.make_figures(str(tmp_path), problems=("fluid",))
    with pytest.raises(ValueError, match="config"):
        figs.make_figures(str(tmp_path), config={"ns": (16,)})
    with pytest.raises(ValueError, match="ns"):
        figs.FigureConfig(ns=(64, 16))
    with pytest.raises(ValueError, match="sign_pool"):
        figs.FigureConfig(sign_ns=(1, 256), sign_pool=300)


def test_reduced_steps_are_stated_on_the_image():
    assert "REDUCED" in figs._steps_note(TINY)
    assert "REDUCED" not in figs._steps_note(figs.PROFILE_CONFIGS["quick"])
    assert figs.PROFILE_CONFIGS["quick"].steps == figs.PROFILE_CONFIGS["paper"].steps == 3000


# --------------------------------------------------------------------------------------------
# exact statements on every run and example


def test_refinement_never_worse_on_every_example(data):
    # Spec §2.4 / §9 jpo.refinement_never_worse: SciPy's BFGS accepts only Armijo steps, so the
    # returned loss exceeds the start's by rounding at most (1e-12 (1 + |L|), the §3 allowance).
    for name, key, run in _runs(data):
        assert np.all(run.refinement_excess() <= 0.0), (name, key, run.refinement_excess().max())
        assert np.all(run.baseline_excess() <= 0.0), (name, key, run.baseline_excess().max())
    for name, d in data.items():
        for row in d["sweep"]["rows"]:
            assert row["refine_max_excess"] <= 0.0 and row["bfgs_max_excess"] <= 0.0, (name, row)


def test_oracle_valid_and_win_rate_capped_by_bfgs_failure(data):
    # §5.1 validity, then §5.2: an example where BFGS is at the global minimum cannot be won, so
    # wins <= examples - at_min_bfgs exactly (integer counts, no allowance).
    for name, key, run in _runs(data):
        for method in ("BFGS", "JPO", "JPO+BFGS"):
            assert jo.oracle_violations(run.losses(method), run.oracle).size == 0, (name, key, method)
        bfgs_at_min = jo.at_global_minimum(run.baseline.fun, run.oracle)
        for method in figs.METHODS:
            comp = run.comparison(method)
            assert not np.any(comp.win & bfgs_at_min), (name, key, method)
    for name, d in data.items():
        for row in d["sweep"]["rows"]:
            assert row["oracle_violations"] == 0
            assert row["wins"] <= row["examples"] - row["at_min_bfgs"], (name, row)
            assert row["w"] <= row["cap"], (name, row)
            assert row["wins"] + row["losses"] + row["ties"] == row["examples"]
        for cell in d["sweep"]["cells"]:
            assert cell["pooled"] <= cell["cap"]
            assert cell["wilson_low"] <= cell["pooled"] <= cell["wilson_high"]


def test_zero_gradient_trap_count_in_billiards_runs(data):
    # §3 / §7.3a: from a miss the gradient is exactly zero, so BFGS stops with nit = 0; from a hit
    # the gradient is non-zero (the goal is reachable only by a hit), so nit >= 1.
    for row in data["billiards"]["sweep"]["rows"]:
        assert row["bfgs_nit0"] == row["start_misses"], row


def test_landscapes_lie_above_the_oracle_minimum(data):
    for name, d in data.items():
        land = d["landscape"]
        assert len(land["rows"]) == TINY.landscape_examples
        for row, curve in zip(land["rows"], land["curves"], strict=True):
            # The oracle value is a global minimum: no drawn point may be lower (beyond tau).
            assert float(np.min(curve["loss"])) >= row["L_oracle"] - row["tau"], (name, row["example"])
            run = d["sweep"]["runs"][(land["n"], land["seed"])]
            i = row["example"]
            assert row["L_JPO+BFGS"] == run.refinement.fun[i] and row["L_BFGS"] == run.baseline.fun[i]
            assert row["role"] == ("win" if run.comparison("JPO+BFGS").win[i] else
                                   "loss" if run.comparison("JPO+BFGS").loss[i] else "tie")


# --------------------------------------------------------------------------------------------
# sign-probability law


def test_monte_carlo_sign_frequency_within_five_se_of_exact_law(data):
    rows = [r for r in data["ripple"]["sign_law"]["rows"] if r["exact"] is not None]
    assert [r["n"] for r in rows] == list(TINY.sign_ns)
    for r in rows:
        P = r["exact"]
        se = math.sqrt(P * (1 - P) / r["trials"])
        assert abs(r["frequency"] - P) <= MC_STANDARD_ERRORS * se, r
        assert r["trials"] == TINY.sign_pool // r["n"]
    # The exact law rises with n on this grid (r = |s|/A = 0.2, K = 8: far from the small-n arcsine
    # counterexample of §6.6), as the figure shows.
    exact = [r["exact"] for r in rows]
    assert all(b > a for a, b in itertools.pairwise(exact))


def test_ripple_feature_snr_within_five_se_of_closed_form(data):
    # rho_hat = -mean/sd of the pool; delta method for a ratio of sample moments:
    # Var(rho_hat) = (1 + gamma rho + (kappa - 1) rho^2 / 4) / N with the skewness gamma and the
    # (non-excess) kurtosis kappa of h, estimated from the same pool.
    setup = figs.PROBLEMS["ripple"]
    row = data["ripple"]["sign_law"]["rows"][0]
    pool = figs.sign_law_pool("ripple", "feature", TINY.sign_pool, row["seed"])
    z = (pool - pool.mean()) / pool.std()
    gamma, kappa = float(np.mean(z**3)), float(np.mean(z**4))
    rho_hat, rho = row["snr1"], jvb.ripple_feature_snr(figs.RIPPLE_AMP)
    assert row["snr1_closed_form"] == rho
    se = math.sqrt((1 + gamma * rho + (kappa - 1) * rho**2 / 4) / pool.size)
    assert abs(rho_hat - rho) <= MC_STANDARD_ERRORS * se, (rho_hat, rho, se)
    assert setup.index == 0 and row["seed"] == figs.SIGN_LAW_SEED


def test_sign_law_rows_rebuild_from_their_seed(data):
    for name, d in data.items():
        for r in d["sign_law"]["rows"][:1]:
            pool = figs.sign_law_pool(name, r["series"], r["pool"], r["seed"])
            k, M = figs._block_successes(pool, r["n"], -1.0 if r["series"] == "feature" else 1.0)
            assert (k, M) == (r["successes"], r["trials"]), name


# --------------------------------------------------------------------------------------------
# spec findings (docs/theory/jpo.md, "Summary of corrections"), pinned


_KINK_BOWL = 2050.0 / 196.0
"""Curvature of the bowl of the BFGS counterexample; makes f continuous at x = 1010."""


def _kinked_descent(x: np.ndarray) -> float:
    # Slope -1 up to a kink at 999 (no point with |f'| <= c2 = 0.9 near it, so dcsrch fails), a
    # ridge up to 1010, then a bowl with minimum 251 > f(0) = 0 centred at 1024 = 2^10, the step the
    # fallback wolfe2 search returns unchecked after doubling alpha = 1, 2, ..., 512.
    t = float(x[0])
    if t < 999.0:
        return -t
    if t < 1010.0:
        return -999.0 + 300.0 * (t - 999.0)
    return 251.0 + _KINK_BOWL * (t - 1024.0) ** 2


def _kinked_descent_grad(x: np.ndarray) -> np.ndarray:
    t = float(x[0])
    if t < 999.0:
        return np.array([-1.0])
    if t < 1010.0:
        return np.array([300.0])
    return np.array([2.0 * _KINK_BOWL * (t - 1024.0)])


def test_bfgs_counterexample_is_a_successful_section3_run():
    # The premises of spec §2.4: the §3 call, exact gradient, continuous loss, and SciPy reports
    # success; the run ends at the unchecked step 1024.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = br.minimize_example(_kinked_descent, _kinked_descent_grad, np.array([0.0]))
    assert res.status == 0 and res.success
    assert res.x[0] == 1024.0 and res.fun == 251.0
    assert abs(_kinked_descent(np.array([1010.0 - 1e-12])) - _kinked_descent(np.array([1010.0]))) < 1e-8


@pytest.mark.xfail(strict=True, reason="spec §2.4 error: SciPy's fallback line search "
                   "(scalar_search_wolfe2) returns its last trial step unchecked after 10 doublings, so "
                   "BFGS can end above its start (docs/theory/jpo.md#bfgs)")
def test_spec_refinement_never_worse_for_any_scipy_bfgs_run():
    x0 = np.array([0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = br.minimize_example(_kinked_descent, _kinked_descent_grad, x0)
    f0 = _kinked_descent(x0)
    assert res.fun <= f0 + figs.REFINE_RTOL * (1.0 + abs(f0))


def _sub_oracle_case():
    # L* = 0 (tau = 1e-8): BFGS at 0.9e-8 is at the global minimum, M at -0.5e-8 is valid.
    orc = jo.OracleResult(value=np.array([0.0]), x=np.zeros((1, 1)), tau=jo.tolerance([0.0]),
                          method="grid")
    return orc, np.array([0.9e-8]), np.array([-0.5e-8])


def test_win_cap_counterexample_satisfies_the_spec_hypotheses():
    orc, L_bfgs, L_method = _sub_oracle_case()
    assert jo.oracle_violations(L_method, orc).size == 0          # valid oracle (§5.1)
    assert jo.oracle_violations(L_bfgs, orc).size == 0
    assert bool(jo.at_global_minimum(L_bfgs, orc)[0])             # BFGS at the global minimum
    assert bool(jo.compare_to_bfgs(L_method, L_bfgs, orc).win[0])  # and yet M wins


@pytest.mark.xfail(strict=True, reason="spec §5.2 error: w <= 1 - g_BFGS needs L^M >= L* (or a 2 tau win "
                   "margin); tau-validity allows L* - tau <= L^M < L* (docs/theory/jpo.md#oracle)")
def test_spec_win_rate_cap_under_tau_validity():
    orc, L_bfgs, L_method = _sub_oracle_case()
    assert jo.compare_to_bfgs(L_method, L_bfgs, orc).win_rate <= jo.win_rate_cap(L_bfgs, orc)
