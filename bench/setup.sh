#!/usr/bin/env bash
# What the `deployed` benchmark needs beyond the toolchain: wrk (the load tool) and nginx (the
# zero-latency upstream), from Debian's packages. Idempotent: does nothing when both are there.
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
