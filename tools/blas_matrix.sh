#!/usr/bin/env bash
# Everything the tox BLAS matrix needs that pip cannot install (docs/blas.md):
#
#   tools/blas_matrix.sh            install the Debian BLAS/LAPACK packages and build tools if missing,
#                                   then build numpy once from source against the generic
#                                   libblas.so.3/liblapack.so.3 into .cache/wheels/ if that wheel is missing
#   tools/blas_matrix.sh --check    say what is missing and exit 1 if anything is; change nothing
#
# Idempotent: a second run finds everything in place and does nothing. Installing packages needs root
# (apt-get); building the wheel does not. Two helpers are called by tox.ini, not by people:
#
#   tools/blas_matrix.sh mkl-env ENV_DIR ENV_PYTHON [PYTEST_ARGS...]   (the blas-mkl env)
#   tools/blas_matrix.sh bench ENV_NAME [PYTEST_ARGS...]               (the bench envs)
#
# Overrides (environment): PYTHON (interpreter the wheel is built for; default python3.11, the
# interpreter tox.ini's base_python names), BLAS_WHEEL_DIR (default <repo>/.cache/wheels; tox.ini reads
# the same variable, so a cache outside the clone serves both), NUMPY_VERSION (default: numpy_version in
# tox.ini's [blas] section, the single pin; a different value needs the same change in tox.ini).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB=/usr/lib/x86_64-linux-gnu
PYTHON="${PYTHON:-python3.11}"
WHEEL_DIR="${BLAS_WHEEL_DIR:-$ROOT/.cache/wheels}"

say() { printf 'blas_matrix: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

numpy_version() {
    if [[ -n "${NUMPY_VERSION:-}" ]]; then
        echo "$NUMPY_VERSION"
        return
    fi
    # The one pin lives in tox.ini ([blas] numpy_version), so tox's wheel path and this build agree.
    local v
    v="$(sed -n 's/^numpy_version *= *\([0-9][0-9.]*\) *$/\1/p' "$ROOT/tox.ini" | head -n 1)"
    [[ -n "$v" ]] || die "no 'numpy_version = X.Y.Z' line in $ROOT/tox.ini"
    echo "$v"
}

# Packages: build tools and the netlib development files numpy links against, plus the runtime
# backends the envs switch between. libopenblas0-pthread and libblis4-pthread are runtime-only on
# purpose: their -dev packages would take over the libblas.so/blas.pc development alternatives.
APT_PACKAGES=(build-essential pkg-config libblas-dev liblapack-dev libblas3 liblapack3
              libopenblas0-pthread libblis4-pthread)

missing_packages() {
    local p status
    for p in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || echo "$p"
    done
}

# Where each backend's libblas.so.3/liblapack.so.3 live: tox.ini's LD_LIBRARY_PATH values.
BACKEND_FILES=("$LIB/blas/libblas.so.3" "$LIB/lapack/liblapack.so.3"
               "$LIB/openblas-pthread/libblas.so.3" "$LIB/openblas-pthread/liblapack.so.3"
               "$LIB/blis-pthread/libblas.so.3")

wheel_path() {
    local tag
    tag="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')" ||
        die "interpreter '$PYTHON' not found (set PYTHON=...)"
    echo "$WHEEL_DIR/numpy-$(numpy_version)-$tag-$tag-linux_x86_64.whl"
}

python_headers() {
    "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(
        os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}

check() {
    local bad=0 missing f whl
    missing="$(missing_packages | tr '\n' ' ')"
    if [[ -n "${missing// /}" ]]; then say "missing Debian packages: $missing"; bad=1; fi
    for f in "${BACKEND_FILES[@]}"; do
        [[ -e "$f" ]] || { say "missing backend library $f"; bad=1; }
    done
    whl="$(wheel_path)"
    if [[ -f "$whl" ]]; then say "numpy wheel present: $whl"; else say "missing numpy wheel $whl"; bad=1; fi
    return "$bad"
}

install_packages() {
    local missing
    missing="$(missing_packages | tr '\n' ' ')"
    if ! python_headers; then
        # Debian's python3-dev only helps Debian's own interpreter; a pyenv/uv Python brings its headers.
        [[ "$("$PYTHON" -c 'import sys; print(sys.prefix)')" == /usr ]] ||
            die "$PYTHON has no Python.h and is not Debian's python3; install its development headers"
        missing="$missing python3-dev"
    fi
    if [[ -z "${missing// /}" ]]; then
        say "Debian packages already installed: ${APT_PACKAGES[*]}"
        return
    fi
    [[ "$(id -u)" == 0 ]] || die "need root to apt-get install:$missing (run as root or install them)"
    command -v apt-get >/dev/null || die "no apt-get: this script targets Debian 12 (bookworm)"
    say "apt-get install ${missing# }"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    local f
    for f in "${BACKEND_FILES[@]}"; do
        [[ -e "$f" ]] || die "$f missing after install: Debian's library layout changed (dpkg -L the package)"
    done
}

build_wheel() {
    local whl version shim
    whl="$(wheel_path)"
    version="$(numpy_version)"
    if [[ -f "$whl" ]]; then
        say "numpy $version wheel already built: $whl"
        return
    fi
    mkdir -p "$WHEEL_DIR"
    # numpy's meson build finds the generic BLAS through pkg-config 'blas'. When another package owns the
    # libblas.so development alternative only blas-netlib.pc exists, so give pkg-config a shim (spec 3.2).
    shim="$ROOT/.cache/pc-shim"
    mkdir -p "$shim"
    if ! pkg-config --exists blas; then
        ln -sf "$LIB/pkgconfig/blas-netlib.pc" "$shim/blas.pc"
        say "pkg-config has no 'blas'; using $shim/blas.pc -> blas-netlib.pc"
    fi
    if ! pkg-config --exists lapack; then
        ln -sf "$LIB/pkgconfig/lapack-netlib.pc" "$shim/lapack.pc"
        say "pkg-config has no 'lapack'; using $shim/lapack.pc -> lapack-netlib.pc"
    fi
    say "building numpy $version from source against libblas.so.3/liblapack.so.3 (minutes on 2 cores)"
    local log="$WHEEL_DIR/numpy-$version-build.log" t0=$SECONDS
    # --no-cache-dir: never reuse a source build pip cached with other options. allow-noblas=false makes
    # a failed BLAS detection an error instead of a silently BLAS-free numpy.
    if ! PKG_CONFIG_PATH="$shim${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
        "$PYTHON" -m pip wheel --no-binary numpy --no-deps --no-cache-dir -w "$WHEEL_DIR" \
        "numpy==$version" \
        -Csetup-args=-Dblas=blas -Csetup-args=-Dlapack=lapack -Csetup-args=-Dallow-noblas=false \
        >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "numpy build failed; full log: $log"
    fi
    [[ -f "$whl" ]] || die "pip wheel finished but $whl is not there (see $log)"
    say "built $whl in $((SECONDS - t0)) s (log: $log)"
}

# blas-mkl: MKL comes from PyPI's mkl wheel (about 200 MB, ISSL licence). Where it cannot be installed the
# env says so and passes without running tests, rather than silently testing another backend.
mkl_env() {
    local env_dir="${1:?ENV_DIR}" env_python="${2:?ENV_PYTHON}" rt
    shift 2
    if ! compgen -G "$env_dir/lib/libmkl_rt.so.*" >/dev/null; then
        say "installing the mkl wheel into $env_dir"
        if ! "$env_python" -m pip install --quiet mkl; then
            say "blas-mkl SKIPPED: the PyPI 'mkl' wheel could not be installed here; no tests were run"
            return 0
        fi
    fi
    rt="$(compgen -G "$env_dir/lib/libmkl_rt.so.*" | sort -V | tail -n 1 || true)"
    if [[ -z "$rt" ]]; then
        say "blas-mkl SKIPPED: mkl installed but $env_dir/lib/libmkl_rt.so.* is missing; no tests were run"
        return 0
    fi
    # libmkl_rt exports the BLAS/CBLAS/LAPACK symbols; numpy asks the loader for the generic sonames.
    mkdir -p "$env_dir/blas-shim"
    ln -sf "$rt" "$env_dir/blas-shim/libblas.so.3"
    ln -sf "$rt" "$env_dir/blas-shim/liblapack.so.3"
    say "blas-mkl: libblas.so.3, liblapack.so.3 -> $rt"
    "$env_python" -m pytest "$@"
    "$env_python" "$ROOT/tools/make_cross_backend_reference.py" --compare
}

# The guard of tests/test_blas_backend.py for envs that run no tests (bench): fail before measuring the
# wrong backend.
guard() {
    [[ -n "${INVBOUNDS_EXPECT_BLAS:-}" ]] || return 0
    python - <<'PY'
import os, sys
from verification import blas
info = blas.loaded_blas()
problems = blas.check_expected(os.environ["INVBOUNDS_EXPECT_BLAS"], info)
print("blas_matrix: BLAS", blas.describe(info), file=sys.stderr)
sys.exit("blas_matrix: " + "; ".join(problems) if problems else 0)
PY
}

# bench envs: gate against this env's stored baseline when there is one. pytest-benchmark fails with
# "--benchmark-compare-fail requires valid --benchmark-compare" when no saved run exists for this
# machine id, so the first run on a machine only reports (save one with --benchmark-save, docs/blas.md).
bench() {
    local env_name="${1:?ENV_NAME}" storage
    shift
    guard
    storage="$ROOT/benchmarks/baselines/$env_name"
    # --ratio-gates: same-run speed ratios against their floors (benchmarks/ratio_gates.json).
    local args=(benchmarks --benchmark-enable --benchmark-only --ratio-gates
                "--benchmark-storage=file://$storage")
    if [[ $# -gt 0 ]]; then
        args+=("$@")
    else
        # pytest-benchmark keeps runs per machine id (utils.get_machine_id); another Python or OS has none.
        local machine
        machine="$(python -c 'import platform as p; print("-".join([p.system(), p.python_implementation(),
            ".".join(p.python_version_tuple()[:2]), p.architecture()[0]]))')"
        if compgen -G "$storage/$machine/*.json" >/dev/null; then
            args+=(--benchmark-compare --benchmark-compare-fail=min:25%)
        else
            say "no baseline under $storage/$machine: reporting only" \
                "(save one: tox -e $env_name -- --benchmark-save=baseline)"
        fi
    fi
    exec python -m pytest "${args[@]}"
}

case "${1:-setup}" in
    setup)
        install_packages
        build_wheel
        check
        say "ready: tox -e py311,blas-netlib,blas-openblas,blas-blis,blas-mkl,lint"
        ;;
    --check | check) check ;;
    mkl-env) shift; mkl_env "$@" ;;
    bench) shift; bench "$@" ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (try --help)" ;;
esac
