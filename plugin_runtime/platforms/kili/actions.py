"""Each action (wire form) applied to a Kili project through the official client, checked
against Kili first where applying it twice would make a second record (issues, questions,
labels): Kili has no idempotency key."""

from __future__ import annotations

import json
from typing import Any

from plugin_runtime.errors import PlatformRefused

#: Kili's names of ``update_asset``'s fields, in ``update_properties_in_assets``.
_PROPERTIES = {"json_metadata": "json_metadatas", "is_used_for_consensus": "is_used_for_consensus_array",
               "is_honeypot": "is_honeypot_array"}
_ISSUE_FIELDS = ["id", "type", "status", "objectMid", "comments.text"]


def apply(kili: Any, project: str, action: dict[str, Any]) -> None:
    """Apply one checked action to Kili project ``project``."""
    kind, asset_id = action["type"], action["asset_id"]
    if kind == "create_issue":
        if not _has_issue(kili, project, asset_id, "ISSUE", action.get("text"), action.get("object_mid")):
            kili.create_issues(project_id=project, label_id_array=[action["label_id"]],
                               object_mid_array=[action.get("object_mid")], text_array=[action.get("text")])
    elif kind == "create_question":
        if not _has_issue(kili, project, asset_id, "QUESTION", action.get("text"), None):
            from kili.presentation.client.question import QuestionClientMethods

            # The client class does not mix this one in: called on it as Kili's package defines it.
            QuestionClientMethods.create_questions(kili, project_id=project, text_array=[action.get("text")],
                                                   asset_id_array=[asset_id])
    elif kind == "update_issue_status":
        _check_issue_of(kili, project, asset_id, action["issue_id"])
        kili.update_issue_status(issue_id=action["issue_id"], status=action["status"])
    elif kind == "send_back_to_queue":
        _declined(kili.send_back_to_queue(asset_ids=[asset_id], project_id=project), kind, asset_id)
    elif kind == "add_to_review":
        _declined(kili.add_to_review(asset_ids=[asset_id], project_id=project), kind, asset_id)
    elif kind == "update_asset":
        # Priority and assignees through their own methods (Kili deprecated them as properties).
        if "priority" in action:
            _declined(kili.set_assets_priority(priority=action["priority"], asset_ids=[asset_id], project_id=project),
                      "prioritize", asset_id)
        if "to_be_labeled_by" in action:
            _declined(kili.assign_assets_to_labelers(to_be_labeled_by_array=[action["to_be_labeled_by"]],
                                                     asset_ids=[asset_id], project_id=project), "assign", asset_id)
        changes = {_PROPERTIES[name]: [value] for name, value in action.items() if name in _PROPERTIES}
        if changes:
            kili.update_properties_in_assets(asset_ids=[asset_id], project_id=project, **changes)
    elif kind in ("add_metadata", "set_metadata"):
        getattr(kili, kind)(json_metadata=[action["json_metadata"]], project_id=project, asset_ids=[asset_id])
    elif kind == "append_label":
        _append_label(kili, project, action)
    else:
        raise PlatformRefused(f"{kind} is not an action Kili takes")


def _has_issue(kili: Any, project: str, asset_id: str, kind: str, text: str | None, mid: str | None) -> bool:
    """Whether the asset has an open issue (or question) of this text and object already."""
    for issue in kili.issues(project_id=project, asset_id=asset_id, issue_type=kind, status="OPEN",
                             fields=_ISSUE_FIELDS, disable_tqdm=True):
        comments = issue.get("comments") or []
        said = comments[0].get("text") if comments and isinstance(comments[0], dict) else None
        if said == text and issue.get("objectMid") == mid:
            return True
    return False


def _check_issue_of(kili: Any, project: str, asset_id: str, issue_id: str) -> None:
    """An issue the action names must be its asset's (the policy checked the asset only)."""
    found = [i["id"] for i in kili.issues(project_id=project, asset_id=asset_id, fields=["id"], disable_tqdm=True)]
    if issue_id not in found:
        raise PlatformRefused(f"issue {issue_id!r} is not an issue of asset {asset_id!r}")


def _declined(outcome: Any, kind: str, asset_id: str) -> None:
    if isinstance(outcome, dict) and outcome.get("failed"):
        raise PlatformRefused(f"Kili could not {kind.replace('_', ' ')} asset {asset_id!r}: "
                              f"{outcome['failed'][0].get('details')}")


def _append_label(kili: Any, project: str, action: dict[str, Any]) -> None:
    """A label, unless the asset has this very label already (an attempt that crashed)."""
    asset_id, response = action["asset_id"], action["json_response"]
    for label in kili.labels(project_id=project, asset_id=asset_id, type_in=[action["label_type"]],
                             fields=["id", "jsonResponse", "modelName", "author.id"], disable_tqdm=True):
        if (_same(label.get("jsonResponse"), response) and label.get("modelName") == action.get("model_name")
                and (action.get("author_id") is None or (label.get("author") or {}).get("id") == action["author_id"])):
            return
    kili.append_labels(asset_id_array=[asset_id], json_response_array=[response], label_type=action["label_type"],
                       model_name=action.get("model_name"), project_id=project,
                       author_id_array=[action["author_id"]] if action.get("author_id") else None,
                       seconds_to_label_array=[int(action["seconds_to_label"])]
                       if action.get("seconds_to_label") is not None else None,
                       overwrite=bool(action.get("overwrite")), disable_tqdm=True)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
