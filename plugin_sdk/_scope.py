"""What one event lets a plugin know: its project, its assets and their labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from plugin_sdk import _queries
from plugin_sdk.errors import ContextUnavailable, ProjectScopeError, UnresolvedAssetError

_RECORD_HINT = (
    "record events with their context (`plugin-runtime events export`), or add it to the "
    "event under context.asset / context.project"
)


class EventScope:
    """The records an event carries (``label``, ``context.asset``, ``context.assets``,
    ``context.project``), indexed for the handle's reads and id resolution."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.project_id: str = event["project_id"]
        self.asset_id: str | None = event.get("asset_id")
        context = event.get("context") or {}
        project = context.get("project")
        self.project: dict | None = {"id": self.project_id, **project} if project else None
        records = [context.get("asset")] + list(context.get("assets") or [])
        self.assets: dict[str, dict] = {}
        self.labels: dict[str, dict] = {}
        # Assets whose label list was recorded: only for those can "all labels" be answered.
        self.labels_known: set[str] = set()
        # Assets whose issues were recorded (context.asset.issues).
        self.issues: dict[str, list[dict]] = {}
        #: External id -> asset id, of the assets the plugin read during the event.
        self.read_externals: dict[str, str] = {}
        #: The project's assets of these external ids, read live; None: no live reads (a dry-run).
        self.find_assets: Callable[[list[str]], list[dict]] | None = None
        for asset in records:
            if isinstance(asset, dict) and isinstance(asset.get("id"), str):
                self.assets[asset["id"]] = _as_kili_returns(asset)
                if isinstance(asset.get("issues"), list):
                    self.issues[asset["id"]] = [
                        {**issue, "assetId": asset["id"]} for issue in asset["issues"] if isinstance(issue, dict)]
                if isinstance(asset.get("labels"), list):
                    self.labels_known.add(asset["id"])
                    for label in asset["labels"]:
                        if isinstance(label, dict) and "id" in label:
                            self.labels[label["id"]] = _queries.normalise_label(label, asset["id"])
        label = event.get("label")
        if isinstance(label, dict) and "id" in label and label["id"] not in self.labels:
            self.labels[label["id"]] = _queries.normalise_label(label, self.asset_id)

    def check_project(self, project_id: str | None, method: str) -> None:
        """Refuse a read or write on another project than the plugin's own."""
        if project_id is not None and project_id != self.project_id:
            raise ProjectScopeError(
                f"kili.{method}(project_id={project_id!r}): a plugin may only touch its own "
                f"project ({self.project_id!r})"
            )

    def resolve_assets(
        self, asset_ids: list[str] | None, external_ids: list[str] | None, method: str
    ) -> list[str]:
        """Asset ids from Kili's ``asset_ids``/``external_ids`` pair, external ids resolved
        through the assets the event carries and those read during the event, else (live
        reads) through the project's assets, as Kili resolves them."""
        if asset_ids is not None and external_ids is not None:
            raise ValueError(f"kili.{method}: give asset_ids or external_ids, not both")
        if asset_ids is not None:
            return [_check_id(a, method) for a in _as_list(asset_ids, "asset_ids", method)]
        if external_ids is None:
            raise ValueError(f"kili.{method}: give asset_ids or external_ids")
        wanted = _as_list(external_ids, "external_ids", method)
        carried = {a.get("externalId"): a["id"] for a in self.assets.values()}
        by_external: dict[Any, str] = {**self.read_externals, **carried}
        missing = sorted({e for e in wanted if e not in by_external and isinstance(e, str)})
        if missing and self.find_assets is not None:
            by_external.update(self._found(missing, method))
        resolved = []
        for external_id in wanted:
            if external_id not in by_external:
                raise UnresolvedAssetError(self._unresolved(external_id, by_external, method))
            resolved.append(by_external[external_id])
        return resolved

    def _found(self, external_ids: list[str], method: str) -> dict[str, str]:
        assert self.find_assets is not None
        found: dict[str, list[str]] = {}
        for asset in self.find_assets(external_ids):
            if isinstance(asset, dict) and asset.get("externalId") in external_ids:
                found.setdefault(asset["externalId"], []).append(asset["id"])
        for external_id, ids in found.items():
            if len(ids) > 1:
                raise UnresolvedAssetError(
                    f"kili.{method}: external id {external_id!r} names {len(ids)} assets of project "
                    f"{self.project_id!r} ({', '.join(map(repr, ids[:5]))}); pass asset_ids instead")
        return {external_id: ids[0] for external_id, ids in found.items()}

    def _unresolved(self, external_id: Any, by_external: dict, method: str) -> str:
        if self.find_assets is not None:
            return (f"kili.{method}: no asset of project {self.project_id!r} has the external id "
                    f"{external_id!r}; check it, or pass asset_ids")
        known = ", ".join(repr(e) for e in by_external if e is not None) or "none"
        return (f"kili.{method}: external id {external_id!r} is not an asset this event carries (known "
                f"external ids: {known}); pass asset_ids instead")

    def label_asset(self, label_id: str) -> str | None:
        """The asset of a label the event carries, if it does."""
        label = self.labels.get(label_id)
        return label["assetId"] if label is not None and label.get("assetId") else None

    def asset_of_label(self, label_id: str, method: str) -> str:
        """The asset a label belongs to, as far as the event tells."""
        known = self.label_asset(label_id)
        if known is not None:
            return known
        if self.asset_id is not None:
            # The runtime checks that the label really belongs to this asset before applying.
            return self.asset_id
        raise UnresolvedAssetError(
            f"kili.{method}: label {label_id!r} is not in this event, so its asset is unknown"
        )

    def asset_of_issue(self, issue_id: str) -> str | None:
        """The asset of an issue the event's context records, if it does."""
        for asset_id, issues in self.issues.items():
            if any(issue.get("id") == issue_id for issue in issues):
                return asset_id
        return None

    # Reads answered from the recorded context --------------------------------------------

    def read_labels(self, query: dict[str, Any]) -> list[dict]:
        asset_ids = self._scoped_assets(query, "labels")
        for asset_id in asset_ids:
            if asset_id not in self.labels_known:
                raise ContextUnavailable(
                    f"kili.labels: the labels of asset {asset_id!r} are not in the event's "
                    f"recorded context (context.asset.labels); {_RECORD_HINT}"
                )
        labels = [label for label in self.labels.values() if label.get("assetId") in asset_ids]
        return _queries.filter_labels(labels, query)

    def read_assets(self, query: dict[str, Any]) -> list[dict]:
        asset_ids = self._scoped_assets(query, "assets")
        for asset_id in asset_ids:
            if asset_id not in self.assets:
                raise ContextUnavailable(
                    f"kili.assets: asset {asset_id!r} is not in the event's recorded context; "
                    + _RECORD_HINT
                )
        records = []
        for asset_id in asset_ids:
            record = dict(self.assets[asset_id])
            if asset_id in self.labels_known:
                record["labels"] = [
                    l for l in self.labels.values() if l.get("assetId") == asset_id
                ]
            records.append(record)
        return _queries.filter_assets(records, query)

    def read_issues(self, query: dict[str, Any]) -> list[dict]:
        asset_ids = self._scoped_assets(query, "issues")
        for asset_id in asset_ids:
            if asset_id not in self.issues:
                raise ContextUnavailable(
                    f"kili.issues: the issues of asset {asset_id!r} are not in the event's recorded context "
                    f"(context.asset.issues); {_RECORD_HINT}"
                )
        return _queries.filter_issues([i for a in asset_ids for i in self.issues[a]], query)

    def read_project(self) -> dict:
        if self.project is None:
            raise ContextUnavailable(
                "kili.projects: the project is not in the event's recorded context; " + _RECORD_HINT
            )
        return self.project

    def _scoped_assets(self, query: dict[str, Any], method: str) -> list[str]:
        """The assets a read is about; a read over the whole project cannot be answered from
        one event, and says so."""
        if query.get("asset_id") is not None:
            return [query["asset_id"]]
        if query.get("asset_id_in") is not None:
            return list(query["asset_id_in"])
        external = (
            query.get("external_id_in")
            or query.get("external_id_strictly_in")
            or query.get("asset_external_id_in")
            or query.get("asset_external_id_strictly_in")
        )
        if external is not None:
            try:
                return self.resolve_assets(None, list(external), method)
            except UnresolvedAssetError as error:
                raise ContextUnavailable(f"{error}; {_RECORD_HINT}") from None
        if query.get("label_id") is not None and query["label_id"] in self.labels:
            return [self.labels[query["label_id"]]["assetId"]]
        raise ContextUnavailable(
            f"kili.{method}: a read over the whole project cannot be answered from one recorded "
            "event; pass asset_id=... (the asset of the event is the hook's asset_id)"
        )


def _as_list(value: Any, name: str, method: str) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"kili.{method}: {name} must be a list, not {type(value).__name__}")
    return list(value)


def _check_id(value: Any, method: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"kili.{method}: asset ids are non-empty strings, not {value!r}")
    return value


def _as_kili_returns(asset: dict) -> dict:
    """An asset as Kili's reads return it: ``jsonMetadata`` an object even when the recording
    holds it as a JSON string (as Kili accepts it on writes)."""
    metadata = asset.get("jsonMetadata")
    if not isinstance(metadata, str):
        return asset
    try:
        parsed = json.loads(metadata) if metadata.strip() else {}
    except ValueError:
        parsed = None
    return {**asset, "jsonMetadata": parsed if isinstance(parsed, dict) else {}}
