"""Which BLAS/LAPACK this process actually loaded, read from ``/proc/self/maps``.

The tox BLAS matrix (``docs/blas.md``) links one numpy build against the generic
``libblas.so.3``/``liblapack.so.3`` and picks the backend with ``LD_LIBRARY_PATH``; nothing in numpy's
own configuration changes with it (``numpy.show_config()`` reports link-time names, and threadpoolctl
sees neither netlib nor BLIS loaded as ``libblas.so.3``). The mapped files are the only ground truth,
so the guard test (``tests/test_blas_backend.py``) and the report header (``invbounds verify``) both
read them here.

Matching is on (parent directory, file name), never on substrings of whole paths: a tox env lives in
``.tox/blas-openblas/...``, so every path under it contains a backend's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

# Backends the envs select. A path is attributed by (parent directory name, file name); Debian puts
# each alternative in its own directory (dpkg -L libblas3 libopenblas0-pthread libblis4-pthread), the
# PyPI mkl wheel installs lib/libmkl_rt.so.N, and PyPI numpy wheels vendor scipy-openblas in numpy.libs.
BLAS_SIGNATURES: dict[str, Callable[[str, str], bool]] = {
    "netlib": lambda parent, name: parent == "blas" and name.startswith("libblas.so"),
    "openblas": lambda parent, name: parent.startswith("openblas") and name.startswith("lib"),
    "blis": lambda parent, name: parent.startswith("blis-") and name.startswith("lib"),
    "mkl": lambda parent, name: name.startswith("libmkl_rt"),
    "bundled": lambda parent, name: parent == "numpy.libs" and name.startswith("libscipy_openblas"),
}
"""Backend name -> predicate on ``(parent, name)`` of a mapped file that proves numpy uses it."""

LAPACK_SIGNATURES: dict[str, Callable[[str, str], bool]] = {
    "netlib": lambda parent, name: parent == "lapack" and name.startswith("liblapack.so"),
    "openblas": lambda parent, name: parent.startswith("openblas") and name.startswith("liblapack.so"),
    "mkl": BLAS_SIGNATURES["mkl"],
    "bundled": BLAS_SIGNATURES["bundled"],
}
"""LAPACK provider -> predicate; OpenBLAS and MKL bring their own LAPACK, BLIS uses netlib's."""

BACKENDS = tuple(BLAS_SIGNATURES)
"""The values ``INVBOUNDS_EXPECT_BLAS`` may take."""

EXPECT_ENV = "INVBOUNDS_EXPECT_BLAS"
"""Environment variable through which a tox env names the backend it selected."""

_KEYWORDS = ("blas", "blis", "lapack", "mkl", "openblas")


def mapped_libraries(maps: str = "/proc/self/maps") -> list[str]:
    """Paths of the shared objects mapped into this process.

    Parameters
    ----------
    maps : str
        A ``/proc/<pid>/maps`` file (the default reads this process).

    Returns
    -------
    list of str
        Sorted, de-duplicated paths (the kernel shows the resolved target of a symlink, so the
        ``libblas.so.3`` alternative appears under the backend's real file).

    Raises
    ------
    ValueError
        If ``maps`` cannot be read (not Linux, or no such process).
    """
    try:
        with open(maps) as fh:
            rows = [line.split(maxsplit=5) for line in fh]
    except OSError as exc:
        raise ValueError(f"maps: cannot read {maps!r} ({exc.strerror}); the backend is only "
                         f"detectable on Linux") from None
    paths = {r[5].strip() for r in rows if len(r) == 6 and r[5].startswith("/")}
    # ' (deleted)' marks a file replaced on disk after it was mapped; the name is still the evidence.
    paths = {p.removesuffix(" (deleted)") for p in paths}
    return sorted(p for p in paths if ".so" in PurePosixPath(p).name)


def _key(path: str) -> tuple[str, str]:
    p = PurePosixPath(path)
    return p.parent.name, p.name


def classify(paths: list[str]) -> dict[str, Any]:
    """Attribute mapped library paths to BLAS/LAPACK backends.

    Parameters
    ----------
    paths : list of str
        Mapped shared-object paths (:func:`mapped_libraries`).

    Returns
    -------
    dict
        ``backend`` (numpy's BLAS: one of :data:`BACKENDS`, ``"ambiguous"`` when several are mapped,
        or ``"unknown"``), ``backends`` (every BLAS backend found, sorted), ``lapack`` (LAPACK
        provider or ``"unknown"``), ``blas_libraries`` (the matching paths), ``scipy_blas`` (the
        OpenBLAS vendored by a PyPI scipy wheel, which the matrix does not switch; empty if scipy's
        linalg is not loaded) and ``other_libraries`` (other mapped paths whose name mentions a BLAS).
    """
    if isinstance(paths, (str, bytes)):
        raise ValueError("paths: expected a list of paths, got a single string")
    found: set[str] = set()
    lapack: set[str] = set()
    blas_libs: list[str] = []
    scipy_libs: list[str] = []
    other: list[str] = []
    for path in paths:
        parent, name = _key(path)
        hits = [b for b, sig in BLAS_SIGNATURES.items() if sig(parent, name)]
        lap = [b for b, sig in LAPACK_SIGNATURES.items() if sig(parent, name)]
        if hits or lap:
            found.update(hits)
            lapack.update(lap)
            blas_libs.append(path)
        elif parent == "scipy.libs" and name.startswith("libscipy_openblas"):
            scipy_libs.append(path)
        elif name.startswith("lib") and any(k in name.lower() for k in _KEYWORDS):
            other.append(path)
    if len(found) == 1:
        backend = next(iter(found))
    else:
        backend = "ambiguous" if found else "unknown"
    lapack_name = next(iter(lapack)) if len(lapack) == 1 else ("ambiguous" if lapack else "unknown")
    return {"backend": backend, "backends": sorted(found), "lapack": lapack_name,
            "blas_libraries": blas_libs, "scipy_blas": scipy_libs, "other_libraries": other}


def _touch_linalg() -> None:
    # numpy links BLAS and LAPACK as DT_NEEDED of its extension modules, so importing maps them;
    # one product and one SVD make sure, whatever numpy imports lazily.
    import numpy as np

    a = np.eye(3) + 1.0
    _ = a @ a
    np.linalg.svd(a)


def loaded_blas(*, touch: bool = True) -> dict[str, Any]:
    """The BLAS/LAPACK backend this process loaded for numpy.

    Parameters
    ----------
    touch : bool
        Run one matrix product and one SVD first, so that BLAS and LAPACK are certainly mapped.

    Returns
    -------
    dict
        :func:`classify` of the mapped libraries, plus ``numpy_build`` (the BLAS/LAPACK names numpy
        was built against, from ``numpy.show_config``, ``None`` if unavailable), ``threadpoolctl``
        (its ``threadpool_info()`` entries if it is installed, else ``None``), ``ld_library_path``
        and ``expected`` (the value of :data:`EXPECT_ENV` or ``None``). On a system without
        ``/proc/self/maps`` ``backend`` is ``"unknown"`` and ``error`` says why.
    """
    if touch:
        _touch_linalg()
    try:
        info = classify(mapped_libraries())
    except ValueError as exc:
        info = classify([])
        info["error"] = str(exc)
    info["numpy_build"] = _numpy_build()
    info["threadpoolctl"] = _threadpoolctl()
    info["ld_library_path"] = os.environ.get("LD_LIBRARY_PATH")
    info["expected"] = os.environ.get(EXPECT_ENV)
    return info


def _numpy_build() -> dict[str, str] | None:
    import numpy as np

    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        return {k: str(deps[k].get("name")) for k in ("blas", "lapack") if k in deps}
    except (TypeError, KeyError, AttributeError):
        return None


def _threadpoolctl() -> list[dict[str, Any]] | None:
    try:
        import threadpoolctl
    except ImportError:
        return None
    keep = ("internal_api", "prefix", "filepath", "version", "num_threads")
    return [{k: d.get(k) for k in keep} for d in threadpoolctl.threadpool_info()]


def describe(info: dict[str, Any] | None = None) -> str:
    """One line naming the loaded backend and its files, for report headers.

    Parameters
    ----------
    info : dict, optional
        A :func:`loaded_blas` result (computed if omitted).

    Returns
    -------
    str
        E.g. ``"blis (libblas.so.3 in blis-pthread, liblapack.so.3.11.0 in lapack; LAPACK netlib)"``.
    """
    info = loaded_blas() if info is None else info
    files = ", ".join(f"{n} in {p}" for p, n in (_key(x) for x in info["blas_libraries"])) or "no BLAS mapped"
    # scipy's vendored OpenBLAS is left out: whether it is mapped depends on what was imported so far,
    # and the line must not change within one run (sweeps compare it across processes).
    return f"{info['backend']} ({files}; LAPACK {info['lapack']})"


def check_expected(expected: str, info: dict[str, Any]) -> list[str]:
    """Why ``info`` does not show exactly the backend ``expected`` (empty list: it does).

    Parameters
    ----------
    expected : str
        One of :data:`BACKENDS`.
    info : dict
        A :func:`loaded_blas` or :func:`classify` result.

    Returns
    -------
    list of str
        Human-readable problems: the expected backend is not mapped, or a rival one is.

    Raises
    ------
    ValueError
        If ``expected`` is not a known backend.
    """
    if expected not in BLAS_SIGNATURES:
        raise ValueError(f"expected: must be one of {list(BACKENDS)}, got {expected!r}")
    problems = []
    if expected not in info["backends"]:
        problems.append(f"expected BLAS {expected!r} is not mapped; found {info['backends'] or 'none'}")
    rivals = [b for b in info["backends"] if b != expected]
    if rivals:
        problems.append(f"rival BLAS mapped besides {expected!r}: {rivals}")
    return problems
