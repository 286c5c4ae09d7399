#!/usr/bin/env bash
# The platform as deployed, under a standard load tool: installs wrk and nginx (bench/setup.sh),
# builds the release binaries (scripts/build-release.sh, as the Dockerfile does), then starts the
# three services as separate processes with nginx as zero-latency upstream and prints req/s,
# p50/p99 and server CPU per request for chat, remaining, validate and the upstream alone (and,
# asked for, the floor: the same exchanges doing none of the platform's work).
# Arguments go to the `deployed` program (`--help`): e.g. --seconds 20 --connections 1,32,64.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
scripts/build-release.sh target/dist >/dev/null
# The transport floor (`--scenarios floor-chat,floor-remaining`), built like the services.
cargo build --release --locked --quiet -p iafactory-bench --bin floor
# The orchestrator only starts processes and reads /proc: its debug build is enough (and reuses
# the test build).
cargo run --quiet --locked -p iafactory-bench --bin deployed -- --dist target/dist "$@"
