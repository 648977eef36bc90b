"""Plugins' reads (``labels``, ``assets``, ``issues``, ``projects`` and their counts) answered
live by Kili through its client, for the connected project, in the records reads return
(``assetId``, ``authorId`` beside Kili's nested ``labelOf.id``, ``author.id``).

The handle sends Kili's own keyword arguments, which the client takes as they are; the
project is always the connected one. A read without ``first`` answers at most
``MAX_RECORDS`` records, past which it is refused saying to page.
"""

from __future__ import annotations

from typing import Any

from plugin_runtime.errors import ReadLimitExceeded
from plugin_runtime.platforms.kili.records import ISSUE_FIELDS, PROJECT_FIELDS, issue_of

#: Records one read answers at most (a read of a whole large project would take minutes).
MAX_RECORDS = 10_000
LABEL_FIELDS = ["id", "labelType", "jsonResponse", "author.id", "secondsToLabel", "createdAt", "modelName",
                "isLatestLabelForUser", "isLatestDefaultLabelForUser", "isLatestReviewLabelForUser",
                "isSentBackToQueue", "labelOf.id", "consensusMark", "honeypotMark", "inferenceMark"]
ASSET_FIELDS = ["id", "externalId", "content", "jsonMetadata", "priority", "isHoneypot", "isUsedForConsensus",
                "consensusMark", "honeypotMark", "inferenceMark", "toBeLabeledBy.id", "createdAt",
                *(f"labels.{field}" for field in LABEL_FIELDS if not field.startswith("labelOf"))]
_FIELDS = {"labels": LABEL_FIELDS, "assets": ASSET_FIELDS, "issues": ISSUE_FIELDS}


def read(kili: Any, remote: str, project_id: str, method: str, query: dict[str, Any]) -> Any:
    """``kili.<method>(**query)`` on Kili project ``remote``, in the runtime's shapes for the
    runtime's ``project_id``."""
    query = {key: value for key, value in query.items() if key != "project_id" and value is not None}
    if method.startswith("count_"):
        if method == "count_projects":
            return 1
        return int(getattr(kili, method)(project_id=remote, **query))
    if method == "projects":
        [project] = kili.projects(project_id=remote, fields=PROJECT_FIELDS, disable_tqdm=True)
        project.pop("workflowVersion", None)
        return [{**project, "id": project_id}][query.get("skip", 0):][:query.get("first", 1)]
    if method not in _FIELDS:
        raise LookupError(f"kili.{method} is not a read the runtime answers")
    cap = query.pop("first", None)
    records = getattr(kili, method)(project_id=remote, fields=_FIELDS[method], disable_tqdm=True,
                                    first=cap if cap is not None else MAX_RECORDS + 1, **query)
    if cap is None and len(records) > MAX_RECORDS:
        raise ReadLimitExceeded(f"kili.{method} would answer more than {MAX_RECORDS} records: page with first=... "
                                "and skip=..., or filter (asset_id=...)")
    return [_shape(method, record) for record in records]


def _shape(method: str, record: dict[str, Any]) -> dict[str, Any]:
    if method == "labels":
        return label(record)
    if method == "issues":
        return {**issue_of(record), "assetId": record.get("assetId")}
    asset = {key: value for key, value in record.items() if key not in ("labels", "toBeLabeledBy")}
    asset["toBeLabeledBy"] = [u.get("id") for u in record.get("toBeLabeledBy") or [] if isinstance(u, dict)]
    asset["labels"] = [label({**l, "labelOf": {"id": record["id"]}}) for l in record.get("labels") or []]
    return asset


def label(record: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in record.items() if key != "labelOf"}
    out["assetId"] = (record.get("labelOf") or {}).get("id")
    out["authorId"] = (record.get("author") or {}).get("id")
    return out
