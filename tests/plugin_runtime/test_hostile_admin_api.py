"""Admin requests carrying numbers the store cannot hold: each was a 500 (SQLite's INTEGER is
64 bits; Python's json reads 10**20, 1e400 as inf, and nests until RecursionError). Each must be
a 4xx saying what is wrong, storing nothing, and the service must go on."""

from __future__ import annotations

import pytest
import requests

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service
from tests.plugin_runtime.test_hostile_host import BENIGN, assert_benign_still_runs, deploy, make_zip


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database):
    running = start_service(tmp_path_factory.mktemp("hostile-admin"), "process", database)
    deploy(running, "benign", BENIGN, "proj-admin")
    victim = {"id": "victim-event", "type": "onSubmit", "project_id": "proj-victim", "asset_id": "victim-asset",
              "label": {"id": "victim-label", "jsonResponse": {}}}
    assert running.post_event(victim).status_code == 202
    running.settle()
    yield running
    stop_service(running)


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/logs?after=99999999999999999999", None),
    ("GET", "/v1/plugins/benign/versions/99999999999999999999", None),
    ("GET", "/v1/plugins/benign/build-log?version=99999999999999999999", None),
    ("POST", "/v1/plugins/benign/rollback", b'{"version": 100000000000000000000}'),
    ("POST", "/v1/projects/proj-victim/assets", b'{"id": "huge-priority", "priority": 100000000000000000000}'),
    ("POST", "/v1/projects/proj-victim/assets/victim-asset/labels", b'{"json_response": {}, "seconds_to_label": 1e400}'),
    ("POST", "/v1/plugins/benign/versions?limits=" + "[" * 3000 + "]" * 3000, make_zip(BENIGN)),
    ("POST", '/v1/plugins/benign/versions?limits={"timeout_s": NaN}', make_zip(BENIGN)),
])
def test_admin_requests_with_numbers_out_of_range_get_a_4xx(service: Service, method: str, path: str, body) -> None:
    before = (service.count("plugin_versions"), service.count("labels"), service.count("assets"))
    headers = {"Content-Type": "application/json"} if body and body.startswith(b"{") else {}
    response = service.admin.request(method, service.url + path, data=body, headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert response.json()["detail"]
    assert (service.count("plugin_versions"), service.count("labels"), service.count("assets")) == before
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
    assert_benign_still_runs(service, "proj-admin", f"after-{method}-{len(path)}")
