"""Attacks on the host side of a running service (HTTP, SQLite, process sandbox), written as an
attacker writes them: plugins whose actions, reads and raw protocol messages aim at the host's
handling; webhooks carrying values the host cannot store. Each must end as a status or a 4xx,
never as a 5xx, a dead run or a stalled lane (or the store's write lock held for hours), and a
benign plugin of the same project must still run afterwards."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

BENIGN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("benign checked %s", asset_id)
        self.kili.add_to_review(asset_ids=[asset_id])
'''

# Each attack is the ATTACK of the label's jsonResponse; "raw" ones write on the protocol's
# descriptor, reached through the SDK's objects, what the SDK itself would never send.
ATTACKER = r'''
import json
import os

from plugin_sdk import PluginCore


def channel(plugin):
    handler = next(h for h in plugin.logger.handlers if hasattr(h, "executor"))
    return handler.executor.sink.__self__.channel


def raw(plugin, message):
    os.write(channel(plugin).out, json.dumps(message).encode() + b"\n")


def call(plugin, message):
    """A read written by hand; its reply is consumed here, so the session stays in step."""
    raw(plugin, message)
    return json.loads(channel(plugin).inp.readline())


def result_instead(plugin, text):
    """Send ``text`` as this hook's result message, in place of the SDK's own."""
    protocol = channel(plugin)
    sdk_send = protocol.send

    def send(message):
        if message.get("type") == "result":
            protocol.send = sdk_send
            os.write(protocol.out, text.encode() + b"\n")
        else:
            sdk_send(message)
    protocol.send = send


def boxes(count):
    square = [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}, {"x": 0, "y": 1}]
    return {"JOB": {"annotations": [{"boundingPoly": [{"normalizedVertices": square}], "categories": [{"name": "A"}]}
                                    for _ in range(count)]}}


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        attack = label["jsonResponse"].get("ATTACK")
        event_id = label["id"].replace("label-", "")
        if attack == "unreadable-labels":
            # Shapes the quality metrics cannot read, next to a label they can.
            return [{"type": "append_label", "asset_id": asset_id, "author_id": author, "json_response": response}
                    for author, response in (("m1", {"JOB": {"annotations": 5}}),
                                             ("m2", {"JOB": {"annotations": [{"boundingPoly": 3}], "children": 7}}),
                                             ("m3", {"JOB": {"categories": [{"name": {"x": 1}}]}}),
                                             ("m4", {"JOB": {"annotations": [{"point": {"x": 10**400, "y": 0}}]}}))]
        if attack == "cubic-marks":
            # Two authors' labels of 2,000 overlapping boxes: an optimal assignment of minutes.
            return [{"type": "append_label", "asset_id": asset_id, "author_id": author, "json_response": boxes(2_000)}
                    for author in ("c1", "c2")]
        if attack == "empty-annotations":
            # 85,000 empty annotations fit the 256 KB limit of a label; every pair is compared.
            empty = {"JOB": {"annotations": [{}] * 85_000}}
            return [{"type": "append_label", "asset_id": asset_id, "author_id": author, "json_response": empty}
                    for author in ("e1", "e2")]
        if attack == "many-authors":
            # Consensus compares every pair of authors' latest labels, once per appended label.
            return [{"type": "append_label", "asset_id": asset_id, "author_id": f"a{n}", "json_response": {}}
                    for n in range(1_000)]
        if attack == "end-of-time":
            # The asset's label is dated 9999-12-31T23:59:59.999Z: no millisecond comes after it.
            return [{"type": "append_label", "asset_id": asset_id, "label_type": "PREDICTION", "json_response": {}}]
        if attack == "overflowing-number":
            result_instead(self, json.dumps({"type": "result", "event_id": event_id, "status": "ok", "actions": [
                {"type": "update_asset", "asset_id": asset_id, "json_metadata": {"score": "PLACEHOLDER"}}]}
                ).replace('"PLACEHOLDER"', "1e400"))
            return
        if attack == "weird-types":
            replies = [call(self, {"type": "call", "event_id": event_id, "call_id": {"x": [1]}, "method": ["labels"],
                                   "kwargs": []}),
                       call(self, {"type": "call", "event_id": event_id, "call_id": 1, "method": "labels",
                                   "kwargs": {"first": "10"}}),
                       call(self, {"type": "call", "event_id": event_id, "call_id": 2, "method": None, "kwargs": None})]
            self.logger.info("replies %s", [reply.get("error_type") for reply in replies])
            raw(self, {"type": "log", "event_id": event_id, "level": "info", "message": "x", "source": {"a": 1},
                       "extra": list(range(1000))})
            result_instead(self, json.dumps({"type": "result", "event_id": event_id, "status": ["ok"],
                                             "error": {"tb": 1}, "actions": [], "unknown": 10**300}))
            return
        if attack == "actions-not-a-list":
            result_instead(self, json.dumps({"type": "result", "event_id": event_id, "status": "ok", "actions": {"0": {}}}))
            return
        if attack == "fill":
            # 7.5 MB of labels a run, within the limits (250 KB each, 8 MB a message)
            return [{"type": "append_label", "asset_id": asset_id, "label_type": "PREDICTION",
                     "json_response": {"T": "x" * 249_000, "n": n}} for n in range(30)]
        if attack == "read-everything":
            for name, read in (("labels", lambda: len(self.kili.labels(project_id=self.project_id))),
                               ("assets", lambda: len(self.kili.assets(project_id=self.project_id))),
                               ("labels-page", lambda: len(self.kili.labels(project_id=self.project_id, first=5)))):
                try:
                    self.logger.info("read %s -> %s", name, read())
                except Exception as error:
                    self.logger.info("read %s refused: %s: %s", name, type(error).__name__, str(error)[:200])
        if attack == "hostile-reads":
            self.read_attacks(asset_id)
        self.kili.add_to_review(asset_ids=[asset_id])

    def read_attacks(self, asset_id):
        calls = {
            "huge-first": lambda: len(self.kili.labels(project_id=self.project_id, first=10**30)),
            "huge-skip": lambda: len(self.kili.assets(project_id=self.project_id, skip=2**80)),
            "negative-skip": lambda: self.kili.assets(project_id=self.project_id, skip=-1),
            "negative-first": lambda: self.kili.labels(project_id=self.project_id, first=-5),
            "sql-string": lambda: len(self.kili.assets(project_id=self.project_id, asset_id="x' OR '1'='1")),
            "sql-in": lambda: len(self.kili.labels(project_id=self.project_id, type_in=["DEFAULT') OR 1=1 --"])),
            "many-ids": lambda: len(self.kili.assets(project_id=self.project_id, asset_id_in=[f"a{n}" for n in range(50_000)])),
            "dotted-fields": lambda: len(self.kili.assets(project_id=self.project_id, fields=["a" + ".b" * 5_000, "id"])),
            "count": lambda: self.kili.count_labels(project_id=self.project_id),
            "object-filter": lambda: self.kili.labels(project_id=self.project_id, label_id={"$ne": ""}),
            "other-project": lambda: [a["id"] for a in self.kili.assets(project_id="proj-victim")],
        }
        for name, call in calls.items():
            try:
                self.logger.info("read %s -> %s", name, call())
            except Exception as error:
                self.logger.info("read %s refused: %s: %s", name, type(error).__name__, str(error)[:120])
'''


def make_zip(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    return buffer.getvalue()


def deploy(service: Service, name: str, code: str, project: str) -> None:
    response = service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": "true"},
                                  data=make_zip(code), timeout=60)
    assert response.status_code == 202, response.text
    assert service.runtime.registry.wait(name, response.json()["version"], 120)["status"] == "active"
    assert service.admin.put(f"{service.url}/v1/plugins/{name}/projects/{project}", timeout=30).status_code == 200


def runs_of(service: Service, event_id: str) -> dict[str, dict]:
    service.settle(300)
    rows = service.runtime.store.read().execute("SELECT id, plugin FROM runs WHERE event_id = ?", (event_id,))
    return {row["plugin"]: service.admin.get(f"{service.url}/v1/runs/{row['id']}", timeout=30).json() for row in rows}


def label_event(event_id: str, project: str, attack: str, **label: object) -> dict:
    return {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": f"asset-{event_id}",
            "label": {"id": f"label-{event_id}", "jsonResponse": {"ATTACK": attack}, **label}}


def assert_benign_still_runs(service: Service, project: str, event_id: str) -> None:
    assert service.post_event(label_event(event_id, project, "fine")).status_code == 202
    runs = runs_of(service, event_id)
    assert runs["benign"]["status"] == "succeeded", runs["benign"]
    assert [a["status"] for a in runs["benign"]["actions"]] == ["applied"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database):
    running = start_service(tmp_path_factory.mktemp("hostile-host"), "process", database)
    deploy(running, "attacker", ATTACKER, "proj-host")
    deploy(running, "benign", BENIGN, "proj-host")
    victim = {"id": "victim-event", "type": "onSubmit", "project_id": "proj-victim", "asset_id": "victim-asset",
              "label": {"id": "victim-label", "jsonResponse": {}}}
    assert running.post_event(victim).status_code == 202
    yield running
    stop_service(running)


def attack(service: Service, kind: str, **label: object) -> tuple[dict, dict]:
    event_id = f"host-{kind}"
    assert service.post_event(label_event(event_id, "proj-host", kind, **label)).status_code == 202
    runs = runs_of(service, event_id)
    return runs["attacker"], runs["benign"]


def labels_of(service: Service, asset_id: str) -> list[dict]:
    return [dict(row) for row in service.runtime.store.read().execute(
        "SELECT author_id, consensus_mark, inference_mark FROM labels WHERE asset_id = ? ORDER BY seq", (asset_id,))]


# Actions whose handling raised on the host: each run was retried with backoff, holding its
# lane, then dead; its actions lost.

def test_labels_the_quality_metrics_cannot_read_are_applied_without_marks(service: Service) -> None:
    hostile, benign = attack(service, "unreadable-labels")
    assert hostile["status"] == "succeeded" and hostile["attempts"] == 1, hostile["error"]
    assert [a["status"] for a in hostile["actions"]] == ["applied"] * 4
    marks = labels_of(service, "asset-host-unreadable-labels")
    assert len(marks) == 5 and all(label["consensus_mark"] is None for label in marks[1:])
    assert benign["status"] == "succeeded"
    assert_benign_still_runs(service, "proj-host", "after-unreadable-labels")


@pytest.mark.parametrize("kind", ["cubic-marks", "empty-annotations", "many-authors"])
def test_labels_whose_marks_would_take_hours_are_applied_within_the_marks_budget(service: Service, kind: str) -> None:
    """The marks were computed inside the write transaction: every other run, webhook and
    upload of the runtime waited for hours. They are unknown (None) past the budget."""
    hostile, benign = attack(service, kind)
    assert hostile["status"] == "succeeded" and hostile["attempts"] == 1, hostile["error"]
    assert {a["status"] for a in hostile["actions"]} == {"applied"}
    marks = labels_of(service, f"asset-host-{kind}")
    appended = [label for label in marks if label["author_id"] is not None]
    assert len(appended) == len(hostile["actions"])
    assert any(label["consensus_mark"] is None for label in appended)
    assert benign["status"] == "succeeded"
    assert_benign_still_runs(service, "proj-host", f"after-{kind}")


def test_a_label_dated_at_the_end_of_time_does_not_fail_the_runs_that_add_labels(service: Service) -> None:
    hostile, benign = attack(service, "end-of-time", createdAt="9999-12-31T23:59:59.999Z")
    assert hostile["status"] == "succeeded" and hostile["attempts"] == 1, hostile["error"]
    assert [a["status"] for a in hostile["actions"]] == ["applied"]
    # The admin's own label on that asset, through the API (was a 500).
    response = service.admin.post(f"{service.url}/v1/projects/proj-host/assets/asset-host-end-of-time/labels",
                                  json={"json_response": {}}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["label"]["createdAt"] == "9999-12-31T23:59:59.999Z"
    service.settle()
    assert_benign_still_runs(service, "proj-host", "after-end-of-time")


def test_a_number_beyond_a_double_is_refused_not_stored_as_infinity(service: Service) -> None:
    hostile, benign = attack(service, "overflowing-number")
    assert (hostile["status"], hostile["outcome"]) == ("failed", "invalid_output")
    assert "1e400 is out of range" in hostile["error"] and hostile["actions"] == []
    asset = service.admin.get(f"{service.url}/v1/projects/proj-host/assets/asset-host-overflowing-number", timeout=30)
    assert asset.json()["jsonMetadata"] == {}
    assert benign["status"] == "succeeded"
    assert_benign_still_runs(service, "proj-host", "after-overflowing-number")


@pytest.mark.parametrize("kind, outcome, words", [
    ("weird-types", "error", "the hook failed; its error is not text"),
    ("actions-not-a-list", "invalid_output", "actions that are not a list"),
])
def test_protocol_messages_with_odd_types_end_their_run_only(service: Service, kind: str, outcome: str,
                                                              words: str) -> None:
    hostile, benign = attack(service, kind)
    assert (hostile["status"], hostile["outcome"], hostile["attempts"]) == ("failed", outcome, 1), hostile["error"]
    assert words in hostile["error"]
    assert benign["status"] == "succeeded"
    assert_benign_still_runs(service, "proj-host", f"after-{kind}")


def test_reads_with_hostile_arguments_are_answered_or_refused_within_the_project(service: Service) -> None:
    hostile, benign = attack(service, "hostile-reads")
    assert hostile["status"] == "succeeded", hostile["error"]
    said = {line["message"].split()[1]: line["message"] for line in hostile["logs"] if line["message"].startswith("read ")}
    # first=10**30 reads every label (SQLite's LIMIT takes 64 bits), skip=2**80 none.
    assert said["huge-first"].split()[-1] == said["count"].split()[-1] and said["huge-skip"].endswith("-> 0")
    assert "first and skip must be positive" in said["negative-skip"] and "must be positive" in said["negative-first"]
    assert "takes a string, not dict" in said["object-filter"]
    # SQL in a filter is a value compared, never SQL run: nothing matches.
    assert said["sql-string"].endswith("-> 0") and said["sql-in"].endswith("-> 0") and said["many-ids"].endswith("-> 0")
    # Fields are projected in the plugin's process: what a field name does there stays there.
    assert "dotted-fields" in said
    assert "ProjectScopeError" in said["other-project"] and "victim-asset" not in said["other-project"]
    assert benign["status"] == "succeeded"
    assert_benign_still_runs(service, "proj-host", "after-hostile-reads")


# Event types and subscriptions -----------------------------------------------------------------

MATCHER = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    event_matcher = ["asset." + "*." * 40 + "z"]

    def on_event(self, event):
        self.logger.info("matched %s", event["event"])
'''


def test_an_event_matcher_with_many_stars_cannot_hang_the_host(service: Service) -> None:
    """Matching was exponential in the stars: this pattern against a 120-name event type
    held the store's write lock (every webhook, every run) for longer than the universe."""
    deploy(service, "matcher", MATCHER, "proj-host")
    for event_id, kind in (("long-type", "asset." + "x." * 120 + "y"), ("matching-type", "asset." + "x." * 45 + "z")):
        event = {"id": event_id, "type": kind, "project_id": "proj-host", "payload": {}}
        assert service.post_event(event).status_code == 202
    runs = runs_of(service, "matching-type")
    assert runs["matcher"]["status"] == "succeeded" and not runs_of(service, "long-type")
    assert_benign_still_runs(service, "proj-host", "after-matcher")


# Webhooks ------------------------------------------------------------------------------------

def webhook(event_id: str, **extra: object) -> dict:
    return {"id": event_id, "type": "onSubmit", "project_id": "proj-host", "asset_id": f"asset-{event_id}",
            "label": {"id": f"label-{event_id}", "jsonResponse": {"ATTACK": "fine"}}, **extra}


#: body -> (status, what is stored or said)
WEBHOOKS = {
    "lone-surrogate": (b'{"id": "wh-surrogate", "type": "onSubmit", "project_id": "proj-host", "asset_id": "asset-wh-s",'
                       b' "label": {"id": "label-wh-s", "jsonResponse": {"TEXT": "a\\ud800b"}}}', 202),
    "priority-overflow": (json.dumps({**webhook("wh-priority"), "context": {"asset": {"id": "asset-wh-priority",
                                                                                        "priority": 10**20}}}).encode(), 422),
    "seconds-overflow": (json.dumps({**webhook("wh-seconds"), "label": {
        "id": "label-wh-seconds", "jsonResponse": {}, "secondsToLabel": 10**30}}).encode(), 202),
    "nan": (b'{"id": "wh-nan", "type": "onSubmit", "project_id": "proj-host", "asset_id": "asset-wh-nan",'
            b' "label": {"id": "label-wh-nan", "jsonResponse": {"x": NaN}}}', 422),
    "double-overflow": (b'{"id": "wh-inf", "type": "onSubmit", "project_id": "proj-host", "asset_id": "asset-wh-inf",'
                        b' "label": {"id": "label-wh-inf", "jsonResponse": {"x": 1e400}}}', 422),
    "metadata-string-nested": (json.dumps({**webhook("wh-deep"), "context": {"asset": {
        "id": "asset-wh-deep", "jsonMetadata": "[" * 100_000 + "]" * 100_000}}}).encode(), 422),
    "unreadable-context-labels": (json.dumps({**webhook("wh-metrics"), "context": {"asset": {
        "id": "asset-wh-metrics", "labels": [{"id": "ctx-1", "authorId": "u1", "labelType": "DEFAULT",
                                              "jsonResponse": {"JOB": {"annotations": 5}}}]}}}).encode(), 202),
    "many-context-authors": (json.dumps({**webhook("wh-authors"), "context": {"asset": {
        "id": "asset-wh-authors", "labels": [{"id": f"ctx-a{n}", "authorId": f"u{n}", "labelType": "DEFAULT",
                                              "jsonResponse": {"J": {"categories": [{"name": "A"}]}}}
                                             for n in range(3_000)]}}}).encode(), 202),
}


@pytest.mark.parametrize("case", sorted(WEBHOOKS))
def test_webhooks_with_values_the_host_cannot_store_are_refused_or_repaired(service: Service, case: str) -> None:
    body, status = WEBHOOKS[case]
    before = service.count("events")
    response = service.post_event(body)
    assert response.status_code == status, response.text[:300]
    assert service.count("events") == before + (status == 202)
    if status == 422:
        assert response.json()["detail"]
    service.settle(120)
    assert_benign_still_runs(service, "proj-host", f"after-webhook-{case}")


def test_a_lone_surrogate_in_a_webhook_is_stored_as_a_replacement_character(service: Service) -> None:
    row = service.runtime.store.read().execute("SELECT json_response FROM labels WHERE id = 'label-wh-s'").fetchone()
    assert row is not None and json.loads(row[0]) == {"TEXT": "a\ufffdb"}


def test_a_fresh_service_still_serves_after_the_attacks(tmp_path, database) -> None:
    """Nothing of the module's attacks depends on the shared service's state: a fresh one
    takes the heaviest webhook and its benign plugin runs."""
    fresh = start_service(tmp_path / "data", "process", database)
    try:
        deploy(fresh, "benign", BENIGN, "proj-host")
        body, status = WEBHOOKS["many-context-authors"]
        assert fresh.post_event(body).status_code == status
        assert_benign_still_runs(fresh, "proj-host", "fresh-after")
    finally:
        stop_service(fresh)


LOADING_READER = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.project_id != "__upload-check__":
            while True:  # refused past the read budget, and asked again: the host answers each
                try:
                    self.kili.count_labels(project_id=self.project_id)
                except Exception:
                    pass

    def on_submit(self, label, asset_id):
        pass
'''


def test_an_init_reading_in_a_loop_is_stopped_at_the_byte_limit_not_the_start_timeout(service: Service) -> None:
    """Reads during __init__ were not counted: refused ones kept the host answering, outside
    the plugin's CPU quota, for the whole start timeout, on every start."""
    deploy(service, "loading-reader", LOADING_READER, "proj-host")
    assert service.post_event(label_event("loading-reader", "proj-host", "fine")).status_code == 202
    runs = runs_of(service, "loading-reader")
    assert (runs["loading-reader"]["status"], runs["loading-reader"]["outcome"]) == ("failed", "error")
    assert "bytes of reads while loading" in runs["loading-reader"]["error"]
    assert runs["benign"]["status"] == "succeeded"
    service.runtime.registry.deactivate("loading-reader", "proj-host")
    assert_benign_still_runs(service, "proj-host", "after-loading-reader")


def test_a_read_whose_answer_would_take_gigabytes_of_the_servers_memory_is_refused(tmp_path, database) -> None:
    """Answers are built and encoded in the server, outside the plugin's memory limit: a plugin
    that filled its project with large labels made each read of it cost the server its size."""
    fresh = start_service(tmp_path / "data", "process", database)
    try:
        deploy(fresh, "attacker", ATTACKER, "proj-fill")
        deploy(fresh, "benign", BENIGN, "proj-fill")
        for number in range(3):
            assert fresh.post_event(label_event(f"fill-{number}", "proj-fill", "fill")).status_code == 202
            assert runs_of(fresh, f"fill-{number}")["attacker"]["status"] == "succeeded"
        assert fresh.post_event(label_event("read-everything", "proj-fill", "read-everything")).status_code == 202
        hostile = runs_of(fresh, "read-everything")["attacker"]
        said = {line["message"].split()[1]: line["message"] for line in hostile["logs"] if line["message"].startswith("read ")}
        assert "ReadLimitExceeded" in said["labels"] and "its answer would be over 16 MB" in said["labels"]
        assert "ReadLimitExceeded" in said["assets"]
        assert said["labels-page"] == "read labels-page -> 5"
        assert_benign_still_runs(fresh, "proj-fill", "after-read-everything")
    finally:
        stop_service(fresh)
