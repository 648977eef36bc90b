"""The write half of ``self.kili``: Kili's write methods, with Kili's keyword arguments, each
recording actions (plain dicts in the wire format) that the runtime checks and applies after
the hook returns. Nothing here touches the platform."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from plugin_sdk import _metadata, _queries
from plugin_sdk._scope import EventScope
from plugin_sdk.errors import UnresolvedAssetError

#: Statuses Kili's ``update_issue_status`` takes.
ISSUE_STATUSES = ("OPEN", "SOLVED", "CANCELLED")
#: The logger whose records reach the run's logs whichever logger the plugin uses.
_NOTES = logging.getLogger("plugin_sdk.plugin")


class KiliWrites:
    """Mixed into the handle: ``_event`` (the event's scope), ``_record(action)``,
    ``_pending_id(kind)``, ``_asset_of_label`` and ``_issue_assets`` (issue id -> asset id, from
    reads) come from it."""

    _project_id: str
    _issue_assets: dict[str, str]

    @property
    def _event(self) -> EventScope:  # pragma: no cover - the handle's
        raise NotImplementedError

    def _record(self, action: dict) -> None:  # pragma: no cover - the handle's
        raise NotImplementedError

    def _pending_id(self, kind: str) -> str:  # pragma: no cover - the handle's
        raise NotImplementedError

    def _asset_of_label(self, label_id: str, method: str) -> str:  # pragma: no cover - the handle's
        raise NotImplementedError

    def create_issues(
        self,
        project_id: str,
        label_id_array: list[str],
        object_mid_array: list[str | None] | None = None,
        text_array: list[str | None] | None = None,
    ) -> list[dict[str, str]]:
        """Open an issue on each label (optionally pinned to an object ``mid``)."""
        scope = self._event
        scope.check_project(project_id, "create_issues")
        labels = [_label_id(value) for value in _as_list(label_id_array, "label_id_array", "create_issues")]
        mids = _same_length(object_mid_array, labels, "object_mid_array", "create_issues")
        texts = _same_length(text_array, labels, "text_array", "create_issues")
        created = []
        for label_id, mid, text in zip(labels, mids, texts):
            self._record({
                "type": "create_issue",
                "asset_id": self._asset_of_label(label_id, "create_issues"),
                "label_id": label_id,
                "text": text,
                "object_mid": mid,
            })
            created.append({"id": self._pending_id("issue")})
        return created

    def create_questions(
        self,
        project_id: str,
        text_array: Sequence[str | None],
        asset_id_array: Sequence[str] | None = None,
        asset_external_id_array: Sequence[str] | None = None,
    ) -> list[dict[str, str]]:
        """Ask a question on each asset (an issue of type QUESTION, on no label)."""
        method = "create_questions"
        scope = self._event
        scope.check_project(project_id, method)
        ids = scope.resolve_assets(_optional_list(asset_id_array), _optional_list(asset_external_id_array), method)
        texts = _same_length(text_array, ids, "text_array", method)
        created = []
        for asset_id, text in zip(ids, texts):
            self._record({"type": "create_question", "asset_id": asset_id, "text": text})
            created.append({"id": self._pending_id("question")})
        return created

    def update_issue_status(self, issue_id: str, status: str) -> dict[str, Any]:
        """Resolve (``SOLVED``), reopen (``OPEN``) or cancel (``CANCELLED``) an issue or a
        question. Its asset must be known to the event: read the issues first
        (``self.kili.issues(project_id, asset_id=...)``) or record them in the event's context."""
        method = "update_issue_status"
        if status not in ISSUE_STATUSES:
            raise ValueError(f"kili.{method}: status is one of {', '.join(ISSUE_STATUSES)}, not {status!r}")
        if not isinstance(issue_id, str) or not issue_id:
            raise TypeError(f"kili.{method}: issue_id is a non-empty string, not {issue_id!r}")
        asset_id = self._issue_assets.get(issue_id) or self._event.asset_of_issue(issue_id)
        if asset_id is None:
            raise UnresolvedAssetError(
                f"kili.{method}: issue {issue_id!r} is not one this event knows: read it first with "
                "self.kili.issues(project_id=self.project_id, asset_id=...), or record the event with its "
                "asset's issues (context.asset.issues)"
            )
        self._record({"type": "update_issue_status", "asset_id": asset_id, "issue_id": issue_id, "status": status})
        return {"id": issue_id, "status": status}

    def send_back_to_queue(
        self,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        """Send assets back to the labeling queue (status ONGOING)."""
        return self._asset_action("send_back_to_queue", asset_ids, external_ids, project_id)

    def add_to_review(
        self,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        """Put assets in review (status TO_REVIEW)."""
        return self._asset_action("add_to_review", asset_ids, external_ids, project_id)

    def _asset_action(self, kind: str, asset_ids, external_ids, project_id) -> dict[str, Any]:
        scope = self._event
        scope.check_project(project_id, kind)
        ids = scope.resolve_assets(asset_ids, external_ids, kind)
        for asset_id in ids:
            self._record({"type": kind, "asset_id": asset_id})
        return {"id": self._project_id, "asset_ids": ids}

    def update_properties_in_assets(
        self,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
        priorities: list[int] | None = None,
        json_metadatas: list[dict | str] | None = None,
        consensus_marks: list[float] | None = None,
        honeypot_marks: list[float] | None = None,
        to_be_labeled_by_array: list[list[str]] | None = None,
        contents: list[str] | None = None,
        json_contents: list[str] | None = None,
        status_array: list[str] | None = None,
        is_used_for_consensus_array: list[bool] | None = None,
        is_honeypot_array: list[bool] | None = None,
        project_id: str | None = None,
        resolution_array: list[dict] | None = None,
        page_resolutions_array: list | None = None,
    ) -> list[dict[str, str]]:
        """Set asset properties; ``json_metadatas`` items *replace* each asset's metadata, as on
        Kili: dicts, JSON strings or the text of a Python dict (``str({...})``). An item that
        is none of them leaves that asset's metadata as it was, and the run's logs say so."""
        method = "update_properties_in_assets"
        _queries.refuse_unsupported(
            method,
            {
                "consensus_marks": consensus_marks, "honeypot_marks": honeypot_marks,
                "contents": contents, "json_contents": json_contents,
                "status_array": status_array, "resolution_array": resolution_array,
                "page_resolutions_array": page_resolutions_array,
            },
            (),
        )
        scope = self._event
        scope.check_project(project_id, method)
        ids = scope.resolve_assets(asset_ids, external_ids, method)
        metadatas = _same_length(json_metadatas, ids, "json_metadatas", method)
        columns = {
            "priority": _same_length(priorities, ids, "priorities", method),
            "json_metadata": [_metadata_or_note(m, i, a, method) for i, (m, a) in enumerate(zip(metadatas, ids))],
            "to_be_labeled_by": _same_length(to_be_labeled_by_array, ids, "to_be_labeled_by_array", method),
            "is_used_for_consensus": _same_length(
                is_used_for_consensus_array, ids, "is_used_for_consensus_array", method
            ),
            "is_honeypot": _same_length(is_honeypot_array, ids, "is_honeypot_array", method),
        }
        for i, asset_id in enumerate(ids):
            changes = {name: values[i] for name, values in columns.items() if values[i] is not None}
            if changes:
                self._record({"type": "update_asset", "asset_id": asset_id, **changes})
        return [{"id": asset_id} for asset_id in ids]

    def add_metadata(
        self,
        json_metadata: list[dict[str, Any]],
        project_id: str,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
    ) -> list[dict[str, str]]:
        """Merge each dict into its asset's metadata, key by key, keeping the other keys."""
        return self._metadata_action("add_metadata", json_metadata, project_id, asset_ids, external_ids)

    def set_metadata(
        self,
        json_metadata: list[dict[str, Any]],
        project_id: str,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
    ) -> list[dict[str, str]]:
        """Replace each asset's metadata with its dict, keeping the keys Kili keeps (``text``,
        ``imageUrl``, ``url``, ``processingParameters``)."""
        return self._metadata_action("set_metadata", json_metadata, project_id, asset_ids, external_ids)

    def _metadata_action(self, kind: str, json_metadata: Any, project_id: str, asset_ids: Any,
                         external_ids: Any) -> list[dict[str, str]]:
        scope = self._event
        scope.check_project(project_id, kind)
        ids = scope.resolve_assets(asset_ids, external_ids, kind)
        items = _as_list(json_metadata, "json_metadata", kind)
        # As Kili: an asset past the end of json_metadata gets {} (add: unchanged; set: cleared).
        for index, asset_id in enumerate(ids):
            item = items[index] if index < len(items) else {}
            if not isinstance(item, dict):
                raise TypeError(f"kili.{kind}: json_metadata items are dicts, not {type(item).__name__}")
            self._record({"type": kind, "asset_id": asset_id, "json_metadata": item})
        return [{"id": asset_id} for asset_id in ids]

    def set_assets_priority(
        self,
        priority: int,
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
        project_id: str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Give every asset ``priority`` (0 by default on Kili; higher is labeled first)."""
        method = "set_assets_priority"
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"kili.{method}: priority is an int, not {type(priority).__name__}")
        ids = self._assets_of(method, asset_ids, external_ids, project_id)
        for asset_id in ids:
            self._record({"type": "update_asset", "asset_id": asset_id, "priority": priority})
        return _outcome(ids)

    def assign_assets_to_labelers(
        self,
        to_be_labeled_by_array: list[list[str]],
        asset_ids: list[str] | None = None,
        external_ids: list[str] | None = None,
        project_id: str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Assign each asset to its list of labelers (user ids); an empty list unassigns it."""
        method = "assign_assets_to_labelers"
        ids = self._assets_of(method, asset_ids, external_ids, project_id)
        labelers = _same_length(_as_list(to_be_labeled_by_array, "to_be_labeled_by_array", method), ids,
                                "to_be_labeled_by_array", method)
        for asset_id, users in zip(ids, labelers):
            self._record({"type": "update_asset", "asset_id": asset_id,
                          "to_be_labeled_by": _as_list(users, "to_be_labeled_by_array items", method)})
        return _outcome(ids)

    def _assets_of(self, method: str, asset_ids: Any, external_ids: Any, project_id: str | None) -> list[str]:
        scope = self._event
        scope.check_project(project_id, method)
        return scope.resolve_assets(asset_ids, external_ids, method)

    def append_labels(
        self,
        asset_id_array: list[str] | None = None,
        json_response_array: Sequence[dict] = (),
        author_id_array: list[str] | None = None,
        seconds_to_label_array: list[int] | None = None,
        model_name: str | None = None,
        label_type: str = "DEFAULT",
        project_id: str | None = None,
        asset_external_id_array: list[str] | None = None,
        disable_tqdm: bool | None = None,
        overwrite: bool = False,
        step_name: str | None = None,
        reviewed_label_id_array: list[str] | None = None,
        step_id: str | None = None,
        group_name: str | None = None,
    ) -> list[dict[str, str]]:
        """Add a label (``label_type`` DEFAULT, REVIEW, PREDICTION, INFERENCE) to each asset;
        ``overwrite=True`` (PREDICTION and INFERENCE with a ``model_name``) replaces that
        model's labels of that type."""
        method = "append_labels"
        _queries.refuse_unsupported(
            method,
            {"overwrite": overwrite and not (label_type in ("PREDICTION", "INFERENCE") and model_name),
             "step_name": step_name, "step_id": step_id,
             "reviewed_label_id_array": reviewed_label_id_array, "group_name": group_name},
            (),
        )
        scope = self._event
        scope.check_project(project_id, method)
        ids = scope.resolve_assets(asset_id_array, asset_external_id_array, method)
        responses = list(json_response_array)
        if len(responses) != len(ids):
            raise ValueError(f"kili.{method}: json_response_array has {len(responses)} items for {len(ids)} assets")
        authors = _same_length(author_id_array, ids, "author_id_array", method)
        seconds = _same_length(seconds_to_label_array, ids, "seconds_to_label_array", method)
        created = []
        for asset_id, response, author, secs in zip(ids, responses, authors, seconds):
            action: dict[str, Any] = {
                "type": "append_label", "asset_id": asset_id, "json_response": response,
                "label_type": label_type, "model_name": model_name,
            }
            if author is not None:
                action["author_id"] = author
            if secs is not None:
                action["seconds_to_label"] = secs
            if overwrite:
                action["overwrite"] = True
            self._record(action)
            created.append({"id": self._pending_id("label")})
        return created

    def create_predictions(
        self,
        project_id: str,
        external_id_array: list[str] | None = None,
        model_name_array: list[str] | None = None,
        json_response_array: list[dict] | None = None,
        model_name: str | None = None,
        asset_id_array: list[str] | None = None,
        disable_tqdm: bool | None = None,
        overwrite: bool = False,
    ) -> dict[str, str]:
        """Add a PREDICTION label from model ``model_name`` to each asset (shown to labelers
        as pre-annotations); ``overwrite=True`` replaces that model's earlier predictions."""
        method = "create_predictions"
        if not json_response_array:
            raise ValueError(f"kili.{method}: json_response_array is empty, give at least one prediction")
        if model_name is None:
            names = set(_as_list(model_name_array, "model_name_array", method)) if model_name_array else set()
            if len(names) != 1:
                raise ValueError(f"kili.{method}: give the model's name as model_name= (one model per call)")
            model_name = names.pop()
        self.append_labels(asset_id_array=asset_id_array, json_response_array=json_response_array,
                           model_name=model_name, label_type="PREDICTION", project_id=project_id,
                           asset_external_id_array=external_id_array, overwrite=overwrite)
        return {"id": project_id}

    def create_honeypot(
        self,
        json_response: dict,
        asset_external_id: str | None = None,
        asset_id: str | None = None,
        project_id: str | None = None,
    ) -> dict[str, str]:
        """Make an asset a honeypot whose ground truth is ``json_response`` (a REVIEW label)."""
        scope = self._event
        scope.check_project(project_id, "create_honeypot")
        if (asset_id is None) == (asset_external_id is None):
            raise ValueError("kili.create_honeypot: give exactly one of asset_id, asset_external_id")
        [target] = scope.resolve_assets(
            [asset_id] if asset_id is not None else None,
            [asset_external_id] if asset_external_id is not None else None,
            "create_honeypot",
        )
        self._record({"type": "update_asset", "asset_id": target, "is_honeypot": True})
        self._record({
            "type": "append_label", "asset_id": target, "json_response": json_response,
            "label_type": "REVIEW", "model_name": None,
        })
        return {"id": self._pending_id("label")}


def _metadata_or_note(value: Any, index: int, asset_id: str, method: str) -> dict | None:
    """A ``json_metadatas`` item as the object it stands for; one that is not (Kili would store
    the text, which its own client then reads back as ``{}``) leaves the asset's metadata as
    it was, with a warning in the run's logs rather than a failed run."""
    if value is None:
        return None
    parsed, reason = _metadata.parse(value)
    if parsed is None:
        shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
        _NOTES.warning("kili.%s: json_metadatas[%d] for asset %s is not metadata (%s): %s; that asset's "
                       "metadata is left as it was. Pass a dict, e.g. {'accuracy': 98.5}",
                       method, index, asset_id, reason, shown)
    return parsed


def _outcome(ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Kili's ``AssetActionOutcome``; every asset is in ``succeeded`` since the change is an
    action applied after the hook (a refused one is recorded with its reason)."""
    return {"succeeded": [{"assetId": asset_id} for asset_id in ids], "declined": [], "failed": []}


def _as_list(value: Any, name: str, method: str) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"kili.{method}: {name} must be a list, not {type(value).__name__}")
    return list(value)


def _optional_list(value: Any) -> list | None:
    return None if value is None else list(value)


def _label_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"kili.create_issues: label ids are non-empty strings, not {value!r}")
    return value


def _same_length(values: Any, ids: list, name: str, method: str) -> list:
    if values is None:
        return [None] * len(ids)
    values = list(values)
    if len(values) != len(ids):
        raise ValueError(f"kili.{method}: {name} has {len(values)} items for {len(ids)} assets/labels")
    return values
