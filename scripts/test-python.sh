#!/usr/bin/env bash
# Builds the Python package, installs it into a fresh venv and runs the
# pytest suite in tests/python.
#
# Usage: bash scripts/test-python.sh [PYTEST ARGS...]
#
# 1. The pinned test venv (scripts/make-venv.sh target/test-venv) provides
#    the real distributions: pytest and its plugins, flake8 and its plugins,
#    sphinx, ... (about 70).
# 2. target/py-test-venv is recreated from scratch; `pip install .` builds
#    epcache with maturin (fetched from PyPI by pip's build isolation) and
#    installs it there, with the importlib_metadata backport for the
#    backport tests. A .pth file adds the pinned venv's site-packages to it,
#    so its sys.path holds two site directories and the pinned venv's
#    pytest runs the suite.
#    The same wheel (abi3) is installed into one venv per pyenv CPython
#    3.9-3.13 for the version matrix (tests/python/test_versions.py).
# 3. pytest runs with EPCACHE_DIR in a scratch directory, so that the
#    user's own cache is never touched.
#
# Needs: python3 (>= 3.11, or $PYTHON), cargo, and PyPI.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

log() { printf 'test-python: %s\n' "$*" >&2; }

py_base=${PYTHON:-python3}
test_site=$(bash scripts/make-venv.sh target/test-venv)
log "pinned venv site-packages: $test_site"

# EPCACHE_PY_TEST_VENV puts it elsewhere, so that two runs can go on at once.
venv=${EPCACHE_PY_TEST_VENV:-$repo/target/py-test-venv}
log "creating a fresh venv at $venv"
"$py_base" -m venv --clear "$venv" >&2
vpy=$venv/bin/python

# One wheel (abi3) for this venv and for every interpreter of the version
# matrix (tests/python/test_versions.py).
wheels=$venv-wheels
rm -rf "$wheels"
log "pip wheel . (maturin builds the extension module; the first build takes a few minutes)"
"$vpy" -m pip wheel --disable-pip-version-check --no-input --quiet --no-deps -w "$wheels" "$repo" >&2
wheel=$(ls "$wheels"/epcache-*.whl)
log "built $wheel"
"$vpy" -m pip install --disable-pip-version-check --no-input --quiet \
    "$wheel" "importlib_metadata>=6" >&2

own_site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$test_site" > "$own_site/epcache-test-venv.pth"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/epcache-pytest.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

log "running pytest"
cd "$repo"
EPCACHE_DIR=$scratch/cache \
EPCACHE_SETTLE_SECS=0 \
EPCACHE_STRICT=1 \
EPCACHE_TEST_SITE=$test_site \
EPCACHE_WHEEL=$wheel \
    "$vpy" -m pytest -p no:randomly -p no:cacheprovider \
        -o asyncio_default_fixture_loop_scope=function tests/python "$@" || status=$?

# The version matrix's table (tests/python/test_versions.py), when it ran.
report=$repo/target/conformance-matrix.md
if [ -f "$report" ] && [ "$report" -nt "$scratch" ]; then
    log "version matrix (observations compared, differing):"
    cat "$report" >&2
fi
exit "${status:-0}"
