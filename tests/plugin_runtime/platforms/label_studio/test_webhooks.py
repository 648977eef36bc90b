"""Label Studio's webhooks in: the payload-less poke ``connect`` sets up (the runtime looks at
the project at once) and a webhook carrying its annotation (one a user set up) both bring the
save to the plugin; neither is received without the connection's secret.

The first tests are pure (``webhooks.receive``); the others run a real Label Studio and the
runtime's HTTP service with reconciliation every hour, so only the webhook can bring a save
to the plugin within the test's deadline."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from plugin_runtime.errors import PlatformRefused, Unauthorized
from plugin_runtime.platforms.label_studio import reconcile, webhooks
from plugin_runtime.store.connections import Connection
from tests.plugin_runtime.platforms.label_studio.conftest import BOT, LabelStudio
from tests.plugin_runtime.platforms.label_studio.test_end_to_end import (
    KILI_PLUGIN, TEXT_CONFIG, choice, connect, settled, wait_for,
)
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

SECRET = "s3cret-of-the-connection"
CONNECTION = Connection("label-studio-7", "label-studio", {"project": 7, "bot_user_id": 1}, SECRET, {"token": "t"},
                        "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
SIGNED = {webhooks.SECRET_HEADER: SECRET}


@pytest.mark.parametrize("action", webhooks.ACTIONS)
def test_a_saved_annotations_webhook_without_payload_is_a_poke(action: str) -> None:
    assert webhooks.receive(CONNECTION, SIGNED, f'{{"action": "{action}"}}'.encode()) == ([], True)


def test_other_actions_are_ignored_and_a_poke_needs_the_secret() -> None:
    assert webhooks.receive(CONNECTION, SIGNED, b'{"action": "PROJECT_UPDATED"}') == ([], False)
    with pytest.raises(Unauthorized, match=webhooks.SECRET_HEADER):
        webhooks.receive(CONNECTION, {}, b'{"action": "ANNOTATION_CREATED"}')
    with pytest.raises(Unauthorized):
        webhooks.receive(CONNECTION, {webhooks.SECRET_HEADER: "guess"}, b'{"action": "ANNOTATION_CREATED"}')


def test_a_payload_carries_its_event_and_a_broken_one_is_refused() -> None:
    annotation = {"id": 31, "task": 5, "project": 7, "completed_by": 2, "result": [], "lead_time": 1.5,
                  "created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:01Z", "was_cancelled": False}
    body = {"action": "ANNOTATION_CREATED", "annotation": annotation}
    events, poke = webhooks.receive(CONNECTION, SIGNED, json.dumps(body).encode())
    assert not poke and [(e["asset_id"], e["label"]["id"]) for e in events] == [("5", "31")]
    with pytest.raises(PlatformRefused, match="without its annotation"):
        webhooks.receive(CONNECTION, SIGNED, b'{"action": "ANNOTATION_CREATED", "annotation": null}')
    with pytest.raises(PlatformRefused, match="not of the connected project 7"):
        webhooks.receive(CONNECTION, SIGNED, json.dumps(
            {**body, "annotation": {**annotation, "project": 8}}).encode())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = start_service(tmp_path / "runtime", "process", reconcile_interval_s=3600.0)
    yield running
    stop_service(running)


@pytest.mark.label_studio
@pytest.mark.slow
def test_the_webhook_connect_makes_is_a_poke_that_brings_the_save_at_once(
        service: Service, label_studio: LabelStudio) -> None:
    project, (first, second) = label_studio.project("Poked", TEXT_CONFIG, [{"text": "a"}, {"text": "b"}])
    project_id = connect(service, label_studio, project)["project_id"]
    [hook] = label_studio.webhooks(project)
    assert hook["send_payload"] is False and hook["send_for_all_actions"] is False
    assert sorted(hook["actions"]) == sorted(webhooks.ACTIONS)
    service.deploy("qa-bot", KILI_PLUGIN, project=project_id)
    saved = label_studio.annotate(first, choice("Positive"))
    wait_for(lambda: label_studio.task(first)["meta"].get("checked_by"), what="the poked annotation's meta")
    # An update is poked too, and makes its own event (the annotation's saved time changed).
    updated = label_studio.call("PATCH", f"/api/annotations/{saved['id']}/", json={"result": choice("Negative")})
    wait_for(lambda: label_studio.task(first)["meta"].get("sentiment") == "Negative", what="the update's meta")
    found = settled(service, 2)
    assert sorted(r["event_id"] for r in found) == sorted(
        f"ls-{project}-{saved['id']}-{a['updated_at']}" for a in (saved, updated))
    hook_url = f"{service.url}/v1/connections/{project_id}/webhook"
    unsigned = requests.post(hook_url, json={"action": "ANNOTATION_CREATED"}, timeout=30)
    assert unsigned.status_code == 401
    # The bot's own annotation is poked as well, and triggers nothing.
    label_studio.annotate(second, choice("Positive"), token=BOT[2])
    stored = service.runtime.store.connections.get(service.runtime.store.read(), project_id)
    assert stored is not None
    replay = requests.post(hook_url, json={"action": "ANNOTATION_CREATED"},
                           headers={webhooks.SECRET_HEADER: stored.secret}, timeout=30)
    assert replay.status_code == 200 and replay.json() == {"events": 0, "stored": 0}
    assert len(settled(service, 2)) == 2


@pytest.mark.label_studio
@pytest.mark.slow
def test_a_webhook_carrying_its_annotation_still_makes_its_event(service: Service, label_studio: LabelStudio) -> None:
    project, (task,) = label_studio.project("Payload", TEXT_CONFIG, [{"text": "a"}])
    connected = connect(service, label_studio, project)
    # As a user may set it: the annotation, its task and its project in the webhook's body.
    label_studio.call("PATCH", f"/api/webhooks/{connected['webhook_id']}/", token=BOT[2],
                      json={"send_payload": True, "actions": list(webhooks.ACTIONS)})
    service.deploy("qa-bot", KILI_PLUGIN, project=connected["project_id"])
    saved = label_studio.annotate(task, choice("Positive"))
    wait_for(lambda: label_studio.task(task)["meta"].get("checked_by"), what="the payload's annotation's meta")
    [run] = settled(service, 1)
    assert run["event_id"] == f"ls-{project}-{saved['id']}-{saved['updated_at']}"


@pytest.mark.label_studio
@pytest.mark.slow
def test_concurrent_saves_are_each_found_once(tmp_path: Path, label_studio: LabelStudio) -> None:
    # Saves crossing each other: their pokes come during looks (one more look, not one each),
    # their stamps and webhooks in any order, more changes than a poked look's page at times;
    # the periodic look (the default 5 s) behind them, as in production.
    count = 2 * reconcile.POKE_PAGE_SIZE + 3
    project, tasks = label_studio.project("Burst", TEXT_CONFIG, [{"text": str(i)} for i in range(count)])
    service = start_service(tmp_path / "runtime", "process", reconcile_interval_s=5.0)
    try:
        found_by_all(service, label_studio, project, tasks)
    finally:
        stop_service(service)


def found_by_all(service: Service, label_studio: LabelStudio, project: int, tasks: list[int]) -> None:
    count = len(tasks)
    connect(service, label_studio, project)
    with ThreadPoolExecutor(max_workers=6) as pool:
        saved = list(pool.map(lambda task: label_studio.annotate(task, choice("Positive")), tasks))
    expected = {f"ls-{project}-{a['id']}-{a['updated_at']}" for a in saved}

    def stored() -> set[str]:
        return {row[0] for row in service.runtime.store.read().execute("SELECT id FROM events")}
    try:
        wait_for(lambda: stored() == expected, what=f"{count} events")
    except AssertionError:
        # What Label Studio says of each missed one (its task's stamp, the annotation as it is now).
        store = service.runtime.store
        missed = [(a["id"], a["updated_at"], label_studio.task(a["task"])["updated_at"],
                   label_studio.call("GET", f"/api/annotations/{a['id']}/")["updated_at"])
                  for a in saved if f"ls-{project}-{a['id']}-{a['updated_at']}" not in stored()]
        pytest.fail(f"never found (annotation, saved, task stamp, now): {missed}; the reconciler's cursor: "
                    f"{store.connections.cursor(store.read(), f'label-studio-{project}')}")
