"""Statuses and outcomes are enums whose members are the strings the database, the HTTP API and
the CLI held before: nothing a user or a stored row sees changes."""

from __future__ import annotations

import json
import sqlite3

from plugin_runtime.statuses import ActionStatus, RunOutcome, RunStatus, VersionStatus
from plugin_sdk.results import RunResult, Status


def test_the_values_are_the_strings_of_the_wire_formats() -> None:
    assert [s.value for s in RunStatus] == ["pending", "running", "succeeded", "failed", "dead", "skipped"]
    assert [s.value for s in VersionStatus] == ["deploying", "active", "inactive", "failed"]
    assert [s.value for s in ActionStatus] == ["applied", "rejected"]
    assert [s.value for s in Status] == ["ok", "error", "timeout", "oom_killed", "output_limit", "invalid_output"]
    assert {o.value for o in RunOutcome} == {"error", "timeout", "oom_killed", "output_limit", "invalid_output",
                                             "infrastructure", "build_failed", "queue_full"}


def test_every_failed_sandbox_status_is_an_outcome() -> None:
    assert RunOutcome.of(Status.OK) is None
    for status in Status:
        if status != Status.OK:
            assert RunOutcome.of(status) == status.value


def test_a_member_reads_as_its_string_everywhere() -> None:
    member = RunStatus.DEAD
    assert member == "dead" and str(member) == "dead" and f"{member}" == "dead" and f"{member:>6}" == "  dead"
    assert "%s" % member == "dead" and json.dumps({"status": member}) == '{"status": "dead"}'
    assert {"dead": 1}[member] == 1
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE runs (status TEXT)")
    db.execute("INSERT INTO runs VALUES (?)", (member,))
    assert db.execute("SELECT status, typeof(status) FROM runs WHERE status = 'dead'").fetchone() == ("dead", "text")


def test_a_run_result_takes_and_gives_strings() -> None:
    result = RunResult(event_id="evt-1", status="timeout")
    assert result.status is Status.TIMEOUT and result.status == "timeout" and not result.ok
    assert result.wire()["status"] == "timeout" and json.loads(result.model_dump_json())["status"] == "timeout"
