"""Hostile input against the service: each refused with a 4xx and a message, nothing stored,
never a 5xx. Uploads, webhooks, the admin API, and actions a plugin should not produce."""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import sys
import zipfile

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

GOOD_MAIN = b"from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n    def on_submit(self, label, asset_id):\n        pass\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database):
    running = start_service(tmp_path_factory.mktemp("hostile"), "process", database)
    yield running
    stop_service(running)


def make_zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def upload(service: Service, body: bytes, name: str = "hostile") -> requests.Response:
    return service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": "true"}, data=body, timeout=30)


UPLOADS = {
    "dot-dot": (make_zip([("main.py", GOOD_MAIN, None), ("../evil.py", b"x=1", None)]), "climbs out"),
    "absolute": (make_zip([("main.py", GOOD_MAIN, None), ("/etc/evil.py", b"x=1", None)]), "absolute path"),
    "symlink": (make_zip([("main.py", GOOD_MAIN, None), ("link.py", b"/etc/passwd", stat.S_IFLNK | 0o777)]),
                "not a regular file"),
    "device": (make_zip([("main.py", GOOD_MAIN, None), ("dev.py", b"", stat.S_IFCHR | 0o666)]), "not a regular file"),
    "zip-bomb": (make_zip([("main.py", GOOD_MAIN, None), ("data.txt", b"0" * 30_000_000, None)]), "expand"),
    "not-a-zip": (b"this is not a zip archive", "not a valid zip"),
    "syntax": (make_zip([("main.py", b"from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore)\n", None)]),
               "SyntaxError"),
    "no-handler": (make_zip([("main.py", b"x = 1\n", None)]), "no PluginHandler"),
    "no-hook": (make_zip([("main.py", b"from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n    pass\n", None)]),
                "no hook"),
    "no-main": (make_zip([("helper.py", b"x = 1\n", None)]), "no main.py"),
    "index-url": (make_zip([("main.py", GOOD_MAIN, None), ("requirements.txt", b"--index-url http://evil/simple\nsix\n", None)]),
                  "requirements.txt:1"),
    "editable-git": (make_zip([("main.py", GOOD_MAIN, None), ("requirements.txt", b"six\n-e git+https://evil/x.git#egg=x\n", None)]),
                     "requirements.txt:2"),
    "local-path": (make_zip([("main.py", GOOD_MAIN, None), ("requirements.txt", b"./wheels/evil.whl\n", None)]),
                   "URL or a path"),
    "url-reference": (make_zip([("main.py", GOOD_MAIN, None), ("requirements.txt", b"evil @ https://evil/evil.whl\n", None)]),
                      "URL or a path"),
    "non-utf8-main": (make_zip([("main.py", b"x = '\xff\xfe'\n", None)]), "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_hostile_uploads_are_refused_and_nothing_is_stored(service: Service, case: str) -> None:
    body, message = UPLOADS[case]
    before = (service.count("plugins"), service.count("plugin_versions"))
    response = upload(service, body)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["detail"]
    assert (service.count("plugins"), service.count("plugin_versions")) == before


def test_a_non_utf8_entry_name_is_refused(service: Service) -> None:
    raw = bytearray(make_zip([("main.py", GOOD_MAIN, None), ("evil\x01.py", b"x=1", None)]))
    response = upload(service, bytes(raw))
    assert response.status_code == 422 and "non-printable" in response.json()["detail"]


def test_a_name_that_is_not_utf8_is_refused(service: Service) -> None:
    # An old archiver's name: cp437/latin bytes without the UTF-8 flag (same length as ASCII).
    raw = make_zip([("main.py", GOOD_MAIN, None), ("cafX.py", b"x=1", None)]).replace(b"cafX", b"caf\x82")
    assert "caf\u00e9.py" in zipfile.ZipFile(io.BytesIO(raw)).namelist()
    response = upload(service, raw)
    assert response.status_code == 422, response.text
    assert "not UTF-8" in response.json()["detail"]


def test_an_oversized_upload_is_refused_before_it_is_read(service: Service) -> None:
    response = upload(service, b"0" * (21 * 1024 * 1024))
    assert response.status_code == 413


def test_invalid_plugin_names_are_refused(service: Service) -> None:
    body = make_zip([("main.py", GOOD_MAIN, None)])
    bad = ("UPPER", "-dash", "a" * 64, "sp ace")
    for name in bad:
        response = upload(service, body, name)
        assert response.status_code in (400, 404, 422), (name, response.text)
    stored = {row[0] for row in service.runtime.store.read().execute("SELECT name FROM plugins")}
    assert not stored & set(bad)


WEBHOOKS = {
    "oversized": (b'{"id": "big", "type": "onSubmit", "project_id": "p", "pad": "' + b"x" * 3_000_000 + b'"}', 413),
    "deeply-nested": (b'{"id": "deep", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": '
                      + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}}", 422),
    "wrong-types": (json.dumps({"id": 5, "type": ["onSubmit"], "project_id": None}).encode(), 422),
    "unknown-type": (json.dumps({"id": "u", "type": "onDelete", "project_id": "p"}).encode(), 422),
    "label-not-object": (json.dumps({"id": "l", "type": "onSubmit", "project_id": "p", "asset_id": "a",
                                     "label": "label-1"}).encode(), 422),
    "binary": (b"\xff\xfe\x00garbage", 422),
}


@pytest.mark.parametrize("case", sorted(WEBHOOKS))
def test_hostile_webhooks_are_refused_and_nothing_is_stored(service: Service, case: str) -> None:
    body, status = WEBHOOKS[case]
    before = service.count("events")
    response = service.post_event(body)
    assert response.status_code == status, response.text[:300]
    assert response.json()["detail"]
    assert service.count("events") == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20) | st.integers()},
    optional={"type": st.sampled_from(["onSubmit", "onReview", "onSendBackToQueue", "asset.skipped", "bad"]) | json_values,
              "project_id": st.text(max_size=10) | json_values, "asset_id": st.text(max_size=10) | json_values,
              "label": json_values | st.fixed_dictionaries({"id": st.text(max_size=5), "jsonResponse": json_values}),
              "context": json_values, "payload": json_values},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=event_like | json_values)
def test_fuzzed_signed_webhooks_never_get_a_5xx(service: Service, body) -> None:
    response = service.post_event(json.dumps(body).encode())
    assert response.status_code < 500, response.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/v1/plugins/{x}", "/v1/plugins/{x}/versions/{x}", "/v1/runs/{x}", "/v1/projects/{x}",
                             "/v1/projects/{x}/assets/{x}", "/v1/plugins/{x}/build-log", "/v1/logs?after={x}",
                             "/v1/events?project_id={x}", "/v1/runs?limit={x}"]),
       value=st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"), min_size=1, max_size=12),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       body=json_values)
def test_fuzzed_admin_requests_never_get_a_5xx(service: Service, path: str, value: str, method: str, body) -> None:
    response = service.admin.request(method, service.url + path.replace("{x}", value), json=body, timeout=30)
    assert response.status_code < 500, (method, path, value, response.text[:300])


ATTACKER = b'''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        attack = label["jsonResponse"]["ATTACK"]
        if attack == "other-project":
            return [{"type": "send_back_to_queue", "asset_id": "victim-asset"},
                    {"type": "add_to_review", "asset_id": asset_id}]
        if attack == "other-label":
            return [{"type": "create_issue", "asset_id": asset_id, "label_id": "victim-label", "text": "x"}]
        if attack == "flood":
            return [{"type": "add_to_review", "asset_id": asset_id}] * 5000
        if attack == "big-metadata":
            return [{"type": "update_asset", "asset_id": asset_id, "json_metadata": {"x": "y" * 200_000}}]
        if attack == "invalid":
            return [{"type": "drop_database", "asset_id": asset_id}]
        if attack == "missing-asset":
            return [{"type": "add_to_review", "asset_id": "nowhere"}]
        return [{"type": "add_to_review", "asset_id": asset_id}]
'''


@pytest.fixture(scope="module")
def attacker(service: Service) -> Service:
    response = upload(service, make_zip([("main.py", ATTACKER, None)]), "attacker")
    assert response.status_code == 202, response.text
    assert service.runtime.registry.wait("attacker", 1, 60)["status"] == "active"
    service.runtime.registry.activate("attacker", "proj-attacker")
    victim = {"id": "victim-event", "type": "onSubmit", "project_id": "proj-victim", "asset_id": "victim-asset",
              "label": {"id": "victim-label", "jsonResponse": {}}}
    assert service.post_event(victim).status_code == 202
    return service


def attack(service: Service, kind: str) -> dict:
    event = {"id": f"attack-{kind}", "type": "onSubmit", "project_id": "proj-attacker", "asset_id": f"asset-{kind}",
             "label": {"id": f"label-{kind}", "jsonResponse": {"ATTACK": kind}}}
    assert service.post_event(event).status_code == 202
    service.settle()
    [run] = [r for r in service.runtime.dispatcher.store.read().execute(
        "SELECT id FROM runs WHERE event_id = ?", (event["id"],))]
    return service.admin.get(f"{service.url}/v1/runs/{run[0]}", timeout=30).json()


def victim_state(service: Service) -> tuple:
    db = service.runtime.store.read()
    asset = db.execute("SELECT status, json_metadata FROM assets WHERE id = 'victim-asset'").fetchone()
    issues = db.execute("SELECT COUNT(*) FROM issues WHERE asset_id = 'victim-asset'").fetchone()[0]
    return tuple(asset), issues


@pytest.mark.parametrize("kind, status, outcome, reason", [
    ("other-project", "succeeded", None, "belongs to another project"),
    ("other-label", "succeeded", None, "belongs to another asset"),
    ("missing-asset", "succeeded", None, "does not exist"),
    ("big-metadata", "succeeded", None, "over the limit"),
    ("flood", "failed", "output_limit", None),
    ("invalid", "failed", "invalid_output", None),
])
def test_hostile_actions_are_rejected_and_recorded(attacker: Service, kind: str, status: str, outcome, reason) -> None:
    before = victim_state(attacker)
    run = attack(attacker, kind)
    assert run["status"] == status and run["outcome"] == outcome, run
    if reason:
        rejected = [a for a in run["actions"] if a["status"] == "rejected"]
        assert rejected and reason in rejected[0]["reason"]
    else:
        assert run["actions"] == [] and run["error"]
    assert victim_state(attacker) == before
    # The next run of the same plugin still applies its valid actions.
    fine = attack(attacker, f"fine-after-{kind}")
    assert fine["status"] == "succeeded" and [a["status"] for a in fine["actions"]] == ["applied"]


# Plugins writing on the protocol's descriptor -------------------------------------------------
# A plugin reaches the protocol's channel through the SDK's objects (its logger's handler), so
# whatever the SDK would never send, a plugin can: each message below once stalled its lane
# (and then, the queue full, its project) or stored megabytes for one run.

PROTOCOL_ATTACKER = r'''
import json
import os

from plugin_sdk import PluginCore


def channel(plugin):
    handler = next(h for h in plugin.logger.handlers if hasattr(h, "executor"))
    return handler.executor.sink.__self__.channel


def line(message):
    return json.dumps(message).encode() + b"\n"


def encoder(plugin, protocol):
    """The channel's send, encoding as the current event's attack says (until its result)."""
    sdk_send = protocol.send

    def send(message):
        if plugin.attack == "surrogates-escaped":  # valid JSON holding "\ud800" escapes
            os.write(protocol.out, line(message))
        elif plugin.attack == "surrogates-raw":  # a surrogate's bytes, not UTF-8 (the SDK's old encoding)
            os.write(protocol.out, json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
        else:
            sdk_send(message)
    return send


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        attack = self.attack = label["jsonResponse"]["ATTACK"]
        protocol = channel(self)
        if not hasattr(self, "patched"):
            self.patched = protocol.send = encoder(self, protocol)
        if attack == "deep-nesting":
            os.write(protocol.out, b'{"type":"log","level":"INFO","message":' + b"[" * 100000 + b"]" * 100000 + b"}\n")
        elif attack == "forged-level":
            for _ in range(42):
                os.write(protocol.out, line({"type": "log", "level": "X" * 1_000_000, "message": "", "source": "logger"}))
        elif attack == "padded-log":
            for _ in range(42):
                os.write(protocol.out, line({"type": "log", "level": "INFO", "message": "x", "pad": "y" * 300_000}))
        elif attack == "huge-priority":
            self.kili.update_properties_in_assets(asset_ids=[asset_id], priorities=[10**20])
        elif attack == "nan-metadata":
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"score": float("nan")}])
        elif attack == "control-characters":
            print("\x1b[2J\x1b[1;1H\x1b]0;pwned\x07OK\r\x00done")
        elif attack == "long-line":
            print("z" * 900_000)
        elif attack == "over-the-cap":
            print("z" * 3_000_000)
        elif attack.startswith("surrogates"):
            self.logger.info("log \ud800 line")
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=["issue \udc80 text"])
            return
        self.kili.add_to_review(asset_ids=[asset_id])
'''

BENIGN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("benign checked %s", asset_id)
        self.kili.send_back_to_queue(asset_ids=[asset_id])
'''

#: attack -> (the attacker's run status, outcome, words of its error); None: no error.
PROTOCOL_ATTACKS = {
    "deep-nesting": ("failed", "invalid_output", "more than 64 levels deep"),
    "forged-level": ("failed", "invalid_output", "unknown level 'XXXX"),
    "padded-log": ("failed", "output_limit", "every byte of its log and read messages counts"),
    "huge-priority": ("failed", "invalid_output", "priority: Input should be less than or equal to 2147483647"),
    "nan-metadata": ("failed", "invalid_output", "NaN is not a JSON value"),
    "surrogates-sdk": ("succeeded", None, None),
    "surrogates-escaped": ("succeeded", None, None),
    "surrogates-raw": ("succeeded", None, None),
}


def deploy_protocol_plugins(service: Service, project_id: str) -> None:
    for name, code in (("protocol-attacker", PROTOCOL_ATTACKER), ("benign", BENIGN)):
        response = upload(service, make_zip([("main.py", code.encode(), None)]), name)
        assert response.status_code == 202, response.text
        assert service.runtime.registry.wait(name, 1, 600)["status"] == "active"
        service.runtime.registry.activate(name, project_id)


def runs_of(service: Service, project_id: str, event_id: str, attack: str) -> dict[str, dict]:
    """Send one event to both plugins, wait for its runs to end, return them by plugin."""
    event = {"id": event_id, "type": "onSubmit", "project_id": project_id, "asset_id": f"asset-{event_id}",
             "label": {"id": f"label-{event_id}", "jsonResponse": {"ATTACK": attack}}}
    assert service.post_event(event).status_code == 202
    service.settle(120)
    rows = service.runtime.store.read().execute("SELECT id, plugin FROM runs WHERE event_id = ?", (event_id,))
    return {row["plugin"]: service.admin.get(f"{service.url}/v1/runs/{row['id']}", timeout=30).json()
            for row in rows}


def assert_protocol_attack_contained(service: Service, project_id: str, attack: str) -> None:
    status, outcome, words = PROTOCOL_ATTACKS[attack]
    runs = runs_of(service, project_id, f"{project_id}-{attack}", attack)
    hostile, benign = runs["protocol-attacker"], runs["benign"]
    assert (hostile["status"], hostile["outcome"]) == (status, outcome), hostile["error"]
    if words is None:
        assert hostile["error"] is None
    else:
        assert words in hostile["error"] and hostile["actions"] == []
    # Nothing huge is stored, whatever the plugin sent.
    stored = service.runtime.store.read().execute(
        "SELECT COALESCE(SUM(LENGTH(level) + LENGTH(message) + LENGTH(source)), 0) FROM run_logs WHERE run_id = ?",
        (hostile["id"],)).fetchone()[0]
    assert stored < 4096, stored
    # The benign plugin ran on the same event; both run the next events of the project.
    assert benign["status"] == "succeeded" and [a["status"] for a in benign["actions"]] == ["applied"]
    after = runs_of(service, project_id, f"{project_id}-after-{attack}", "fine")
    assert {plugin: run["status"] for plugin, run in after.items()} == {
        "protocol-attacker": "succeeded", "benign": "succeeded"}
    assert [a["action"]["type"] for a in after["protocol-attacker"]["actions"]] == ["add_to_review"]


def assert_surrogates_replaced(service: Service, project_id: str, attack: str) -> None:
    [run] = [r for r in runs_of(service, project_id, f"{project_id}-{attack}-again", attack).values()
             if r["plugin"] == "protocol-attacker"]
    # One U+FFFD per surrogate, or per byte of one that arrived as bytes (not UTF-8).
    assert [re.sub("\ufffd+", "?", log["message"]) for log in run["logs"]] == ["log ? line"]
    [issue] = service.runtime.store.read().execute(
        "SELECT text FROM issues WHERE asset_id = ?", (f"asset-{project_id}-{attack}-again",)).fetchall()
    assert re.sub("\ufffd+", "?", issue[0]) == "issue ? text"


@pytest.fixture(scope="module")
def protocol_project(service: Service) -> str:
    deploy_protocol_plugins(service, "proj-protocol")
    return "proj-protocol"


@pytest.mark.parametrize("attack", sorted(PROTOCOL_ATTACKS))
def test_protocol_attacks_end_their_run_and_the_project_goes_on(service: Service, protocol_project: str,
                                                                 attack: str) -> None:
    assert_protocol_attack_contained(service, protocol_project, attack)
    if attack.startswith("surrogates"):
        assert_surrogates_replaced(service, protocol_project, attack)


@pytest.mark.docker
def test_protocol_attacks_are_contained_in_the_docker_sandbox(tmp_path_factory: pytest.TempPathFactory) -> None:
    docker = start_service(tmp_path_factory.mktemp("hostile-docker"), "docker")
    try:
        deploy_protocol_plugins(docker, "proj-protocol-docker")
        for attack in sorted(PROTOCOL_ATTACKS):
            assert_protocol_attack_contained(docker, "proj-protocol-docker", attack)
        assert_surrogates_replaced(docker, "proj-protocol-docker", "surrogates-raw")
    finally:
        stop_service(docker)


#: The dry-run's status for each event of the attacker (what it prints or sends).
DRY_RUN_STATUSES = {
    **{attack: "ok" if status == "succeeded" else outcome for attack, (status, outcome, _) in PROTOCOL_ATTACKS.items()},
    "control-characters": "ok", "long-line": "ok", "over-the-cap": "output_limit", "fine": "ok",
}


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"the dry-run printed {name}, which is not JSON")


@pytest.mark.parametrize("output", ["json", "human"])
def test_the_dry_run_prints_a_result_for_every_hostile_event(tmp_path, write_plugin, write_events,
                                                              output: str) -> None:
    from plugin_sdk.testing import make_event

    plugin = write_plugin(tmp_path, PROTOCOL_ATTACKER)
    attacks = [*sorted(DRY_RUN_STATUSES), "fine"]
    events = write_events(tmp_path / "events.jsonl", *(
        make_event(id=f"evt-{n}-{attack}", asset_id=f"asset-{n}", json_response={"ATTACK": attack})
        for n, attack in enumerate(attacks)))
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events", str(events),
                           "--format", output, "--timeout", "20"], capture_output=True, timeout=300)
    assert done.returncode == 1, done.stderr.decode("utf-8", "replace")[-2000:]
    text = done.stdout.decode("utf-8")  # strict: the output is valid UTF-8
    if output == "human":
        heads = [line.split()[0] for line in text.splitlines() if line.startswith("evt-")]
        assert heads == [f"evt-{n}-{attack}" for n, attack in enumerate(attacks)]
        return
    results = [json.loads(line, parse_constant=_refuse_constant) for line in text.splitlines()]
    assert [(r["event_id"], r["status"]) for r in results] == [
        (f"evt-{n}-{attack}", DRY_RUN_STATUSES[attack]) for n, attack in enumerate(attacks)]
    by_attack = dict(zip(attacks, results))
    # What a plugin prints is kept exactly in JSON (escaped there), long lines included.
    assert [log["message"] for log in by_attack["control-characters"]["logs"]] == [
        "\x1b[2J\x1b[1;1H\x1b]0;pwned\x07OK\r\x00done"]
    assert "".join(log["message"] for log in by_attack["long-line"]["logs"]) == "z" * 900_000
    assert "more than 64 levels deep" in by_attack["deep-nesting"]["error"]
    assert not re.search("[\ud800-\udfff]", text)


def test_a_two_plugin_storm_stays_within_its_root_budget(service: Service) -> None:
    """Two plugins sending the asset back ten times (and ten other assets once each) on every
    event they see grew one webhook into 2,222 runs; its chain now stops at the root's budget."""
    from tests.plugin_runtime.test_budgets import BENIGN, STORM, assert_benign_still_runs, make_project, post, run_rows, show

    budget = service.runtime.settings.max_caused_runs
    make_project(service, "proj-storm", 10)
    for name in ("storm-a", "storm-b"):
        service.deploy(name, STORM.replace("FAN", "10"), "proj-storm")
    service.deploy("storm-benign", BENIGN, "proj-storm")
    post(service, "evt-storm", "proj-storm", "proj-storm-asset-0")
    service.settle(120)
    root = service.runtime.store.read().execute("SELECT * FROM events WHERE id = 'evt-storm'").fetchone()
    # Every caused event has one run (the other plugin's): the budget of runs is what stops it.
    assert root["caused_runs"] == budget and root["caused_events"] == budget and root["dropped_events"] > 0
    assert "PLUGIN_RUNTIME_MAX_CAUSED_RUNS" in root["budget_exceeded"]
    runs = run_rows(service, "root_id = 'evt-storm'")
    assert len(runs) == 2 + budget and {r["status"] for r in runs} == {"succeeded"}
    stopper = next(r for r in runs if json.loads(r["metrics"]).get("caused", {}).get("dropped_events"))
    detail = show(service, stopper["id"])
    assert detail["root"]["budget_exceeded"] == root["budget_exceeded"]
    assert any("event budget of root event 'evt-storm' spent" in line["message"] for line in detail["logs"])
    assert_benign_still_runs(service, "proj-storm", "evt-storm-after", "storm-benign")


READ_LOOP = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        while True:
            self.kili.labels(project_id=self.project_id)
'''


def test_a_read_loop_is_refused_at_its_limit_and_the_server_stays_responsive(service: Service) -> None:
    import threading

    from tests.plugin_runtime.test_budgets import BENIGN, assert_benign_still_runs, make_project, post, run_rows, show

    limit = service.runtime.settings.max_reads_per_event
    make_project(service, "proj-loop", 3)
    service.deploy("loop-reader", READ_LOOP, "proj-loop")
    service.deploy("loop-benign", BENIGN, "proj-loop")
    answers: list[object] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                answers.append(requests.get(f"{service.url}/healthz", timeout=10).status_code)
            except requests.RequestException as error:
                answers.append(repr(error))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        post(service, "evt-loop", "proj-loop", "proj-loop-asset-0")
        service.settle(120)
    finally:
        stop.set()
        poller.join()
    assert answers and set(answers) == {200}
    [run] = run_rows(service, "event_id = 'evt-loop'")
    assert run["status"] == "failed" and run["outcome"] == "error"
    assert "ReadLimitExceeded" in run["error"] and f"reached the limit of {limit} calls" in run["error"]
    detail = show(service, run["id"])
    assert detail["metrics"]["reads"]["calls"] == limit and detail["metrics"]["reads"]["refused"] == 1
    assert any(line["source"] == "runtime" and "1 read(s) refused" in line["message"] for line in detail["logs"])
    assert_benign_still_runs(service, "proj-loop", "evt-loop-after", "loop-benign")
