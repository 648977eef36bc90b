#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the invoice QA bot against its recorded
# events and show the actions it would apply.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/plugin-runtime dry-run example_plugins/invoice_qa \
  --events example_plugins/invoice_qa/events.jsonl --format human "$@"
