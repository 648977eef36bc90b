"""The ``self.kili`` a plugin receives: Kili's client methods, recording writes as actions.

Writes (``create_issues``, ``send_back_to_queue``, ``update_properties_in_assets``, ...) do not
touch anything: they append actions (plain dicts in the wire format) that the runtime validates
and applies after the hook returns. Reads (``labels``, ``assets``, ``projects``, ...) are
answered for the plugin's own project only: from the event's recorded context in a dry-run,
from the live platform in the runtime.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from plugin_sdk import _queries
from plugin_sdk._reads import DEFAULT_LABEL_FIELDS, DEFAULT_PROJECT_FIELDS, KiliReads, answer_from_context  # noqa: F401
from plugin_sdk._scope import EventScope
from plugin_sdk.errors import PluginError, ProjectScopeError, UnsupportedMethodError

Reader = Callable[[str, dict], Any]

_OFFERED = (
    "create_issues", "send_back_to_queue", "add_to_review", "update_properties_in_assets",
    "append_labels", "create_honeypot", "labels", "count_labels", "assets", "count_assets",
    "projects", "count_projects", "issues", "count_issues",
)


class NoEventError(PluginError, RuntimeError):
    """The handle was used outside a hook (e.g. in ``__init__``): there is no event yet."""


class KiliHandle(KiliReads):
    """Kili's client, as a sandboxed plugin sees it. See the module docstring."""

    def __init__(self, project_id: str, reader: Reader | None = None) -> None:
        self._project_id = project_id
        self._scope: EventScope | None = None
        # Live reads (the service) work before any event too, e.g. in the plugin's __init__.
        self._live_reader = reader
        self._reader: Reader | None = None
        self._actions: list[dict] = []
        self._counter = 0

    # Driven by the executor, around each hook ------------------------------------------------

    def _begin(self, event: dict, reader: Reader | None = None) -> None:
        self._scope = EventScope(event)
        self._reader = reader
        self._actions = []

    def _end(self) -> list[dict]:
        actions, self._actions, self._scope, self._reader = self._actions, [], None, None
        return actions

    @property
    def _event(self) -> EventScope:
        if self._scope is None:
            raise NoEventError(
                "self.kili is only usable while a hook runs (on_submit, on_review, ...) when the "
                "plugin is created without a live platform (dry-run, tests): read the project in the "
                "hook instead, e.g. once on the first event; in the service, reads in __init__ work"
            )
        return self._scope

    def _record(self, action: dict) -> None:
        self._actions.append(action)

    def _pending_id(self, kind: str) -> str:
        # Real ids exist only once the runtime applies the action; these name it meanwhile.
        self._counter += 1
        return f"pending-{kind}-{self._counter}"

    def _read(self, method: str, query: dict[str, Any]) -> Any:
        if self._scope is None and self._live_reader is not None:
            if query.get("project_id") not in (None, self._project_id):
                raise ProjectScopeError(f"kili.{method}(project_id={query['project_id']!r}): a plugin may only "
                                        f"read its own project ({self._project_id!r})")
            return self._live_reader(method, {**{k: v for k, v in query.items() if v is not None},
                                              "project_id": self._project_id})
        scope = self._event
        scope.check_project(query.get("project_id"), method)
        query = {k: v for k, v in query.items() if v is not None}
        query["project_id"] = self._project_id
        if self._reader is not None:
            return self._reader(method, query)
        return answer_from_context(scope, method, query)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        import difflib  # only on this error path: the plugin process starts without it

        close = difflib.get_close_matches(name, _OFFERED, n=1, cutoff=0.8)
        if close:  # a typo of a method it has
            raise UnsupportedMethodError(f"kili.{name} is not available to a plugin: did you mean kili.{close[0]}? "
                                         "Available: " + ", ".join(_OFFERED))
        raise UnsupportedMethodError(
            f"kili.{name} is not available to a plugin: plugins run without network or "
            "credentials and act through the actions they record. Available: "
            + ", ".join(_OFFERED)
        )

    # Writes ------------------------------------------------------------------------------

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
        labels = [_label_id(value) for value in _as_list(label_id_array, "label_id_array")]
        mids = _same_length(object_mid_array, labels, "object_mid_array", "create_issues")
        texts = _same_length(text_array, labels, "text_array", "create_issues")
        created = []
        for label_id, mid, text in zip(labels, mids, texts):
            self._record({
                "type": "create_issue",
                "asset_id": scope.asset_of_label(label_id, "create_issues"),
                "label_id": label_id,
                "text": text,
                "object_mid": mid,
            })
            created.append({"id": self._pending_id("issue")})
        return created

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
        """Set asset properties; ``json_metadatas`` items (dicts or JSON strings) *replace*
        each asset's metadata, as on Kili."""
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
        columns = {
            "priority": _same_length(priorities, ids, "priorities", method),
            "json_metadata": [
                _metadata(m, method) if m is not None else None
                for m in _same_length(json_metadatas, ids, "json_metadatas", method)
            ],
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
        """Add a label (``label_type`` DEFAULT, REVIEW, PREDICTION, INFERENCE) to each asset."""
        method = "append_labels"
        _queries.refuse_unsupported(
            method,
            {"overwrite": overwrite, "step_name": step_name, "step_id": step_id,
             "reviewed_label_id_array": reviewed_label_id_array, "group_name": group_name},
            (),
        )
        scope = self._event
        scope.check_project(project_id, method)
        ids = scope.resolve_assets(asset_id_array, asset_external_id_array, method)
        responses = list(json_response_array)
        if len(responses) != len(ids):
            raise ValueError(
                f"kili.{method}: json_response_array has {len(responses)} items for "
                f"{len(ids)} assets"
            )
        authors = _same_length(author_id_array, ids, "author_id_array", method)
        seconds = _same_length(seconds_to_label_array, ids, "seconds_to_label_array", method)
        created = []
        for asset_id, response, author, secs in zip(ids, responses, authors, seconds):
            action = {
                "type": "append_label", "asset_id": asset_id, "json_response": response,
                "label_type": label_type, "model_name": model_name,
            }
            if author is not None:
                action["author_id"] = author
            if secs is not None:
                action["seconds_to_label"] = secs
            self._record(action)
            created.append({"id": self._pending_id("label")})
        return created

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


def _as_list(value: Any, name: str) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"kili.create_issues: {name} must be a list, not {type(value).__name__}")
    return list(value)


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


def _metadata(value: Any, method: str) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"kili.{method}: a json_metadatas item is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise TypeError(
            f"kili.{method}: json_metadatas items are dicts or JSON strings of objects, "
            f"not {type(value).__name__}"
        )
    return value


def iter_offered() -> Iterator[str]:
    """The Kili methods the handle offers (for docs and compatibility checks)."""
    return iter(_OFFERED)
