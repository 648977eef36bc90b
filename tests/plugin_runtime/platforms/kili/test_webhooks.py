"""Kili's webhooks in, as Kili documents its payload (``eventType``, ``logPayload`` with
``runId`` and ``projectId``, ``payload`` with ``label`` and ``asset_id``): the secret header
checked, each turned into the event plugins receive."""

from __future__ import annotations

import json

import pytest

from plugin_runtime.errors import PlatformRefused, Unauthorized
from plugin_runtime.platforms.kili.webhooks import receive
from plugin_runtime.store.connections import Connection

CONNECTION = Connection("proj-invoices", "kili", {"project": "kili-proj"}, "s3cret", {"api_key": "k"}, "t", "t")
LABEL = {"id": "kili-label-9", "labelType": "DEFAULT", "jsonResponse": '{"JOB_0": {"annotations": []}}',
         "author": {"id": "user-3"}, "createdAt": "2026-03-05T10:00:00.000Z", "secondsToLabel": 30}


def webhook(kind: str, payload: dict, run: str = "run-1", project: str = "kili-proj") -> bytes:
    return json.dumps({"eventType": kind, "logPayload": {"runId": run, "projectId": project},
                       "payload": payload}).encode()


def test_a_submitted_label_is_an_onsubmit_event_named_by_its_run() -> None:
    [event] = receive(CONNECTION, {"authorization": "s3cret"},
                      webhook("onSubmit", {"label": LABEL, "asset_id": "kili-asset-9"}))
    assert (event["id"], event["type"], event["project_id"], event["asset_id"]) == (
        "kili-run-1", "onSubmit", "proj-invoices", "kili-asset-9")
    assert event["label"]["jsonResponse"] == {"JOB_0": {"annotations": []}}  # Kili's JSON text, parsed
    assert event["label"]["authorId"] == "user-3" and event["occurred_at"] == "2026-03-05T10:00:00.000Z"


def test_the_other_kinds() -> None:
    [review] = receive(CONNECTION, {"Authorization": "s3cret"},
                       webhook("onReview", {"label": {**LABEL, "labelType": "REVIEW"}, "asset_id": "a"}))
    assert review["type"] == "onReview"
    [back] = receive(CONNECTION, {"Authorization": "s3cret"}, webhook("onSendBackToQueue", {"asset_id": "a"}))
    assert (back["type"], back["asset_id"]) == ("onSendBackToQueue", "a")
    settings = [{"key": "reviewCoverage", "newValue": 20, "oldValue": 0}]
    [updated] = receive(CONNECTION, {"Authorization": "s3cret"},
                        webhook("onProjectUpdated", {"settings_updated": settings}))
    assert updated["settings_updated"] == settings
    [skipped] = receive(CONNECTION, {"Authorization": "s3cret"}, webhook("asset.skipped", {
        "event": "asset.skipped", "userId": "u-7", "organizationId": "org",
        "payload": {"assetId": "a", "skipped": True, "status": "ONGOING", "externalId": None}}))
    assert (skipped["type"], skipped["user_id"], skipped["payload"]["assetId"]) == ("asset.skipped", "u-7", "a")


@pytest.mark.parametrize(("headers", "body", "error", "message"), [
    ({}, webhook("onSubmit", {"label": LABEL, "asset_id": "a"}), Unauthorized, "missing or wrong Authorization"),
    ({"Authorization": "guess"}, webhook("onSubmit", {"label": LABEL, "asset_id": "a"}), Unauthorized, "wrong"),
    ({"Authorization": "s3cret"}, b"not json", PlatformRefused, "not JSON"),
    ({"Authorization": "s3cret"}, b'{"eventType": "onSubmit"}', PlatformRefused, "no logPayload"),
    ({"Authorization": "s3cret"}, webhook("onSubmit", {"label": LABEL, "asset_id": "a"}, project="other"),
     PlatformRefused, "of Kili project 'other', not of the connected project 'kili-proj'"),
    ({"Authorization": "s3cret"}, webhook("onSubmit", {"asset_id": "a"}), PlatformRefused, "has no label"),
    ({"Authorization": "s3cret"}, webhook("onSubmit", {"label": LABEL}), PlatformRefused, "needs asset_id"),
])
def test_what_is_not_the_connected_kilis_webhook_is_refused(headers: dict, body: bytes, error: type,
                                                             message: str) -> None:
    with pytest.raises(error, match=message):
        receive(CONNECTION, headers, body)


def test_a_handler_type_no_hook_receives_is_ignored() -> None:
    assert receive(CONNECTION, {"Authorization": "s3cret"}, webhook("onSomethingNew", {})) == []
