#!/usr/bin/env bash
# Create (or reuse) the pinned test virtualenv used by epcache's conformance tests.
#
# Usage: bash scripts/make-venv.sh DIR
#
# - Creates a venv at DIR with `python3 -m venv` (override the interpreter with
#   $PYTHON) and installs tests/venv/requirements.txt into it with pip, from
#   wheels only. Nothing else is installed (pip itself is not upgraded).
# - Writes DIR/.epcache-venv-stamp holding the sha256 of requirements.txt; when
#   the stamp matches and the venv's interpreter still runs, all work is skipped.
#   A mismatch rebuilds the venv from scratch (`venv --clear`), so packages that
#   were dropped from requirements.txt do not linger.
# - Prints the venv's site-packages directory as its only line on stdout;
#   progress goes to stderr. Exits non-zero with a message on failure.
set -euo pipefail

log() { printf 'make-venv: %s\n' "$*" >&2; }
die() { printf 'make-venv: error: %s\n' "$*" >&2; exit 1; }

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bash scripts/make-venv.sh DIR" >&2
    exit 2
fi

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/.." && pwd)
req="$repo_root/tests/venv/requirements.txt"
[ -f "$req" ] || die "requirements file not found: $req"

dir=${1%/}
[ -n "$dir" ] || dir=/
stamp="$dir/.epcache-venv-stamp"
py_base=${PYTHON:-python3}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        "$py_base" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

venv_python() {
    if [ -x "$dir/bin/python" ]; then
        echo "$dir/bin/python"
    elif [ -x "$dir/Scripts/python.exe" ]; then
        echo "$dir/Scripts/python.exe"
    else
        echo "$dir/bin/python"
    fi
}

# Prints site-packages of the venv; fails if its interpreter is missing/broken.
site_packages() {
    "$(venv_python)" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null
}

want=$(sha256_of "$req")

# Fast path: stamp matches and the interpreter works.
fast_path() {
    if [ -f "$stamp" ] && [ "$(head -n1 "$stamp" 2>/dev/null)" = "$want" ]; then
        local sp
        if sp=$(site_packages) && [ -d "$sp" ]; then
            printf '%s\n' "$sp"
            return 0
        fi
    fi
    return 1
}

fast_path && exit 0

mkdir -p -- "$(dirname -- "$dir")" || die "cannot create parent directory of $dir"

# Serialize concurrent builders of the same DIR (e.g. parallel test processes).
if command -v flock >/dev/null 2>&1; then
    lock="$dir.lock"
    exec 9>"$lock" || die "cannot open lock file $lock"
    flock 9 || die "cannot lock $lock"
    # Someone else may have finished the job while we waited.
    fast_path && exit 0
fi

command -v "$py_base" >/dev/null 2>&1 || die "'$py_base' not found on PATH (set \$PYTHON to a CPython >= 3.11)"
"$py_base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$("$py_base" -V 2>&1) is too old: tests/venv/requirements.txt needs CPython >= 3.11 (set \$PYTHON)"

rm -f -- "$stamp"
log "creating venv at $dir with $("$py_base" -V 2>&1)"
"$py_base" -m venv --clear -- "$dir" >&2 \
    || die "'$py_base -m venv' failed for $dir (on Debian/Ubuntu system Python, install python3-venv)"

vpy=$(venv_python)
[ -x "$vpy" ] || die "venv at $dir has no python interpreter"

log "installing $(grep -c '^[A-Za-z0-9]' "$req") pinned packages from tests/venv/requirements.txt (this takes ~30 s)"
"$vpy" -m pip install \
    --disable-pip-version-check --no-input --quiet \
    --only-binary=:all: \
    -r "$req" >&2 \
    || die "pip install -r $req into $dir failed (is PyPI reachable?)"

sp=$(site_packages) || die "venv interpreter at $vpy does not run after install"
[ -d "$sp" ] || die "site-packages directory $sp does not exist"

printf '%s\n' "$want" > "$stamp.tmp" && mv -f -- "$stamp.tmp" "$stamp" || die "cannot write stamp $stamp"
log "ready: $sp"
printf '%s\n' "$sp"
