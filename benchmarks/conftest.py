"""Collect the ``bench_*.py`` modules of this directory as test modules.

``pyproject.toml`` keeps pytest's default ``python_files`` (``test_*.py``), which would skip the
benchmark modules; this hook adds them unless ``python_files`` already matches them (then pytest
collects them itself and adding them again would run every benchmark twice), and unless the file was
named on the command line (pytest collects initial paths itself, whatever their name).
"""

from __future__ import annotations

import fnmatch
import json
import os

# Pin BLAS threads before any benchmark module imports numpy (as tests/conftest.py does): on a loaded
# 2-core machine a multi-threaded OpenBLAS made small products 20-70x slower, which would be measured
# as the code's speed.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402  (after the thread pins; pytest plugins may import numpy)


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not (file_path.name.startswith("bench_")
                                         or file_path.name == "work_counters.py"):
        return None
    if parent.session.isinitpath(file_path):
        return None
    patterns = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


# --------------------------------------------------------------------------------------------
# ratio gates: the speed numbers that are gated are ratios of two paths timed in the same run
# (fast path against its reference), stored with their floors in ratio_gates.json; absolute times
# are tracked by pytest-benchmark's own --benchmark-compare-fail against a per-env baseline.

RATIO_GATES = os.path.join(os.path.dirname(__file__), "ratio_gates.json")


def pytest_addoption(parser):
    parser.addoption("--ratio-gates", action="store_true",
                     help="fail a benchmark whose same-run speed ratio falls below its floor in "
                          "benchmarks/ratio_gates.json (needs --benchmark-enable; the bench tox envs "
                          "pass it)")


def _gates() -> dict:
    with open(RATIO_GATES) as fh:
        return json.load(fh)["gates"]


@pytest.fixture(autouse=True)
def _ratio_gate(request):
    yield
    if not request.config.getoption("--ratio-gates"):
        return
    bm = request.node.funcargs.get("benchmark")
    if bm is None or not getattr(bm, "enabled", False):
        return
    name = f"{request.node.path.name}::{request.node.name}"
    for key, floor in _gates().get(name, {}).items():
        value = bm.extra_info.get(key)
        if not isinstance(value, (int, float)):
            pytest.fail(f"ratio gate {name}:{key}: the benchmark recorded no such ratio")
        if value < floor:
            pytest.fail(f"ratio gate {name}:{key} = {value:.3g} < floor {floor:g} "
                        f"(benchmarks/ratio_gates.json)")

