"""The ``self.kili`` a plugin receives: Kili's client methods, recording writes as actions.

Writes (``create_issues``, ``send_back_to_queue``, ``update_properties_in_assets``, ...: see
``_writes``) do not touch anything: they append actions (plain dicts in the wire format)
that the runtime validates and applies after the hook returns. Reads (``labels``, ``assets``, ``projects``, ...) are
answered for the plugin's own project only: from the event's recorded context in a dry-run,
from the live platform in the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from plugin_sdk._reads import DEFAULT_LABEL_FIELDS, DEFAULT_PROJECT_FIELDS, KiliReads, answer_from_context  # noqa: F401
from plugin_sdk._scope import EventScope
from plugin_sdk._writes import KiliWrites
from plugin_sdk.errors import PluginError, ProjectScopeError, UnsupportedMethodError

Reader = Callable[[str, dict], Any]

_OFFERED = (
    "create_issues", "send_back_to_queue", "add_to_review", "update_properties_in_assets",
    "append_labels", "create_honeypot", "create_predictions", "add_metadata", "set_metadata",
    "set_assets_priority", "assign_assets_to_labelers", "update_issue_status", "create_questions",
    "labels", "count_labels", "assets", "count_assets", "projects", "count_projects", "issues",
    "count_issues",
)


class NoEventError(PluginError, RuntimeError):
    """The handle was used outside a hook (e.g. in ``__init__``): there is no event yet."""


class KiliHandle(KiliReads, KiliWrites):
    """Kili's client, as a sandboxed plugin sees it. See the module docstring."""

    def __init__(self, project_id: str, reader: Reader | None = None) -> None:
        self._project_id = project_id
        self._scope: EventScope | None = None
        # Live reads (the service) work before any event too, e.g. in the plugin's __init__.
        self._live_reader = reader
        self._reader: Reader | None = None
        self._actions: list[dict] = []
        self._counter = 0
        #: Issue id -> its asset, from the issues the plugin read during the event.
        self._issue_assets: dict[str, str] = {}
        #: Label id -> its asset, from the labels the plugin read (or looked up) during the event.
        self._label_assets: dict[str, str] = {}

    # Driven by the executor, around each hook ------------------------------------------------

    def _begin(self, event: dict, reader: Reader | None = None) -> None:
        self._scope = EventScope(event)
        self._reader = reader
        if reader is not None:  # external ids of the project's other assets resolve as on Kili
            self._scope.find_assets = lambda external_ids: self._read(
                "assets", {"project_id": self._project_id, "external_id_strictly_in": external_ids})
        self._actions = []
        self._issue_assets = {}
        self._label_assets = {}

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
        answer = self._answer(method, query)
        if method in ("issues", "labels") and isinstance(answer, list):
            # update_issue_status names an issue only, create_issues a label only: their
            # assets are known from the reads.
            known = self._issue_assets if method == "issues" else self._label_assets
            known.update({record["id"]: record["assetId"] for record in answer if isinstance(record, dict)
                          and isinstance(record.get("id"), str) and isinstance(record.get("assetId"), str)})
        if method == "assets" and isinstance(answer, list) and self._scope is not None:
            self._scope.read_externals.update({
                record["externalId"]: record["id"] for record in answer if isinstance(record, dict)
                and isinstance(record.get("id"), str) and isinstance(record.get("externalId"), str)})
        return answer

    def _asset_of_label(self, label_id: str, method: str) -> str:
        """The asset a label is on, as Kili puts an issue on its label's asset: from the
        event's records, the labels read during the event, else one live read; where nothing
        tells (a dry-run without live reads), the event's asset, which the runtime checks."""
        scope = self._event
        known = scope.label_asset(label_id) or self._label_assets.get(label_id)
        if known is None and self._reader is not None:
            self._read("labels", {"project_id": self._project_id, "label_id": label_id, "first": 1})
            known = self._label_assets.get(label_id)
        return known or scope.asset_of_label(label_id, method)

    def _answer(self, method: str, query: dict[str, Any]) -> Any:
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


def iter_offered() -> Iterator[str]:
    """The Kili methods the handle offers (for docs and compatibility checks)."""
    return iter(_OFFERED)
