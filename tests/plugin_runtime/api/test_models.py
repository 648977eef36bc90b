"""The response models describe what the routes answer, key for key, and change no value:
every key of every answer is documented, and each answer is the runtime's own record."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import requests
from pydantic import BaseModel

from plugin_runtime.api import models
from plugin_runtime.views import RunViews
from tests.plugin_runtime.api.workload import PROJECT, read_json, same_json
from tests.plugin_runtime.service_fixtures import Service

#: A concrete path for each GET route of the API (a new route needs one here).
PATHS = {
    "/healthz": "/healthz",
    "/v1/plugins": "/v1/plugins",
    "/v1/plugins/{name}": "/v1/plugins/api-bot",
    "/v1/plugins/{name}/versions": "/v1/plugins/api-bot/versions",
    "/v1/plugins/{name}/versions/{version}": "/v1/plugins/api-bot/versions/1",
    "/v1/plugins/{name}/build-log": "/v1/plugins/api-bot/build-log",
    "/v1/runs": "/v1/runs",
    "/v1/events/{event_id}/runs": "/v1/events/evt-api-1/runs",
    "/v1/shadows": "/v1/shadows",
    "/v1/connections": "/v1/connections",
    "/v1/runs/{run_id}": None,  # the first run listed
    "/v1/logs": "/v1/logs",
    "/v1/projects": "/v1/projects",
    "/v1/projects/{project_id}": f"/v1/projects/{PROJECT}",
    "/v1/projects/{project_id}/assets": f"/v1/projects/{PROJECT}/assets",
    "/v1/projects/{project_id}/assets/{asset_id}": f"/v1/projects/{PROJECT}/assets/asset-api-3",
}


def undocumented(annotation: Any, value: Any, where: str = "") -> list[str]:
    """Keys of ``value`` that ``annotation`` (a model, a list of them, optional) does not
    declare. A label's own extra keys are what a recorded event carried: not ours to declare."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert isinstance(value, dict), (where, value)
        found = [f"{where}.{key}" for key in value
                 if key not in annotation.model_fields and annotation is not models.Label]
        for name, field in annotation.model_fields.items():
            if name in value:
                found += undocumented(field.annotation, value[name], f"{where}.{name}")
        return found
    if get_origin(annotation) is list and isinstance(value, list):
        (item,) = get_args(annotation)
        return [key for index, element in enumerate(value) for key in undocumented(item, element, f"{where}[{index}]")]
    if get_origin(annotation) in (Union, types.UnionType) and value is not None:
        documented = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return undocumented(documented[0], value, where) if documented else []
    return []


def documented_gets(service: Service) -> dict[str, Any]:
    """Each GET route of /openapi.json with the model of its answer (``list[Model]`` for a list)."""
    document = requests.get(f"{service.url}/openapi.json", timeout=30).json()
    found: dict[str, Any] = {}
    for path, methods in document["paths"].items():
        schema = methods.get("get", {}).get("responses", {}).get("200", {}).get("content", {}) \
            .get("application/json", {}).get("schema")
        if schema is None:
            continue
        model = getattr(models, schema.get("items", schema)["$ref"].rsplit("/", 1)[1])
        found[path] = list[model] if "items" in schema else model  # type: ignore[valid-type]
    return found


def test_every_key_of_every_answer_is_documented(busy: Service) -> None:
    routes = documented_gets(busy)
    assert set(routes) == set(PATHS)
    run_id = read_json(busy, "/v1/runs")[0]["id"]
    for route, model in routes.items():
        path = PATHS[route] or f"/v1/runs/{run_id}"
        answer = read_json(busy, path)
        assert answer, path
        assert undocumented(model, answer) == [], path


def test_the_answers_of_writes_are_documented(service: Service) -> None:
    url, admin = service.url, service.admin
    project = admin.post(f"{url}/v1/projects", json={"id": "proj-writes", "title": "W"}, timeout=30)
    asset = admin.post(f"{url}/v1/projects/proj-writes/assets", json={"id": "a-w", "json_metadata": {"k": 1}},
                       timeout=30)
    label = admin.post(f"{url}/v1/projects/proj-writes/assets/a-w/labels", json={"json_response": {}}, timeout=30)
    for response, model in ((project, models.Project), (asset, models.Asset), (label, models.LabelSubmitted)):
        assert response.status_code == 201, response.text
        assert undocumented(model, response.json()) == []
    # A submitted label is not in its asset's list: it carries no "latest" flags, not even null.
    assert "isLatestLabelForUser" not in label.json()["label"]


def test_each_answer_is_the_runtimes_record_unchanged(busy: Service) -> None:
    runtime, views = busy.runtime, RunViews(busy.runtime.store)
    db = runtime.store.read()
    run_id = read_json(busy, "/v1/runs")[0]["id"]
    expected = {
        "/v1/plugins": runtime.registry.plugins(),
        "/v1/plugins/api-bot/versions": runtime.registry.versions("api-bot"),
        "/v1/plugins/api-bot/versions/1": runtime.registry.version("api-bot", 1, with_log=True),
        "/v1/runs": views.runs(),
        f"/v1/runs/{run_id}": views.run(run_id),
        "/v1/logs": views.logs(),
        "/v1/projects": runtime.platform.projects(db),
        f"/v1/projects/{PROJECT}": runtime.platform.project(db, PROJECT),
        f"/v1/projects/{PROJECT}/assets": runtime.platform.assets(db, PROJECT),
        f"/v1/projects/{PROJECT}/assets/asset-api-1": runtime.platform.asset(db, PROJECT, "asset-api-1"),
    }
    for path, record in expected.items():
        assert read_json(busy, path) == same_json(record), path
    # What the workload was meant to show is there: actions of each kind, logs, a recorded
    # label's own keys, computed "latest" flags.
    run = read_json(busy, f"/v1/runs/{run_id}")
    assert run["logs"]
    assert {a["action"]["type"] for a in run["actions"]} == {"create_issue", "update_asset", "append_label"}
    asset = read_json(busy, f"/v1/projects/{PROJECT}/assets/asset-api-1")
    recorded = next(label for label in asset["labels"] if label["id"] == "label-api-1-old")
    assert recorded["numberOfAnnotations"] == 0 and recorded["isLatestLabelForUser"] is True
    assert asset["issues"] and asset["issues"][0]["text"] == "look again"


def test_the_check_sees_an_undocumented_key() -> None:
    run = {name: None for name in models.Run.model_fields}
    assert undocumented(list[models.Run], [run, {**run, "new": 1}]) == ["[1].new"]
    page = {"lines": [{"cursor": 1, "added": True}], "cursor": 1}
    assert undocumented(models.LogPage, page) == [".lines[0].added"]
