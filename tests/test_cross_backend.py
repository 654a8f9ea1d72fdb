"""Cross-backend agreement: fixed trajectories against the reference stored in the repository.

Every tox env of the BLAS matrix runs this file; the reference was generated on the default PyPI
environment (``tools/make_cross_backend_reference.py``). Each final record must lie within the rounding
allowance of :func:`verification.cross_backend.allowance`; the observed deviation over the allowance
is recorded as a test property (``--junitxml``) and in the assertion message, and ``docs/blas.md``
lists the largest one per backend.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from verification import blas, cross_backend, tolerance

REFERENCE = Path(__file__).resolve().parent / "data" / "cross_backend_reference.json"
CASE_NAMES = [c.name for c in cross_backend.cases()]


@pytest.fixture(scope="module")
def reference() -> dict:
    return cross_backend.load_reference(REFERENCE)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return cross_backend.run_all()


def test_reference_matches_the_case_definitions(reference):
    # A case changed without regenerating the reference would compare different runs.
    specs = {c.name: c.spec for c in cross_backend.cases()}
    assert set(reference["cases"]) == set(specs)
    for name, spec in specs.items():
        assert reference["cases"][name]["spec"] == spec, f"{name}: regenerate the reference"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_final_records_agree_with_reference(name, reference, outcomes, record_property):
    devs = [d for d in cross_backend.compare(reference, outcomes) if d.case == name]
    assert devs, f"{name}: no records compared"
    worst = max(devs, key=lambda d: d.ratio)
    record_property("blas", blas.loaded_blas(touch=False)["backend"])
    record_property("max_deviation_over_allowance", worst.ratio)
    record_property("worst_record", worst.record)
    bad = [d for d in devs if d.ratio > 1]
    assert not bad, (
        f"{name} on {blas.describe()}: records outside the rounding allowance: "
        + "; ".join(f"{d.record}: {d.observed!r} vs reference {d.reference!r}, |dev| {d.deviation:.3e} "
                    f"> allowance {d.allowance:.3e}" for d in bad))


def test_a_deviation_beyond_the_allowance_is_caught(reference, outcomes):
    # The comparison must be able to fail: push one record just past its allowance.
    name = CASE_NAMES[0]
    o = outcomes[name]
    rec = sorted(o.final)[0]
    ref = reference["cases"][name]
    allow = cross_backend.allowance(ref["scale"][rec], steps=ref["steps"], dims=ref["dims"],
                                    kappa=ref["kappa"])
    shifted = dataclasses.replace(o, final={**o.final, rec: ref["final"][rec] + 1.01 * allow})
    devs = cross_backend.compare(reference, {**outcomes, name: shifted})
    worst = max(devs, key=lambda d: d.ratio)
    assert (worst.case, worst.record) == (name, rec)
    assert 1.0 < worst.ratio < 1.02


def test_allowance_is_the_two_tolerance_classes():
    got = cross_backend.allowance(2.0, steps=300, dims=100, kappa=3.0)
    want = tolerance.pseudo_inverse(2.0, 3.0, 100) + tolerance.update_path(600.0, 100)
    assert got == want
    # grows with every input
    assert cross_backend.allowance(2.0, steps=600, dims=100, kappa=3.0) > got
    assert cross_backend.allowance(2.0, steps=300, dims=400, kappa=3.0) > got
    assert cross_backend.allowance(2.0, steps=300, dims=100, kappa=30.0) > got
    assert cross_backend.allowance(0.0, steps=300, dims=100, kappa=3.0) == 0.0


@pytest.mark.parametrize("kwargs, arg", [
    ({"scale": -1.0}, "scale"), ({"scale": math.nan}, "scale"), ({"steps": -1}, "steps"),
    ({"steps": 1.5}, "steps"), ({"dims": 0}, "dims"), ({"kappa": 0.5}, "kappa"),
    ({"kappa": math.inf}, "kappa"),
])
def test_allowance_rejects_bad_input(kwargs, arg):
    args = {"scale": 1.0, "steps": 10, "dims": 4, "kappa": 1.0, **kwargs}
    scale = args.pop("scale")
    with pytest.raises(ValueError, match=arg):
        cross_backend.allowance(scale, **args)


def test_stale_reference_is_reported(reference, outcomes):
    fewer = {k: v for k, v in outcomes.items() if k != CASE_NAMES[-1]}
    with pytest.raises(ValueError, match="regenerate"):
        cross_backend.compare(reference, fewer)


def test_zero_allowance_ratio():
    same = cross_backend.Deviation("c", "r", 1.0, 1.0, 0.0)
    off = cross_backend.Deviation("c", "r", 1.0, 2.0, 0.0)
    assert same.ratio == 0.0 and off.ratio == math.inf


def test_load_reference_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match="path"):
        cross_backend.load_reference(tmp_path / "missing.json")
    bad = tmp_path / "old.json"
    bad.write_text('{"format_version": 0}')
    with pytest.raises(ValueError, match="format_version"):
        cross_backend.load_reference(bad)
