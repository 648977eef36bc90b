"""A small FAKE of Kili's GraphQL API on 127.0.0.1, for tests: Kili's cloud cannot run here.

It answers what the real ``kili`` package sends (checked by driving that package against it):
at construction, the API key check (``viewer``), ``GET .../version``, the schema
introspection and the key's expiry (``apiKeys``); then the queries and mutations of the
methods the runtime calls. It is a real GraphQL server (graphql-core, which the ``kili``
package depends on) over a schema written for the subset of Kili's API used here: the
client validates every operation against it, so an operation the package sends and the fake
does not know fails the test. Input objects (``LabelWhere``, ``AssetData``, ...) are declared
as scalars holding JSON: the fake reads them as dicts and filters on what it knows.
"""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import build_schema, graphql_sync

from tests.plugin_runtime.platforms.kili.fake_kili_mutations import Mutations

SDL = """
scalar JSONInput
scalar PageSize
scalar LabelWhere
scalar AssetWhere
scalar ProjectWhere
scalar IssueWhere
scalar ApiKeyWhere
scalar AssetData
scalar IssueData
scalar IssueToCreate
scalar AppendManyLabelsData

type User { id: ID! email: String firstname: String lastname: String }
type ApiKey { id: ID! key: String expiryDate: String }
type Project {
  id: ID! title: String description: String inputType: String jsonInterface: String
  minConsensusSize: Int reviewCoverage: Int consensusTotCoverage: Int createdAt: String updatedAt: String
  numberOfAssets: Int roles: [ProjectUser] steps: [Step] workflowVersion: String
}
type Step { id: ID! name: String type: String order: Int }
type Resolution { width: Int height: Int }
type ProjectUser { id: ID! role: String user: User }
type Label {
  id: ID! jsonResponse: String labelType: String author: User authorId: String labelOf: Asset
  createdAt: String updatedAt: String secondsToLabel: Float modelName: String isSentBackToQueue: Boolean
  isLatestLabelForUser: Boolean isLatestDefaultLabelForUser: Boolean isLatestReviewLabelForUser: Boolean
  numberOfAnnotations: Int consensusMark: Float honeypotMark: Float inferenceMark: Float version: Int
  reviewedLabel: Label jsonResponseUrl: String
}
type Asset {
  id: ID! externalId: String content: String jsonMetadata: String status: String priority: Int
  toBeLabeledBy: [User] isHoneypot: Boolean isUsedForConsensus: Boolean consensusMark: Float
  honeypotMark: Float inferenceMark: Float createdAt: String updatedAt: String labels: [Label]
  latestLabel: Label project: Project issues: [Issue] skipped: Boolean ocrMetadata: String
  jsonContent: String resolution: Resolution latestLabels: [Label] currentStep: AssetStep
}
type AssetStep { id: ID name: String status: String }
type Issue {
  id: ID! type: String status: String objectMid: String createdAt: String hasBeenSeen: Boolean
  issueNumber: Int assetId: String labelId: String asset: Asset label: Label author: User
  comments: [Comment] project: Project
}
type Comment { id: ID! text: String createdAt: String author: User }
type AssetRef { assetId: ID externalId: String details: String }
type AssetActionOutcome { succeeded: [AssetRef!]! declined: [AssetRef!]! failed: [AssetRef!]! }
type Plugin { id: ID! name: String createdAt: String updatedAt: String projectIds: [String] }
enum PluginHandlerType { onSubmit onReview onCustomInterfaceClick onProjectUpdated onSendBackToQueue }
input WebhookData { eventMatcher: [String!] handlerTypes: [PluginHandlerType!] header: String pluginName: String!
                    webhookUrl: String! }
input PluginProjectWhere { pluginName: String! projectId: ID! }
input PluginNameWhere { pluginName: String! }
type Query {
  viewer: User
  apiKeys(where: ApiKeyWhere!, first: PageSize!, skip: Int!): [ApiKey]
  projects(where: ProjectWhere!, first: PageSize!, skip: Int!): [Project]
  countProjects(where: ProjectWhere!): Int
  labels(where: LabelWhere!, first: PageSize!, skip: Int!): [Label]
  countLabels(where: LabelWhere!): Int
  assets(where: AssetWhere!, first: PageSize!, skip: Int!): [Asset]
  countAssets(where: AssetWhere!): Int
  issues(where: IssueWhere!, first: PageSize!, skip: Int!): [Issue]
  countIssues(where: IssueWhere!): Int
  listPlugins: [Plugin]
}
type Mutation {
  createIssues(issues: [IssueToCreate!]!, where: AssetWhere!): [Issue]
  updatePropertiesInIssue(data: IssueData!, where: IssueWhere!): Issue
  sendAssetsBackToQueue(where: AssetWhere!): AssetActionOutcome
  addAssetsToReview(where: AssetWhere!): AssetActionOutcome
  setAssetsPriority(where: AssetWhere!, priority: Int!): AssetActionOutcome
  assignAssets(where: AssetWhere!, userIds: [String!]!): AssetActionOutcome
  updatePropertiesInAssets(where: [AssetWhere!]!, data: [AssetData!]!): [Asset]
  appendManyLabels(data: AppendManyLabelsData!, where: AssetWhere!): [Label]
  createWebhook(data: WebhookData!): String
  updateWebhook(data: WebhookData!): String
  activatePluginOnProject(where: PluginProjectWhere!): String
  deactivatePluginOnProject(where: PluginProjectWhere!): String
  deletePlugin(where: PluginNameWhere!): String
}
"""
SCHEMA = build_schema(SDL)

API_PATH = "/api/label/v2/graphql"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeKili(Mutations):
    """The fake's state (projects, assets, labels, issues, plugins), its HTTP server, and the
    operations it received (``calls``: operation root field names, in order)."""

    def __init__(self, api_key: str = "fake-kili-key") -> None:
        self.api_key = api_key
        self.projects: dict[str, dict[str, Any]] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.issues: dict[str, dict[str, Any]] = {}
        self.plugins: dict[str, dict[str, Any]] = {}
        self.users = {"user-bot": {"id": "user-bot", "email": "bot@example.com"}}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: set[str] = set()
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{API_PATH}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # Seeding ------------------------------------------------------------------------------

    def add_project(self, project_id: str, title: str = "Project", json_interface: dict | None = None,
                    **settings: Any) -> None:
        self.projects[project_id] = {"id": project_id, "title": title, "inputType": "IMAGE",
                                     "jsonInterface": json_interface or {"jobs": {}}, "minConsensusSize": 1,
                                     "reviewCoverage": 0, "consensusTotCoverage": 0, "workflowVersion": "V2",
                                     "steps": [{"id": "step-1", "name": "Labeling", "type": "DEFAULT", "order": 0}],
                                     **settings}

    def add_asset(self, project_id: str, asset_id: str, external_id: str | None = None, **fields: Any) -> None:
        self.assets[asset_id] = {"id": asset_id, "projectId": project_id, "externalId": external_id or asset_id,
                                 "content": f"https://example.com/{asset_id}.png", "jsonMetadata": {},
                                 "status": "TODO", "priority": 0, "toBeLabeledBy": [], "isHoneypot": False,
                                 "isUsedForConsensus": False, "createdAt": now(), **fields}

    def add_label(self, asset_id: str, label_id: str, json_response: dict, label_type: str = "DEFAULT",
                  author: str = "user-1", created_at: str | None = None, **fields: Any) -> None:
        self.users.setdefault(author, {"id": author, "email": f"{author}@example.com"})
        self.labels[label_id] = {"id": label_id, "assetId": asset_id, "labelType": label_type,
                                 "jsonResponse": json_response, "authorId": author, "secondsToLabel": 12,
                                 "modelName": None, "createdAt": created_at or now(), "isSentBackToQueue": False,
                                 **fields}
        self.assets[asset_id]["status"] = "REVIEWED" if label_type == "REVIEW" else "LABELED"

    def add_issue(self, asset_id: str, label_id: str | None, text: str, issue_type: str = "ISSUE",
                  status: str = "OPEN", created_at: str | None = None) -> str:
        issue_id = self.new_id("issue")
        self.issues[issue_id] = {"id": issue_id, "assetId": asset_id, "labelId": label_id, "objectMid": None,
                                 "text": text, "type": issue_type, "status": status,
                                 "createdAt": created_at or now()}
        return issue_id

    # Views, in Kili's shapes (JSON fields as strings, as Kili's API answers them) -----------

    def label_view(self, label: dict[str, Any]) -> dict[str, Any]:
        later = [other for other in self.labels.values() if other["assetId"] == label["assetId"]
                 and other["authorId"] == label["authorId"] and other["createdAt"] > label["createdAt"]]
        return {**label, "jsonResponse": json.dumps(label["jsonResponse"]), "author": self.users[label["authorId"]],
                "labelOf": lambda info, **_: self.asset_view(self.assets[label["assetId"]]),
                "isLatestLabelForUser": not later, "numberOfAnnotations": 0}

    def asset_view(self, asset: dict[str, Any]) -> dict[str, Any]:
        metadata = asset["jsonMetadata"]
        labels = sorted((l for l in self.labels.values() if l["assetId"] == asset["id"]), key=lambda l: l["createdAt"])
        return {**asset, "jsonMetadata": metadata if isinstance(metadata, str) else json.dumps(metadata),
                "toBeLabeledBy": [self.users.get(u, {"id": u}) for u in asset["toBeLabeledBy"]],
                "currentStep": {"id": "step-1", "name": "Labeling",
                                "status": {"TODO": "TO_DO", "ONGOING": "TO_DO"}.get(asset["status"], "DONE")},
                "labels": lambda info, **_: [self.label_view(l) for l in labels],
                "latestLabel": lambda info, **_: self.label_view(labels[-1]) if labels else None,
                "project": lambda info, **_: self.project_view(self.projects[asset["projectId"]]),
                "issues": lambda info, **_: [self.issue_view(i) for i in self.issues.values()
                                             if i["assetId"] == asset["id"]]}

    def project_view(self, project: dict[str, Any]) -> dict[str, Any]:
        return {**project, "jsonInterface": json.dumps(project["jsonInterface"]), "roles": []}

    def issue_view(self, issue: dict[str, Any]) -> dict[str, Any]:
        return {**issue, "comments": [{"id": f"{issue['id']}-c", "text": issue["text"]}] if issue["text"] else [],
                "asset": lambda info, **_: self.asset_view(self.assets[issue["assetId"]])}

    # Queries ------------------------------------------------------------------------------

    def viewer(self, info: Any) -> dict[str, Any]:
        return {"id": "user-bot", "email": "bot@example.com"}

    def apiKeys(self, info: Any, where: dict, first: int, skip: int) -> list[dict[str, Any]]:  # noqa: N802
        return [{"id": "key-1", "key": self.api_key, "expiryDate": "2099-01-01T00:00:00.000Z"}]

    def projects_of(self, where: dict) -> list[dict[str, Any]]:
        return [p for p in self.projects.values() if where.get("id") in (None, p["id"])]

    def assets_of(self, where: dict) -> list[dict[str, Any]]:
        out = []
        for asset in sorted(self.assets.values(), key=lambda a: a["createdAt"]):
            if (where.get("project") or {}).get("id") not in (None, asset["projectId"]):
                continue
            if where.get("id") not in (None, asset["id"]) or (where.get("idIn") is not None
                                                              and asset["id"] not in where["idIn"]):
                continue
            external = where.get("externalIdStrictlyIn") or where.get("externalIdIn")
            if external is not None and asset["externalId"] not in external:
                continue
            if where.get("statusIn") is not None and asset["status"] not in where["statusIn"]:
                continue
            out.append(asset)
        return out

    def labels_of(self, where: dict) -> list[dict[str, Any]]:
        assets = {a["id"] for a in self.assets_of({**(where.get("asset") or {}), "project": where.get("project")})}
        out = []
        for label in sorted(self.labels.values(), key=lambda l: l["createdAt"]):
            if label["assetId"] not in assets or where.get("id") not in (None, label["id"]):
                continue
            if where.get("typeIn") is not None and label["labelType"] not in where["typeIn"]:
                continue
            if where.get("createdAtGte") is not None and label["createdAt"] < where["createdAtGte"]:
                continue
            if where.get("authorIn") is not None and label["authorId"] not in where["authorIn"]:
                continue
            out.append(label)
        return out

    def issues_of(self, where: dict) -> list[dict[str, Any]]:
        assets = {a["id"] for a in self.assets_of({"project": where.get("project")})}
        asset_id = (where.get("asset") or {}).get("id")
        return [i for i in sorted(self.issues.values(), key=lambda i: i["createdAt"])
                if i["assetId"] in assets and asset_id in (None, i["assetId"]) and where.get("id") in (None, i["id"])
                and (where.get("assetIn") is None or i["assetId"] in where["assetIn"])
                and where.get("status") in (None, i["status"]) and where.get("type") in (None, i["type"])]

    def _page(self, items: list, first: int, skip: int) -> list:
        return items[skip: skip + first]

    def projects_field(self, info: Any, where: dict, first: int, skip: int) -> list[dict]:
        return [self.project_view(p) for p in self._page(self.projects_of(where), first, skip)]

    def labels_field(self, info: Any, where: dict, first: int, skip: int) -> list[dict]:
        return [self.label_view(l) for l in self._page(self.labels_of(where), first, skip)]

    def assets_field(self, info: Any, where: dict, first: int, skip: int) -> list[dict]:
        return [self.asset_view(a) for a in self._page(self.assets_of(where), first, skip)]

    def issues_field(self, info: Any, where: dict, first: int, skip: int) -> list[dict]:
        return [self.issue_view(i) for i in self._page(self.issues_of(where), first, skip)]

    def root(self) -> dict[str, Any]:
        """The root value: each top-level field's resolver."""
        fields = {
            "viewer": self.viewer, "apiKeys": self.apiKeys, "projects": self.projects_field,
            "labels": self.labels_field, "assets": self.assets_field, "issues": self.issues_field,
            "countProjects": lambda info, where: len(self.projects_of(where)),
            "countLabels": lambda info, where: len(self.labels_of(where)),
            "countAssets": lambda info, where: len(self.assets_of(where)),
            "countIssues": lambda info, where: len(self.issues_of(where)),
        }
        return {**fields, **self.mutation_fields()}

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            result = graphql_sync(SCHEMA, body.get("query") or "", root_value=self.root(),
                                  variable_values=body.get("variables"), operation_name=body.get("operationName"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            # As Kili's: the client reads extensions.context of every error.
            out["errors"] = [{"message": e.message, "path": e.path,
                              "extensions": {"code": "OPERATION_RESOLUTION_FAILURE", "context": {}}}
                             for e in result.errors]
        return out


def _handler(fake: FakeKili) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet tests
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            return self.headers.get("Authorization") == f"X-API-Key: {fake.api_key}"

        def do_GET(self) -> None:  # noqa: N802
            if self.path == API_PATH.replace("/graphql", "/version"):
                self._send(200, {"version": "2.150.0-fake"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != API_PATH:
                self._send(404, {"error": "not found"})
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            if not self._authorised():
                self._send(401, {"errors": [{"message": "Invalid API key"}]})
                return
            body = json.loads(raw)
            query = body.get("query") or ""
            if "__schema" not in query:
                fake.calls.append((_operation(query), body.get("variables") or {}))
            self._send(200, fake.execute(body))

    return Handler


def _operation(query: str) -> str:
    """The first root field an operation selects (``labels``, ``createIssues``), for ``calls``."""
    import re

    match = re.search(r"\{\s*(?:\w+\s*:\s*)?(\w+)", query)
    return match.group(1) if match else "?"
