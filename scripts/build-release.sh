#!/usr/bin/env bash
# Builds the release binaries the platform ships — the three services and the all-in-one
# `iafactory-local` — and copies them into OUT (default: target/dist). Fails when one is missing or
# does not start. The Dockerfile and CI (scripts/test.sh) both call this script, so what CI checks
# is what the image holds.
#
# (At the root of this workspace, which is also a package, a bare `cargo build --bins` builds only
# the root package: each binary's package is named here.)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/dist}
BINS=(promo-service llm-gateway gateway-rest iafactory-local)
packages=(-p promo-service -p llm-gateway -p gateway-rest -p iafactory-local)

cargo build --release --locked "${packages[@]}" --bins
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$out"
for bin in "${BINS[@]}"; do
  src="$target/release/$bin"
  if [ ! -x "$src" ]; then
    echo "build-release: $bin was not built ($src missing)" >&2
    exit 1
  fi
  cp "$src" "$out/$bin"
  if ! version=$("$out/$bin" --version 2>&1); then
    echo "build-release: $bin does not start: $version" >&2
    exit 1
  fi
  echo "build-release: $out/$bin ($version)" >&2
done
