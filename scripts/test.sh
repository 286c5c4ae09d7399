#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need (idempotent), checks
# formatting and lints, then runs the whole workspace's tests against SQLite files and the local
# PostgreSQL (postgres://postgres@127.0.0.1:5432/test unless TEST_DATABASE_URL says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
