"""The read half of ``self.kili``: ``labels``, ``assets``, ``projects`` and their counts, with
Kili's keyword arguments, for the plugin's own project only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plugin_sdk import _queries
from plugin_sdk._kili_api import KILI_READ_PARAMETERS
from plugin_sdk._scope import EventScope
from plugin_sdk.errors import UnsupportedMethodError

#: Kili's default ``fields`` of ``labels()``: with these (or none) every recorded field is
#: returned, since a context rarely holds ``author.email``.
DEFAULT_LABEL_FIELDS = (
    "author.email", "author.id", "id", "jsonResponse", "labelType", "secondsToLabel",
    "isLatestLabelForUser", "assetId",
)
DEFAULT_ISSUE_FIELDS = ("id", "createdAt", "status", "type", "assetId")
DEFAULT_PROJECT_FIELDS = (
    "consensusTotCoverage", "id", "inputType", "jsonInterface", "minConsensusSize",
    "reviewCoverage", "roles.id", "roles.role", "roles.user.email", "roles.user.id", "title",
)



class KiliReads:
    """Mixed into the handle; ``_read(method, query)`` answers from the host or the context."""

    def _read(self, method: str, query: dict[str, Any]) -> Any:  # pragma: no cover - the handle's
        raise NotImplementedError

    # Reads -------------------------------------------------------------------------------

    def labels(
        self,
        project_id: str,
        asset_id: str | None = None,
        asset_status_in: Sequence[str] | None = None,
        asset_external_id_in: list[str] | None = None,
        asset_external_id_strictly_in: list[str] | None = None,
        author_in: list[str] | None = None,
        fields: Sequence[str] = DEFAULT_LABEL_FIELDS,
        first: int | None = None,
        id_contains: list[str] | None = None,
        label_id: str | None = None,
        skip: int = 0,
        type_in: list[str] | None = None,
        user_id: str | None = None,
        disable_tqdm: bool | None = None,
        output_format: str = "dict",
        *,
        as_generator: bool = False,
        _count: bool = False,
        **unsupported: Any,
    ) -> Any:
        """Labels of the plugin's project, newest last, as plain camelCase dicts."""
        if output_format != "dict":
            raise UnsupportedMethodError("kili.labels: only output_format='dict' is available to plugins")
        _check_read_arguments("labels", unsupported)
        query = dict(
            project_id=project_id, asset_id=asset_id, asset_status_in=asset_status_in,
            asset_external_id_in=asset_external_id_in,
            asset_external_id_strictly_in=asset_external_id_strictly_in, author_in=author_in,
            id_contains=id_contains, label_id=label_id, type_in=type_in, user_id=user_id,
        )
        if _count:
            return int(self._read("count_labels", query))
        records = self._read("labels", _paged(query, first, skip))
        use = None if tuple(fields) == DEFAULT_LABEL_FIELDS else fields
        out = [_queries.project_fields(r, use, f"label {r.get('id')!r}") for r in records]
        return iter(out) if as_generator else out

    def count_labels(self, project_id: str, asset_id: str | None = None, **filters: Any) -> int:
        """How many labels :meth:`labels` would return for these filters."""
        _check_read_arguments("count_labels", filters, enforce=False)
        return int(self.labels(project_id, asset_id=asset_id, _count=True, **filters))

    def assets(
        self,
        project_id: str,
        asset_id: str | None = None,
        skip: int = 0,
        fields: Sequence[str] | None = None,
        asset_id_in: list[str] | None = None,
        asset_id_not_in: list[str] | None = None,
        disable_tqdm: bool | None = None,
        first: int | None = None,
        external_id_strictly_in: list[str] | None = None,
        external_id_in: list[str] | None = None,
        status_in: list[str] | None = None,
        *,
        as_generator: bool = False,
        _count: bool = False,
        **unsupported: Any,
    ) -> Any:
        """Assets of the plugin's project, as plain camelCase dicts."""
        _check_read_arguments("assets", unsupported)
        query = dict(
            project_id=project_id, asset_id=asset_id, asset_id_in=asset_id_in,
            asset_id_not_in=asset_id_not_in, external_id_in=external_id_in,
            external_id_strictly_in=external_id_strictly_in, status_in=status_in,
        )
        if _count:
            return int(self._read("count_assets", query))
        records = self._read("assets", _paged(query, first, skip))
        out = [_queries.project_fields(r, fields, f"asset {r.get('id')!r}") for r in records]
        return iter(out) if as_generator else out

    def count_assets(self, project_id: str, asset_id: str | None = None, **filters: Any) -> int:
        """How many assets :meth:`assets` would return for these filters."""
        _check_read_arguments("count_assets", filters, enforce=False)
        return int(self.assets(project_id, asset_id=asset_id, _count=True, **filters))

    def projects(
        self,
        project_id: str | None = None,
        fields: Sequence[str] = DEFAULT_PROJECT_FIELDS,
        first: int | None = None,
        skip: int = 0,
        disable_tqdm: bool | None = None,
        *,
        as_generator: bool = False,
        **unsupported: Any,
    ) -> Any:
        """The plugin's own project (a list of one dict), whatever ``project_id`` says
        within the plugin's scope."""
        _check_read_arguments("projects", unsupported)
        records = self._read("projects", _paged({"project_id": project_id}, first, skip))
        use = None if tuple(fields) == DEFAULT_PROJECT_FIELDS else fields
        out = [_queries.project_fields(r, use, "the project") for r in records]
        return iter(out) if as_generator else out

    def count_projects(self, project_id: str | None = None, **filters: Any) -> int:
        """1: a plugin sees its own project only."""
        _check_read_arguments("count_projects", filters, enforce=False)
        return len(self.projects(project_id, fields=("id",), **filters))


    def issues(
        self,
        project_id: str,
        fields: Sequence[str] = DEFAULT_ISSUE_FIELDS,
        first: int | None = None,
        skip: int = 0,
        disable_tqdm: bool | None = None,
        asset_id: str | None = None,
        asset_id_in: list[str] | None = None,
        issue_type: str | None = None,
        status: str | None = None,
        *,
        as_generator: bool = False,
        _count: bool = False,
    ) -> Any:
        """Issues and questions of the plugin's project (``issue_type`` ISSUE or QUESTION,
        ``status`` OPEN, SOLVED or CANCELLED), oldest first."""
        query = dict(project_id=project_id, asset_id=asset_id, asset_id_in=asset_id_in,
                     issue_type=issue_type, status=status)
        if _count:
            return int(self._read("count_issues", query))
        records = self._read("issues", _paged(query, first, skip))
        use = None if tuple(fields) == DEFAULT_ISSUE_FIELDS else fields
        out = [_queries.project_fields(r, use, f"issue {r.get('id')!r}") for r in records]
        return iter(out) if as_generator else out

    def count_issues(self, project_id: str, asset_id: str | None = None, asset_id_in: list[str] | None = None,
                     issue_type: str | None = None, status: str | None = None) -> int:
        """How many issues :meth:`issues` would return for these filters."""
        return int(self.issues(project_id, asset_id=asset_id, asset_id_in=asset_id_in, issue_type=issue_type,
                               status=status, _count=True))

def _check_read_arguments(method: str, given: dict[str, Any], enforce: bool = True) -> None:
    """Accept Kili's own keyword arguments; refuse a name Kili does not have (as Python would),
    and, with ``enforce``, a Kili filter the sandbox cannot honour."""
    known = KILI_READ_PARAMETERS[method]
    for name in given:
        if name not in known:
            raise TypeError(f"kili.{method}() got an unexpected keyword argument {name!r}")
    if enforce:
        _queries.refuse_unsupported(method, given, ())


def _paged(query: dict[str, Any], first: int | None, skip: int | None) -> dict[str, Any]:
    """``query`` with Kili's paging, which whoever answers applies (the live platform in its
    database, so a page costs a page)."""
    _queries.page([], first, skip)  # refuses negative values here, with the plugin's traceback
    paged = dict(query)
    if first is not None:
        paged["first"] = first
    if skip:
        paged["skip"] = skip
    return paged


def answer_from_context(scope: EventScope, method: str, query: dict[str, Any]) -> Any:
    """A read (or a ``count_`` of one) answered from the event's recorded context, filtered
    and paged as the live platform answers it."""
    if method.startswith("count_"):
        unpaged = {k: v for k, v in query.items() if k not in ("first", "skip")}
        return len(answer_from_context(scope, method[len("count_"):], unpaged))
    if method == "issues":
        records = scope.read_issues(query)
    elif method == "labels":
        records = scope.read_labels(query)
    elif method == "assets":
        records = scope.read_assets(query)
    elif method == "projects":
        records = [scope.read_project()]
    else:
        raise UnsupportedMethodError(f"kili.{method} cannot be answered from a recorded event")
    return _queries.page(records, query.get("first"), query.get("skip"))
