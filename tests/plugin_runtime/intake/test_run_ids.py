"""Run ids drawn in batches stay distinct and keep their form across batches."""

from __future__ import annotations

import re

from plugin_runtime.intake.intake import RUN_ID_BATCH, RunIds


def test_run_ids_are_distinct_across_batches() -> None:
    ids = RunIds()
    drawn = [ids.new() for _ in range(3 * RUN_ID_BATCH + 1)]
    assert all(re.fullmatch(r"run-[0-9a-f]{16}", run_id) for run_id in drawn)
    assert len(set(drawn)) == len(drawn)
    # Another runtime (a restart) draws its own.
    assert not set(drawn) & {RunIds().new() for _ in range(RUN_ID_BATCH)}
