"""The embedded platform's routes: its refusals answer by their kind, whatever their text."""

from __future__ import annotations

from tests.plugin_runtime.api.workload import submitted
from tests.plugin_runtime.service_fixtures import Service


def test_a_platform_not_found_is_404_with_its_message(service: Service) -> None:
    url, admin = service.url, service.admin
    for path, detail in (("/v1/projects/proj-nowhere", "project 'proj-nowhere' does not exist"),
                         ("/v1/projects/proj-nowhere/assets", "project 'proj-nowhere' does not exist")):
        response = admin.get(url + path, timeout=30)
        assert (response.status_code, response.json()) == (404, {"detail": detail})
    assert admin.post(f"{url}/v1/projects", json={"id": "proj-404"}, timeout=30).status_code == 201
    response = admin.get(f"{url}/v1/projects/proj-404/assets/a-none", timeout=30)
    missing = {"detail": "asset 'a-none' does not exist in project 'proj-404'"}
    assert (response.status_code, response.json()) == (404, missing)
    events = service.count("events")
    label = admin.post(f"{url}/v1/projects/proj-404/assets/a-none/labels", json={"json_response": {}}, timeout=30)
    assert (label.status_code, label.json()) == (404, missing)
    assert service.count("events") == events  # no label, so no event


def test_a_platform_conflict_is_409_even_when_its_text_says_does_not_exist(service: Service) -> None:
    # The status once came from searching the message for "does not exist".
    url, admin = service.url, service.admin
    assert admin.post(f"{url}/v1/projects", json={"id": "does not exist"}, timeout=30).status_code == 201
    again = admin.post(f"{url}/v1/projects", json={"id": "does not exist"}, timeout=30)
    assert (again.status_code, again.json()) == (409, {"detail": "project 'does not exist' already exists"})
    asset = {"id": "asset does not exist"}
    assert admin.post(f"{url}/v1/projects/does not exist/assets", json=asset, timeout=30).status_code == 201
    twice = admin.post(f"{url}/v1/projects/does not exist/assets", json=asset, timeout=30)
    assert (twice.status_code, twice.json()) == (409, {"detail": "asset 'asset does not exist' already exists"})


def test_a_label_submitted_twice_is_a_conflict_and_stores_one_event(service: Service) -> None:
    url, admin = service.url, service.admin
    assert admin.post(f"{url}/v1/projects", json={"id": "proj-twice"}, timeout=30).status_code == 201
    assert admin.post(f"{url}/v1/projects/proj-twice/assets", json={"id": "a-twice"}, timeout=30).status_code == 201
    events = service.count("events")
    label = {"json_response": {"A": {"text": "x"}}, "id": "label-twice"}
    first = admin.post(f"{url}/v1/projects/proj-twice/assets/a-twice/labels", json=label, timeout=30)
    assert first.status_code == 201 and first.json()["label"]["id"] == "label-twice"
    second = admin.post(f"{url}/v1/projects/proj-twice/assets/a-twice/labels", json=label, timeout=30)
    assert (second.status_code, second.json()) == (409, {"detail": "label 'label-twice' already exists"})
    assert service.count("events") == events + 1


def test_an_event_naming_another_projects_asset_is_a_conflict_and_stores_nothing(service: Service) -> None:
    assert service.post_event(submitted("evt-home", "asset-home", "label-home", {})).status_code == 202
    stray = {**submitted("evt-stray", "asset-home", "label-stray", {}), "project_id": "proj-elsewhere"}
    stray["context"] = {}
    events = service.count("events")
    response = service.post_event(stray)
    assert response.status_code == 409
    assert response.json() == {"detail": "asset 'asset-home' belongs to another project than 'proj-elsewhere'"}
    assert service.count("events") == events
