"""Guard: the BLAS a tox env asks for is the one this process actually loaded.

Each env of the BLAS matrix sets ``INVBOUNDS_EXPECT_BLAS`` (netlib, openblas, blis, mkl or bundled)
next to the ``LD_LIBRARY_PATH`` that selects the backend (``tox.ini``, ``docs/blas.md``). If the
variable and the mapped libraries disagree, the env is broken and would silently test another
backend, so the guard fails. Without the variable (a plain ``pytest`` run) the guard skips; the
detection itself is tested on synthetic ``/proc/self/maps`` contents.
"""

from __future__ import annotations

import os

import pytest

from verification import blas

LIB = "/usr/lib/x86_64-linux-gnu"
SITE = "/work/main/.tox/blas-openblas/lib/python3.11/site-packages"
NUMPY_EXT = f"{SITE}/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"
SCIPY_OB = f"{SITE}/scipy.libs/libscipy_openblas-6cdc3b4a.so"

# What /proc/self/maps shows in each env (the kernel prints a symlink's target), plus numpy's own
# extension module, whose path contains the env's (backend-named) directory.
MAPPED = {
    "netlib": [f"{LIB}/blas/libblas.so.3.11.0", f"{LIB}/lapack/liblapack.so.3.11.0", NUMPY_EXT],
    "openblas": [f"{LIB}/openblas-pthread/libblas.so.3", f"{LIB}/openblas-pthread/liblapack.so.3",
                 f"{LIB}/openblas-pthread/libopenblasp-r0.3.21.so", NUMPY_EXT, SCIPY_OB],
    "blis": [f"{LIB}/blis-pthread/libblas.so.3", f"{LIB}/lapack/liblapack.so.3.11.0", NUMPY_EXT],
    "mkl": [f"{SITE}/../../libmkl_rt.so.2", f"{SITE}/../../libmkl_core.so.2", NUMPY_EXT],
    "bundled": [f"{SITE}/numpy.libs/libscipy_openblas64_-32a4b2a6.so", NUMPY_EXT],
}
LAPACK = {"netlib": "netlib", "openblas": "openblas", "blis": "netlib", "mkl": "mkl", "bundled": "bundled"}


def test_expected_blas_is_loaded():
    expected = os.environ.get(blas.EXPECT_ENV)
    if not expected:
        pytest.skip(f"{blas.EXPECT_ENV} is set by the tox BLAS envs only (docs/blas.md)")
    info = blas.loaded_blas()
    problems = blas.check_expected(expected, info)
    assert not problems, (f"{'; '.join(problems)}. LD_LIBRARY_PATH={info['ld_library_path']!r}; "
                          f"mapped: {info['blas_libraries'] + info['other_libraries']}")
    assert info["backend"] == expected


@pytest.mark.parametrize("backend", sorted(MAPPED))
def test_classify_names_each_backend(backend):
    info = blas.classify(MAPPED[backend])
    assert info["backend"] == backend
    assert info["backends"] == [backend]
    assert info["lapack"] == LAPACK[backend]
    assert blas.check_expected(backend, info) == []
    # the env directory named after a backend never counts as that backend
    assert NUMPY_EXT not in info["blas_libraries"]


def test_scipy_vendored_openblas_is_not_numpy_backend():
    info = blas.classify(MAPPED["openblas"])
    assert info["scipy_blas"] == [SCIPY_OB]
    assert SCIPY_OB not in info["blas_libraries"]


@pytest.mark.parametrize("expected, mapped", [("netlib", "openblas"), ("blis", "netlib"),
                                              ("mkl", "bundled"), ("bundled", "openblas")])
def test_wrong_backend_is_reported(expected, mapped):
    problems = blas.check_expected(expected, blas.classify(MAPPED[mapped]))
    assert any("not mapped" in p for p in problems)
    assert any("rival" in p for p in problems)


def test_two_backends_are_ambiguous():
    # e.g. LD_LIBRARY_PATH naming netlib while a rival backend was also loaded
    info = blas.classify(MAPPED["netlib"] + MAPPED["openblas"])
    assert info["backend"] == "ambiguous"
    assert info["backends"] == ["netlib", "openblas"]
    assert blas.check_expected("netlib", info) == ["rival BLAS mapped besides 'netlib': ['openblas']"]


def test_nothing_mapped_is_unknown():
    info = blas.classify([NUMPY_EXT])
    assert (info["backend"], info["lapack"]) == ("unknown", "unknown")
    assert blas.check_expected("netlib", info)


def test_mapped_libraries_parses_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        f"7f00-7f01 r--p 00000000 08:01 1 {LIB}/blas/libblas.so.3.11.0\n"
        f"7f01-7f02 r-xp 00001000 08:01 1 {LIB}/blas/libblas.so.3.11.0\n"
        "7f02-7f03 rw-p 00000000 00:00 0 \n"
        "7f03-7f04 rw-p 00000000 00:00 0 [heap]\n"
        f"7f04-7f05 r--p 00000000 08:01 2 {LIB}/lapack/liblapack.so.3.11.0 (deleted)\n"
        "7f05-7f06 r--p 00000000 08:01 3 /usr/lib/locale/locale-archive\n")
    assert blas.mapped_libraries(str(maps)) == [f"{LIB}/blas/libblas.so.3.11.0",
                                                f"{LIB}/lapack/liblapack.so.3.11.0"]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="maps"):
        blas.mapped_libraries("/nonexistent/maps")
    with pytest.raises(ValueError, match="expected"):
        blas.check_expected("atlas", blas.classify([]))
    with pytest.raises(ValueError, match="paths"):
        blas.classify("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3")


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_this_process_has_one_known_backend():
    info = blas.loaded_blas()
    assert info["backend"] in blas.BACKENDS, info
    assert info["lapack"] != "unknown", info
    line = blas.describe(info)
    assert line.startswith(info["backend"]) and "LAPACK" in line
