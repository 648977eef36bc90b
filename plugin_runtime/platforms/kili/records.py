"""Kili's records in the runtime's shapes: a live Kili project's labels as recorded events
(DEFAULT as ``onSubmit``, REVIEW as ``onReview``), each with the ``context`` a dry-run answers
reads from: its asset as it was when the label arrived (with its labels up to this one and its
issues) and its project with the ``jsonInterface``. Read through the official client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from plugin_runtime.platforms.kili.client import project as kili_project

LABEL_FIELDS = ["id", "labelType", "jsonResponse", "author.id", "secondsToLabel", "createdAt", "modelName",
                "isSentBackToQueue", "labelOf.id"]
ASSET_FIELDS = ["id", "externalId", "content", "jsonMetadata", "priority", "isHoneypot",
                "isUsedForConsensus", "consensusMark", "honeypotMark", "inferenceMark", "toBeLabeledBy.id",
                *(f"labels.{field}" for field in ("id", "labelType", "jsonResponse", "author.id", "secondsToLabel",
                                                  "createdAt", "modelName"))]
ISSUE_FIELDS = ["id", "createdAt", "status", "type", "assetId", "objectMid", "comments.text"]
PROJECT_FIELDS = ["id", "title", "inputType", "jsonInterface", "minConsensusSize", "reviewCoverage",
                  "consensusTotCoverage", "workflowVersion"]
#: An asset's state: its status in Kili's first workflow, its current step in the second (V2,
#: Kili's projects since 2024), where ``status`` is gone.
STATE_FIELDS = {"V1": ["status"], "V2": ["currentStep.name", "currentStep.status"]}
EVENT_FOR = {"DEFAULT": "onSubmit", "REVIEW": "onReview"}
#: Assets read per request for the events' contexts.
ASSET_BATCH = 100


def record_events(kili: Any, project_id: str, since: datetime | None = None, limit: int | None = None,
                  as_project: str | None = None) -> Iterator[dict[str, Any]]:
    """The recorded events of the project's DEFAULT and REVIEW labels, oldest first: those
    created at or after ``since``, at most ``limit`` of them (the first ones)."""
    project = _project(kili_project(kili, project_id, PROJECT_FIELDS), as_project or project_id)
    fields = ASSET_FIELDS + STATE_FIELDS["V1" if project.pop("workflowVersion", None) == "V1" else "V2"]
    labels = kili.labels(project_id=project_id, type_in=["DEFAULT", "REVIEW"], fields=LABEL_FIELDS,
                         created_at_gte=_kili_date(since) if since else None, disable_tqdm=True)
    labels = sorted(labels, key=lambda label: str(label.get("createdAt") or ""))[:limit]
    asset_ids = list(dict.fromkeys(label["labelOf"]["id"] for label in labels))
    assets: dict[str, dict[str, Any]] = {}
    issues: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(asset_ids), ASSET_BATCH):
        batch = asset_ids[start:start + ASSET_BATCH]
        assets.update({a["id"]: a for a in kili.assets(project_id=project_id, asset_id_in=batch, fields=fields,
                                                         disable_tqdm=True)})
        for issue in kili.issues(project_id=project_id, asset_id_in=batch, fields=ISSUE_FIELDS, disable_tqdm=True):
            issues.setdefault(issue["assetId"], []).append(issue)
    for label in labels:
        asset = assets.get(label["labelOf"]["id"])
        if asset is not None:
            yield event_of(label, asset, issues.get(asset["id"], []), project)


def event_of(label: dict[str, Any], asset: dict[str, Any], issues: list[dict[str, Any]],
             project: dict[str, Any]) -> dict[str, Any]:
    """One label's recorded event; the asset's labels and issues as they were when it arrived."""
    when = str(label.get("createdAt") or "")
    return {
        "id": f"kili-{label['id']}", "type": EVENT_FOR[label["labelType"]], "project_id": project["id"],
        "asset_id": asset["id"], "occurred_at": label.get("createdAt"), "label": label_of(label),
        "context": {"asset": asset_of(asset, when, issues), "project": project},
    }


def label_of(label: dict[str, Any]) -> dict[str, Any]:
    """A Kili label as hooks receive it (``authorId``, not ``author.id``)."""
    out: dict[str, Any] = {key: label.get(key) for key in ("id", "labelType", "jsonResponse", "secondsToLabel",
                                                           "createdAt", "modelName", "isSentBackToQueue")
                           if key in label}
    out["authorId"] = (label.get("author") or {}).get("id")
    out["jsonResponse"] = out.get("jsonResponse") or {}
    return out


def asset_of(asset: dict[str, Any], until: str, issues: list[dict[str, Any]]) -> dict[str, Any]:
    out = {key: value for key, value in asset.items() if key not in ("labels", "toBeLabeledBy")}
    out["toBeLabeledBy"] = [user.get("id") for user in asset.get("toBeLabeledBy") or [] if isinstance(user, dict)]
    out["labels"] = [label_of(label) for label in asset.get("labels") or []
                     if str(label.get("createdAt") or "") <= until]
    out["issues"] = [issue_of(issue) for issue in issues if str(issue.get("createdAt") or "") <= until]
    return out


def issue_of(issue: dict[str, Any]) -> dict[str, Any]:
    comments = issue.get("comments") or []
    text = comments[0].get("text") if comments and isinstance(comments[0], dict) else None
    return {"id": issue["id"], "type": issue.get("type"), "status": issue.get("status"),
            "objectMid": issue.get("objectMid"), "createdAt": issue.get("createdAt"), "text": text}


def _project(project: dict[str, Any], project_id: str) -> dict[str, Any]:
    return {**project, "id": project_id, "jsonInterface": project.get("jsonInterface") or {"jobs": {}}}


def _kili_date(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
