#!/usr/bin/env bash
# The main job on a fresh machine: set up (venv, Docker engine, base image), start the runtime,
# upload the invoice QA bot, replay its recorded events, and show the actions applied.
# Extra arguments go to `plugin-runtime demo` (e.g. --keep-serving, --sandbox process).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# `--sandbox process` runs without Docker: do not install or start an engine for it.
sandbox=docker
previous=""
for arg in "$@"; do
  case "$arg" in
    --sandbox=*) sandbox=${arg#--sandbox=} ;;
    *) if [ "$previous" = "--sandbox" ]; then sandbox=$arg; fi ;;
  esac
  previous=$arg
done
if [ "$sandbox" != process ]; then
  bash plugin_runtime/scripts/docker-engine.sh
  bash plugin_runtime/scripts/base-image.sh
fi
exec .venv/bin/plugin-runtime demo "$@"
