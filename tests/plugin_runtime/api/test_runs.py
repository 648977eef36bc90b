"""Runs: an unknown run is 404, a run that cannot be retried 409, each with what to do."""

from __future__ import annotations

from tests.plugin_runtime.api.workload import read_json
from tests.plugin_runtime.service_fixtures import Service


def test_an_unknown_run_is_not_found(busy: Service) -> None:
    for method, path in (("GET", "/v1/runs/run-nope"), ("POST", "/v1/runs/run-nope/retry")):
        response = busy.admin.request(method, busy.url + path, timeout=30)
        assert (response.status_code, response.json()) == (404, {"detail": "run 'run-nope' does not exist"})


def test_a_run_that_cannot_be_retried_is_a_conflict_and_stays_as_it_was(busy: Service) -> None:
    run = read_json(busy, "/v1/runs", status="succeeded")[0]
    response = busy.admin.post(f"{busy.url}/v1/runs/{run['id']}/retry", timeout=30)
    assert response.status_code == 409
    assert response.json() == {"detail": f"run {run['id']} is succeeded: only failed, dead or skipped runs are retried"}
    assert read_json(busy, f"/v1/runs/{run['id']}")["status"] == "succeeded"


def test_the_retried_run_ran_again(busy: Service) -> None:
    # The workload's failing event ran twice, the second time as a retry of the same run.
    runs = [r for r in read_json(busy, "/v1/runs", plugin="api-bot") if r["event_id"] == "evt-api-2"]
    assert [(r["status"], r["attempts"]) for r in runs] == [("failed", 2)]
