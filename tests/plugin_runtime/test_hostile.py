"""Hostile input against the service: each refused with a 4xx and a message, nothing stored,
never a 5xx. Uploads, webhooks, the admin API, and actions a plugin should not produce."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

GOOD_MAIN = b"from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n    def on_submit(self, label, asset_id):\n        pass\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    running = start_service(tmp_path_factory.mktemp("hostile"), "process")
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
