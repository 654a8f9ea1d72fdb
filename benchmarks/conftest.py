"""Collect the ``bench_*.py`` modules of this directory as test modules.

``pyproject.toml`` keeps pytest's default ``python_files`` (``test_*.py``), which would skip the
benchmark modules; this hook adds them unless ``python_files`` already matches them (then pytest
collects them itself and adding them again would run every benchmark twice), and unless the file was
named on the command line (pytest collects initial paths itself, whatever their name).
"""

from __future__ import annotations

import fnmatch
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
