#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need (idempotent), checks
# formatting and lints, then runs the whole workspace's tests against SQLite files and the local
# PostgreSQL (postgres://postgres@127.0.0.1:5432/test unless TEST_DATABASE_URL says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# One pass over a fresh tree (CI) gains nothing from incremental caches, which double the disk
# used; set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# No module imports another that imports it back (directly or through others).
python3 scripts/module-cycles.py
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --bins
# The release binaries, through the very script the Dockerfile runs (fails if one is missing or
# does not start).
grep -q 'scripts/build-release.sh' Dockerfile || { echo "the Dockerfile no longer uses scripts/build-release.sh" >&2; exit 1; }
scripts/build-release.sh target/dist
cargo test --workspace --no-fail-fast
