#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh
#
# Stages run in order; each one fails the whole run. The conformance tests find
# the pinned venv themselves (create it with: bash scripts/make-venv.sh target/test-venv).
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# tests/slow_fs.rs mounts the FUSE harness examples/slowfs.rs; `cargo test`
# builds examples only as test harnesses, so the program is built first.
echo "==> cargo build --example slowfs" >&2
cargo build --example slowfs

echo "==> cargo test --all-targets" >&2
cargo test --all-targets

echo "==> cargo test --doc" >&2
cargo test --doc

echo "==> Python front: pip install . into a fresh venv, then pytest tests/python" >&2
bash scripts/test-python.sh
