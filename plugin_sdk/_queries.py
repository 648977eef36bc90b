"""Answering Kili-style reads (``labels``, ``assets``, ``projects``) over plain records.

Pure functions over lists of camelCase dicts, so the same filtering serves reads answered from
an event's recorded context (dry-run, tests) and, in the runtime, reads of the live platform.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from plugin_sdk.errors import ContextUnavailable, UnsupportedMethodError

def normalise_label(label: dict, asset_id: str | None) -> dict:
    """A label as reads return it: ``assetId`` and ``author.id`` filled from what is known, and
    ``author.email`` when the author id is an email (``author_in`` finds the label by it)."""
    out = dict(label)
    if asset_id is not None:
        out.setdefault("assetId", asset_id)
    author = out.get("authorId")
    if "author" not in out and author is not None:
        # The embedded platform knows a labeler by what the label was submitted with.
        out["author"] = {"id": author, "email": author} if isinstance(author, str) and "@" in author else {"id": author}
    return out


def _field_tree(fields: Iterable[str]) -> dict:
    tree: dict = {}
    for field in fields:
        node = tree
        for part in field.split("."):
            node = node.setdefault(part, {})
    return tree


#: Fields whose absence cannot be answered with ``None``: a plugin would act on an empty
#: answer (overwrite metadata, skip labels) as if it were the platform's.
STRICT_FIELDS = frozenset({"id", "labels", "jsonResponse", "jsonInterface", "jsonMetadata", "assetId"})


def _nulls(tree: dict) -> Any:
    return None if not tree else {key: _nulls(sub) for key, sub in tree.items()}


def _apply(value: Any, tree: dict, where: str, what: str) -> Any:
    if not tree:
        return copy.deepcopy(value)
    if isinstance(value, list):
        return [_apply(item, tree, where, what) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, sub in tree.items():
        if key not in value and key not in STRICT_FIELDS:
            out[key] = _nulls(sub)  # as Kili answers a field the record has no value for
            continue
        if key not in value:
            raise ContextUnavailable(
                f"field {where + key!r} of {what} is not in what this read can see; record "
                "events with their full context (`plugin-runtime events export`) or ask for "
                "fewer fields"
            )
        out[key] = _apply(value[key], sub, f"{where}{key}.", what)
    return out


def project_fields(record: dict, fields: Iterable[str] | None, what: str) -> dict:
    """Keep only ``fields`` (Kili's dotted names, e.g. ``labels.jsonResponse``) of ``record``.

    A requested field the record does not hold is ``None``, as Kili answers it, except the
    ``STRICT_FIELDS`` (labels, jsonResponse, jsonMetadata, ...): for those ContextUnavailable
    says the data is missing rather than let the plugin act on an empty answer.
    """
    if fields is None:
        return copy.deepcopy(record)
    return _apply(record, _field_tree(fields), "", what)


def page(records: list[dict], first: int | None, skip: int | None) -> list[dict]:
    """Kili's ``skip``/``first`` paging."""
    start = skip or 0
    if start < 0 or (first is not None and first < 0):
        raise ValueError("first and skip must be positive")
    return records[start:] if first is None else records[start : start + first]


def refuse_unsupported(method: str, given: dict[str, Any], supported: Iterable[str]) -> None:
    """Refuse, by name, a Kili argument this handle cannot honour (rather than ignore it)."""
    allowed = set(supported)
    for name, value in given.items():
        if value is not None and value is not False and name not in allowed:
            raise UnsupportedMethodError(
                f"kili.{method}({name}=...) is not supported inside a plugin sandbox; "
                + (f"supported here: {', '.join(sorted(allowed))}" if allowed else
                   "leave it out (and filter or act in Python if needed)")
            )


def filter_labels(labels: Iterable[dict], query: dict[str, Any]) -> list[dict]:
    """Apply the label filters plugins pass to ``kili.labels``/``count_labels``."""
    out = []
    for label in labels:
        if query.get("asset_id") is not None and label.get("assetId") != query["asset_id"]:
            continue
        if query.get("label_id") is not None and label.get("id") != query["label_id"]:
            continue
        if query.get("type_in") and label.get("labelType") not in query["type_in"]:
            continue
        if query.get("author_in") and (label.get("author") or {}).get("email") not in query[
            "author_in"
        ] and label.get("authorId") not in query["author_in"]:
            continue
        if query.get("user_id") is not None and label.get("authorId") != query["user_id"]:
            continue
        if query.get("id_contains") and not any(p in str(label.get("id")) for p in query["id_contains"]):
            continue
        out.append(label)
    # Oldest first, as Kili lists them; labels without a date keep their place at the start.
    return sorted(out, key=lambda label: str(label.get("createdAt") or ""))


def filter_assets(assets: Iterable[dict], query: dict[str, Any]) -> list[dict]:
    """Apply the asset filters plugins pass to ``kili.assets``/``count_assets``."""
    out = []
    for asset in assets:
        if query.get("asset_id") is not None and asset.get("id") != query["asset_id"]:
            continue
        if query.get("asset_id_in") is not None and asset.get("id") not in query["asset_id_in"]:
            continue
        if query.get("asset_id_not_in") and asset.get("id") in query["asset_id_not_in"]:
            continue
        external = query.get("external_id_in") or query.get("external_id_strictly_in")
        if external is not None and asset.get("externalId") not in external:
            continue
        if query.get("status_in") and asset.get("status") not in query["status_in"]:
            continue
        out.append(asset)
    return out


def filter_issues(issues: Iterable[dict], query: dict[str, Any]) -> list[dict]:
    """Apply the filters plugins pass to ``kili.issues``/``count_issues``."""
    out = []
    for issue in issues:
        if query.get("asset_id") is not None and issue.get("assetId") != query["asset_id"]:
            continue
        if query.get("asset_id_in") is not None and issue.get("assetId") not in query["asset_id_in"]:
            continue
        if query.get("issue_type") is not None and issue.get("type", "ISSUE") != query["issue_type"]:
            continue
        if query.get("status") is not None and issue.get("status", "OPEN") != query["status"]:
            continue
        out.append(issue)
    return sorted(out, key=lambda issue: str(issue.get("createdAt") or ""))
