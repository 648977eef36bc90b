#!/usr/bin/env bash
# The services the test suite starts by itself (on 127.0.0.1, in temp dirs): PostgreSQL 15,
# Chromium (and libatomic for Playwright's driver) for the dashboard's browser tests, Label Studio in a cached venv outside the
# repository. Installs what is missing, with progress; a no-op when all are there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test-services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
source plugin_runtime/scripts/_apt.sh

missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Playwright's bundled node driver needs libatomic, which a minimal Debian lacks.
ldconfig -p | grep -q 'libatomic\.so\.1 ' || missing+=(libatomic1)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is unavailable: install them"
  log "installing ${missing[*]} with apt-get (a minute or two)"
  # postgresql's postinst would start a cluster through invoke-rc.d: the tests start their own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install "${missing[@]}"
fi

if [ -x scripts/services/label-studio.sh ]; then
  scripts/services/label-studio.sh
fi
