"""Collect the ``bench_*.py`` modules of this directory as test modules.

``pyproject.toml`` keeps pytest's default ``python_files`` (``test_*.py``), which would skip the
benchmark modules; this hook adds them unless ``python_files`` already matches them (then pytest
collects them itself and adding them again would run every benchmark twice), and unless the file was
named on the command line (pytest collects initial paths itself, whatever their name).
"""

from __future__ import annotations

import fnmatch

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):
        return None
    patterns = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)
