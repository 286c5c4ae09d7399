#!/usr/bin/env bash
# Online backup of one of the platform's SQLite files (promo.db, llm-gateway.db), taken while the
# service keeps running and writing: `VACUUM INTO` copies a consistent snapshot (one read
# transaction; in WAL mode it does not block the service's writes), then the copy is checked with
# `PRAGMA integrity_check` and moved into place only if it passes.
#
#   scripts/backup-sqlite.sh DB OUT      e.g. scripts/backup-sqlite.sh data/promo.db backups/promo-$(date +%F).db
#
# OUT must not exist. Needs the sqlite3 CLI (Debian: apt-get install sqlite3). Everything answered
# by the service before the backup starts is in OUT. Restore: stop the service, move its DB file
# and the DB-wal / DB-shm files beside it away, copy OUT to DB, start the service (README, Deploy).
# Tested by promo-service/tests/api/backup.rs (restore drill).
set -euo pipefail

die() { printf 'backup-sqlite: %s\n' "$*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 DB OUT"
db=$1
out=$2
command -v sqlite3 >/dev/null 2>&1 || die "the sqlite3 CLI is missing (Debian: apt-get install sqlite3)"
[ -f "$db" ] || die "$db: no such file"
[ ! -e "$out" ] || die "$out already exists"
mkdir -p "$(dirname "$out")"

partial="$out.partial.$$"
trap 'rm -f "$partial"' EXIT
# SQL string literal: single quotes doubled.
quoted=${partial//\'/\'\'}
# .timeout: wait (up to 30 s) rather than fail if the service holds a lock at that instant.
sqlite3 -bail "$db" ".timeout 30000" "VACUUM INTO '$quoted'"
check=$(sqlite3 -bail "$partial" "PRAGMA integrity_check")
[ "$check" = "ok" ] || die "integrity check of the copy failed: $check"
sync "$partial" 2>/dev/null || sync
mv "$partial" "$out"
trap - EXIT
printf 'backup-sqlite: %s -> %s (%s bytes, integrity ok)\n' "$db" "$out" "$(stat -c %s "$out")"
