#!/usr/bin/env bash
# Creates .venv (stock Debian's pip refuses system installs, PEP 668) and installs the project
# with its dev extra into it. Idempotent: reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PLUGIN_RUNTIME_VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf '[bootstrap] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    say "installing python3-venv (the venv module is missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q python3-venv >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
  fi
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

marker="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$marker" ]; then
  say "installing plugin-runtime and its dev extra into $VENV (pip honours your pip configuration)"
  log="$VENV/pip-install.log"
  "$VENV/bin/python" -m pip install -q --upgrade pip >"$log" 2>&1 || true
  if ! "$VENV/bin/python" -m pip install -e '.[dev]' >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    say "pip install failed; the whole log is in $log"
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$marker"
fi
