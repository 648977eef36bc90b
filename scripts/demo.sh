#!/usr/bin/env bash
# The main job on a fresh machine: set up (venv, Docker engine, base image), start the runtime,
# upload the invoice QA bot, replay its recorded events, and show the actions applied.
# Extra arguments go to `plugin-runtime demo` (e.g. --keep-serving).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
bash plugin_runtime/scripts/docker-engine.sh
bash plugin_runtime/scripts/base-image.sh
exec .venv/bin/plugin-runtime demo "$@"
