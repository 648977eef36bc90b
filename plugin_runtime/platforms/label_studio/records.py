"""Label Studio's records in Kili's shapes (pure): a task as an asset, an annotation or a
prediction as a label, the runtime's issues kept in a task's ``meta`` as issues, a project as
Kili's project, and a person's saved annotation as the ``onSubmit`` event plugins receive.

A person's annotation is a DEFAULT label; the runtime's own (the bot user's) is REVIEW when it
is the task's ground truth (as ``append_label(label_type="REVIEW")`` writes it), else DEFAULT;
a prediction is a PREDICTION label whose id is ``prediction-<id>``. A cancelled (skipped)
annotation is no label.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from plugin_runtime.platforms.label_studio import interface, labels

#: The key of a task's ``meta`` holding the runtime's issues (Label Studio Community has no
#: comments API); kept when a plugin replaces the rest of ``meta``.
ISSUES = "issues"
PREDICTION_PREFIX = "prediction-"
_INPUT_TYPES = {"image": "IMAGE", "text": "TEXT", "hypertext": "TEXT", "audio": "AUDIO", "video": "VIDEO",
                "pdf": "PDF", "timeseries": "TIME_SERIES"}


def moment(text: Any) -> datetime | None:
    """A Label Studio time (ISO 8601) in UTC, None when it is none."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _user(value: Any) -> int | None:
    """A user id, whether Label Studio sent the id or the expanded user."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, int) else None


def by_bot(annotation: dict[str, Any], bot_user_id: int) -> bool:
    """Whether the annotation was last written by the runtime's own user (its edits, its
    send-backs) rather than by a person."""
    updated_by = _user(annotation.get("updated_by"))
    writer = updated_by if updated_by is not None else _user(annotation.get("completed_by"))
    return writer == bot_user_id


def label(annotation: dict[str, Any], bot_user_id: int) -> dict[str, Any] | None:
    """An annotation as a Kili label, None when it was cancelled (skipped)."""
    if annotation.get("was_cancelled"):
        return None
    author = _user(annotation.get("completed_by"))
    label_type = "DEFAULT"
    if author == bot_user_id and annotation.get("ground_truth"):
        label_type = "REVIEW"
    return {"id": str(annotation["id"]), "labelType": label_type, "authorId": None if author is None else str(author),
            "secondsToLabel": annotation.get("lead_time"), "createdAt": annotation.get("created_at"),
            "updatedAt": annotation.get("updated_at"), "jsonResponse": labels.json_response(annotation.get("result") or []),
            "assetId": str(annotation.get("task")), "modelName": None}


def prediction_label(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{PREDICTION_PREFIX}{prediction['id']}", "labelType": "PREDICTION", "authorId": None,
            "secondsToLabel": None, "createdAt": prediction.get("created_at"),
            "jsonResponse": labels.json_response(prediction.get("result") or []),
            "assetId": str(prediction.get("task")), "modelName": prediction.get("model_version") or None}


def task_labels(task: dict[str, Any], bot_user_id: int) -> list[dict[str, Any]]:
    """A task's labels: its annotations that are not cancelled, then its predictions."""
    found = [label(a, bot_user_id) for a in task.get("annotations") or [] if isinstance(a, dict)]
    return ([x for x in found if x is not None]
            + [prediction_label(p) for p in task.get("predictions") or [] if isinstance(p, dict)])


def issues(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The runtime's issues on a task (its ``meta``), in Kili's shape."""
    kept = (task.get("meta") or {}).get(ISSUES)
    return [{"id": entry.get("id"), "type": "ISSUE", "status": "OPEN", "labelId": entry.get("label_id"),
             "objectMid": entry.get("object_mid"), "text": entry.get("text"), "createdAt": entry.get("created_at"),
             "assetId": str(task["id"]), "comments": [{"text": entry.get("text")}] if entry.get("text") else []}
            for entry in kept if isinstance(entry, dict)] if isinstance(kept, list) else []


def status(task: dict[str, Any]) -> str:
    if task.get("is_labeled"):
        return "LABELED"
    return "ONGOING" if task.get("annotations") or task.get("cancelled_annotations") else "TODO"


def asset(task: dict[str, Any], bot_user_id: int) -> dict[str, Any]:
    """A task as a Kili asset: ``jsonMetadata`` is its ``meta``, ``jsonContent`` its ``data``."""
    meta, data = task.get("meta"), task.get("data") or {}
    # Kili's content is a string: a task's one text or URL, else its data as JSON (whole in ``jsonContent``).
    values = list(data.values()) if isinstance(data, dict) else []
    content = values[0] if len(values) == 1 and isinstance(values[0], str) else json.dumps(data, ensure_ascii=False)
    return {"id": str(task["id"]), "externalId": str(task["id"]), "content": content, "jsonContent": data,
            "status": status(task), "jsonMetadata": meta if isinstance(meta, dict) else {},
            "priority": 0, "toBeLabeledBy": [], "isUsedForConsensus": False, "isHoneypot": False,
            "labels": task_labels(task, bot_user_id), "issues": issues(task)}


def project(project_id: str, remote: dict[str, Any]) -> dict[str, Any]:
    """A Label Studio project as Kili's project, with the ``jsonInterface`` of its config."""
    config = interface.parse(str(remote.get("label_config") or "<View/>"))
    input_type = next((_INPUT_TYPES[t] for t in config.objects.values() if t in _INPUT_TYPES), None)
    return {"id": project_id, "title": remote.get("title"), "description": remote.get("description") or "",
            "inputType": input_type, "jsonInterface": interface.json_interface(config),
            "minConsensusSize": remote.get("maximum_annotations") or 1, "consensusTotCoverage": 0,
            "reviewCoverage": 0, "roles": []}


def event_id(remote_project: int, annotation: dict[str, Any]) -> str:
    """One event per saved version of an annotation, whichever way it arrives (webhook or
    reconciliation): a replay or a second look finds it stored already."""
    return f"ls-{remote_project}-{annotation['id']}-{annotation.get('updated_at')}"


def submitted(project_id: str, remote_project: int, annotation: dict[str, Any], task: dict[str, Any] | None,
              remote: dict[str, Any] | None, bot_user_id: int) -> dict[str, Any] | None:
    """The ``onSubmit`` event of a person's saved annotation; None for the runtime's own
    edits and cancelled annotations, which trigger nothing."""
    if by_bot(annotation, bot_user_id):
        return None
    found = label(annotation, bot_user_id)
    if found is None:
        return None
    context: dict[str, Any] = {}
    if task is not None:
        known = {"id", "data", "meta", "is_labeled", "annotations", "predictions", "cancelled_annotations"}
        record = asset({k: v for k, v in task.items() if k in known}, bot_user_id)
        if not any(existing["id"] == found["id"] for existing in record["labels"]):
            record["labels"].append(found)
        context["asset"] = record
    if remote is not None:
        context["project"] = project(project_id, remote)
    return {"id": event_id(remote_project, annotation), "type": "onSubmit", "project_id": project_id,
            "asset_id": str(annotation.get("task")), "occurred_at": annotation.get("updated_at"),
            "label": found, "context": context}
