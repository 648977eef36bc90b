"""The fake Kili's mutations (see ``fake_kili``): what each changes in its state, as Kili's
API answers the real ``kili`` package (variables as that package sends them)."""

from __future__ import annotations

import json
from typing import Any

KEPT_METADATA = ("text", "imageUrl", "url", "processingParameters")


class Mutations:
    """Mixed into ``FakeKili`` (its state: ``projects``, ``assets``, ``labels``, ``issues``,
    ``plugins``; ``fail_next``: the names of mutations to fail once, as Kili down would)."""

    projects: dict[str, dict[str, Any]]
    assets: dict[str, dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    issues: dict[str, dict[str, Any]]
    plugins: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    fail_next: set[str]

    def new_id(self, kind: str) -> str:  # pragma: no cover - FakeKili's
        raise NotImplementedError

    def assets_of(self, where: dict) -> list[dict[str, Any]]:  # pragma: no cover - FakeKili's
        raise NotImplementedError

    def label_view(self, label: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - FakeKili's
        raise NotImplementedError

    def mutation_fields(self) -> dict[str, Any]:
        fields = {
            "createIssues": self.create_issues, "updatePropertiesInIssue": self.update_issue,
            "sendAssetsBackToQueue": lambda info, where: self.move(where, "ONGOING"),
            "addAssetsToReview": lambda info, where: self.move(where, "TO_REVIEW"),
            "setAssetsPriority": lambda info, where, priority: self.set_each(where, "priority", priority),
            "assignAssets": lambda info, where, userIds: self.set_each(where, "toBeLabeledBy", userIds),
            "updatePropertiesInAssets": self.update_assets, "appendManyLabels": self.append_labels,
            "listPlugins": lambda info: list(self.plugins.values()),
            "createWebhook": lambda info, data: self.webhook(data, create=True),
            "updateWebhook": lambda info, data: self.webhook(data, create=False),
            "activatePluginOnProject": lambda info, where: self.activation(where, True),
            "deactivatePluginOnProject": lambda info, where: self.activation(where, False),
            "deletePlugin": lambda info, where: self.plugins.pop(where["pluginName"], None) and "deleted",
        }
        return {name: self._failing(name, resolver) for name, resolver in fields.items()}

    def _failing(self, name: str, resolver: Any) -> Any:
        def resolve(info: Any, **args: Any) -> Any:
            if name in self.fail_next:
                self.fail_next.discard(name)
                raise RuntimeError(f"{name} failed: the fake is down")
            return resolver(info, **args)
        return resolve

    def create_issues(self, info: Any, issues: list[dict], where: dict) -> list[dict]:
        created = []
        for issue in issues:
            asset_id = issue.get("assetId") or self.labels[issue["labelID"]]["assetId"]
            issue_id = self.new_id("issue")
            self.issues[issue_id] = {"id": issue_id, "assetId": asset_id, "labelId": issue.get("labelID"),
                                     "objectMid": issue.get("objectMid"), "text": issue.get("text"),
                                     "type": issue.get("type") or "ISSUE", "status": "OPEN",
                                     "createdAt": _now()}
            created.append({"id": issue_id})
        return created

    def update_issue(self, info: Any, data: dict, where: dict) -> dict:
        self.issues[where["id"]].update({k: v for k, v in data.items() if k == "status"})
        return {"id": where["id"]}

    def move(self, where: dict, status: str) -> dict:
        done = [self.assets[a] for a in where["idIn"] if a in self.assets]
        for asset in done:
            asset["status"] = status
        return {"succeeded": [{"assetId": a["id"], "externalId": a["externalId"]} for a in done],
                "declined": [], "failed": [{"assetId": a, "details": "no such asset"} for a in where["idIn"]
                                           if a not in self.assets]}

    def set_each(self, where: dict, field: str, value: Any) -> dict:
        for asset_id in where["idIn"]:
            self.assets[asset_id][field] = value
        return {"succeeded": [{"assetId": a} for a in where["idIn"]], "declined": [], "failed": []}

    def update_assets(self, info: Any, where: list[dict], data: list[dict]) -> list[dict]:
        names = {"jsonMetadata": "jsonMetadata", "priority": "priority", "isHoneypot": "isHoneypot",
                 "isUsedForConsensus": "isUsedForConsensus", "toBeLabeledBy": "toBeLabeledBy"}
        for target, changes in zip(where, data):
            asset = self.assets[target["id"]]
            for key, value in changes.items():
                if key == "jsonMetadata" and isinstance(value, str):
                    try:
                        value = json.loads(value)
                    except ValueError:
                        pass  # kept as the text Kili was given
                if key in names and value is not None:
                    asset[names[key]] = value
        return [{"id": target["id"]} for target in where]

    def append_labels(self, info: Any, data: dict, where: dict) -> list[dict]:
        added = []
        for asset_id, label in zip(where["idIn"], data["labelsData"]):
            if data.get("overwrite"):
                for old in [l for l in self.labels.values() if l["assetId"] == asset_id
                            and l["labelType"] == data["labelType"] and l["modelName"] == label.get("modelName")]:
                    del self.labels[old["id"]]
            label_id = self.new_id("label")
            author = label.get("authorID") or "user-bot"
            self.users.setdefault(author, {"id": author, "email": f"{author}@example.com"})
            self.labels[label_id] = {"id": label_id, "assetId": asset_id, "labelType": data["labelType"],
                                     "jsonResponse": json.loads(label["jsonResponse"]), "authorId": author,
                                     "secondsToLabel": label.get("secondsToLabel"), "createdAt": _now(),
                                     "modelName": label.get("modelName"), "isSentBackToQueue": False}
            if data["labelType"] in ("DEFAULT", "REVIEW"):
                self.assets[asset_id]["status"] = "LABELED" if data["labelType"] == "DEFAULT" else "REVIEWED"
            added.append(self.label_view(self.labels[label_id]))
        return added

    def webhook(self, data: dict, create: bool) -> str:
        name = data["pluginName"]
        if create and name in self.plugins:
            raise ValueError(f"an entity Plugin already exists with value {name}")
        if not create and name not in self.plugins:
            raise ValueError(f"no plugin {name}")
        previous = self.plugins.get(name, {"projectIds": []})
        self.plugins[name] = {"id": f"plugin-{name}", "name": name, "projectIds": previous["projectIds"],
                              "webhookUrl": data["webhookUrl"], "header": data.get("header"),
                              "handlerTypes": data.get("handlerTypes"), "eventMatcher": data.get("eventMatcher")}
        return "OK"

    def activation(self, where: dict, active: bool) -> str:
        plugin = self.plugins[where["pluginName"]]
        project = where["projectId"]
        if active and project in plugin["projectIds"]:
            raise ValueError(f"an entity Project already exists with value {project}")
        plugin["projectIds"] = [p for p in plugin["projectIds"] if p != project] + ([project] if active else [])
        return "OK"


def _now() -> str:
    from tests.plugin_runtime.platforms.kili.fake_kili import now

    return now()
