#!/usr/bin/env bash
# Label Studio for the test suite and bench/label_studio.py, in a virtual environment of its
# own outside the repository (it is large: Django and its dependencies, ~500 MB), cached
# across runs. Idempotent: a no-op once the pinned version is installed and answers --version.
# Prints the venv's path on stdout when done; progress goes to stderr.
set -euo pipefail

VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
CACHE="${PLUGIN_RUNTIME_CACHE:-$HOME/.cache/plugin-runtime}"
VENV="$CACHE/label-studio/venv"
MARKER="$VENV/.installed-$VERSION"

log() { printf 'label-studio: %s\n' "$*" >&2; }

# The installed version, read without starting Label Studio (`label-studio --version` would
# create and migrate a database in the user's data folder first).
installed() { "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null; }

if [ -f "$MARKER" ] && [ "$(installed)" = "$VERSION" ]; then
  log "label-studio $VERSION ready in $VENV"
  echo "$VENV"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || { log "ERROR: no $PYTHON: install Python 3.10+"; exit 1; }
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  log "installing python3-venv with apt-get"
  apt-get install -y -q python3-venv >/dev/null
fi

mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/pip" ]; then
  log "creating a virtual environment in $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
log "installing label-studio==$VERSION (first time: a few minutes, ~500 MB)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --progress-bar off \
  "label-studio==$VERSION" >&2
[ "$(installed)" = "$VERSION" ] || { log "ERROR: label-studio $VERSION is not importable in $VENV: see above"; exit 1; }
rm -f "$VENV"/.installed-*
touch "$MARKER"
log "label-studio $VERSION ready in $VENV"
echo "$VENV"
