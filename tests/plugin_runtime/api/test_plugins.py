"""Plugins: the registry's refusals answer by their kind (400, 404, 409) and store nothing."""

from __future__ import annotations

import io
import zipfile

import requests

from tests.plugin_runtime.service_fixtures import Service

MAIN = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n        pass\n")


def zipped(main: str = MAIN) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", main)
    return buffer.getvalue()


def upload(service: Service, name: str, create: bool) -> requests.Response:
    return service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": str(create).lower()},
                              data=zipped(), timeout=60)


def test_registry_refusals_answer_by_kind_and_store_nothing(service: Service) -> None:
    assert upload(service, "kinds", create=True).status_code == 202
    service.runtime.registry.wait("kinds", 1, 60)
    versions = service.count("plugin_versions")
    cases = [
        (upload(service, "Kinds", create=True), 400, "invalid plugin name 'Kinds'"),
        (upload(service, "kinds", create=True), 409, "plugin 'kinds' already exists: use `plugins update`"),
        (upload(service, "no-such", create=False), 404, "plugin 'no-such' does not exist: use `plugins upload` first"),
        # The process sandbox builds no image: its versions cannot be rolled back to.
        (service.admin.post(f"{service.url}/v1/plugins/kinds/rollback", json={"version": 1}, timeout=30), 409,
         "kinds v1 is active: only a built version can be rolled back to"),
        (service.admin.post(f"{service.url}/v1/plugins/kinds/rollback", json={"version": 7}, timeout=30), 404,
         "plugin 'kinds' has no version 7"),
        (service.admin.put(f"{service.url}/v1/plugins/no-such/projects/p", timeout=30), 404,
         "plugin 'no-such' does not exist"),
    ]
    for response, status, detail in cases:
        assert response.status_code == status, response.text
        assert response.json()["detail"].startswith(detail)
    assert service.count("plugin_versions") == versions


def test_a_plugin_shows_its_summary_and_versions(service: Service) -> None:
    assert upload(service, "shown", create=True).status_code == 202
    service.runtime.registry.wait("shown", 1, 60)
    shown = service.admin.get(f"{service.url}/v1/plugins/shown", timeout=30).json()
    listed = next(p for p in service.admin.get(f"{service.url}/v1/plugins", timeout=30).json() if p["name"] == "shown")
    versions = service.admin.get(f"{service.url}/v1/plugins/shown/versions", timeout=30).json()
    assert shown == {**listed, "versions": versions}
    assert [v["status"] for v in shown["versions"]] == ["active"]
