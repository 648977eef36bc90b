#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: creates the venv, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k dry_run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The Docker tests need an engine and the base image: start / build them here, with progress,
# rather than inside the first test (both are no-ops when already there).
bash plugin_runtime/scripts/docker-engine.sh
bash plugin_runtime/scripts/base-image.sh
# PostgreSQL, Chromium and Label Studio, which the service, browser and platform tests start.
scripts/test-services.sh
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  # pytest's "no tests collected": a suite that ran nothing must not pass silently.
  echo "scripts/test.sh: pytest collected no tests (check tests/ and the -k/-m filters)" >&2
  exit 1
fi
exit "$status"
