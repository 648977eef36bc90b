"""What the routers share: the admin token on every route that needs it, bounded bodies, and
an API that does not import the server."""

from __future__ import annotations

import re
import subprocess
import sys

import requests

from tests.plugin_runtime.service_fixtures import Service

WRONG = "missing or wrong bearer token"


def test_the_api_does_not_import_the_server() -> None:
    # server.serve imports the API: the API importing the server back was a cycle.
    code = "import sys, plugin_runtime.api; print('plugin_runtime.server' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def test_every_admin_route_refuses_a_missing_or_wrong_token_and_changes_nothing(service: Service) -> None:
    document = requests.get(f"{service.url}/openapi.json", timeout=30).json()
    before = {table: service.count(table) for table in ("plugins", "projects", "assets", "events", "runs")}
    checked = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if "security" not in operation:
                continue
            url = service.url + re.sub(r"\{[^}]+\}", "1", path)
            for headers in ({}, {"Authorization": "Bearer " + "x" * len(service.runtime.token)}):
                response = requests.request(method, url, headers=headers, json={"id": "p"}, timeout=30)
                assert response.status_code == 401, (method, path, response.text)
                assert WRONG in response.json()["detail"]
            checked += 1
    assert checked == 32  # all but /healthz and the webhooks (events, connections')
    assert before == {table: service.count(table) for table in before}


def test_a_body_without_a_length_is_cut_at_the_limit(service: Service) -> None:
    def chunks():  # sent chunked: no Content-Length to refuse it up front
        for _ in range(40):
            yield b"0" * (1024 * 1024)

    before = service.count("plugin_versions")
    response = service.admin.post(f"{service.url}/v1/plugins/big/versions", params={"create": "true"},
                                  data=chunks(), timeout=60)
    assert response.status_code == 413
    assert response.json() == {"detail": f"the body is over the limit of {20 * 1024 * 1024} bytes"}
    assert service.count("plugin_versions") == before


def test_a_runtime_without_a_token_lets_no_one_in(service: Service) -> None:
    # The check compared with str(None): "Bearer None" was the admin token of such a runtime.
    token = service.runtime.token
    service.runtime.token = None
    try:
        for given in ("None", "", "x"):
            response = requests.get(f"{service.url}/v1/plugins", headers={"Authorization": f"Bearer {given}"},
                                    timeout=30)
            assert response.status_code == 401, given
            assert WRONG in response.json()["detail"]
    finally:
        service.runtime.token = token
