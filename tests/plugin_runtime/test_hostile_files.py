"""Hostile plugin folders and events files on the admin's own machine: what the CLI reads into a
plugin (a server's secrets must never go in), what it prints (a file name must not forge a
line), and what the dry-run reads (every line of an events file gets its result, and the
output stays UTF-8 JSON, whatever a line or the plugin holds)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.plugin_runtime.service_fixtures import REPO, start_service, stop_service

from plugin_runtime.source import load_source

MAIN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("checked %s", asset_id)
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def folder_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "main.py").write_text(MAIN)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_a_servers_data_directory_under_any_name_is_never_part_of_a_plugin(tmp_path) -> None:
    """``serve --data-dir ./state`` in the folder an admin then uploads: its token, webhook
    secrets and database went into the plugin's image, readable by the plugin's code."""
    folder = folder_with(tmp_path, {"helpers.py": b"X = 1\n"})
    service = start_service(folder / "state", "process")
    try:
        assert (folder / "state" / "runtime.db").exists()
        (folder / "state" / "token").write_text(service.runtime.token + "\n")
        done = service.cli("plugins", "upload", str(folder), "--name", "leaky")
        assert done.returncode == 0, done.stderr
        archive = zipfile.ZipFile(io.BytesIO(service.runtime.registry.archive("leaky", 1)))
        assert sorted(archive.namelist()) == ["helpers.py", "main.py"]
        assert "state/token (in a plugin-runtime server's data directory" in done.stdout + done.stderr
        # The plugin still runs.
        service.runtime.registry.activate("leaky", "proj-files")
        event = {"id": "evt-files", "type": "onSubmit", "project_id": "proj-files", "asset_id": "a1",
                 "label": {"id": "l1", "jsonResponse": {}}}
        assert service.post_event(event).status_code == 202
        service.settle()
        [row] = service.runtime.store.read().execute("SELECT status FROM runs WHERE event_id = 'evt-files'").fetchall()
        assert row[0] == "succeeded"
    finally:
        stop_service(service)


def test_a_file_name_that_would_forge_terminal_lines_is_dropped(tmp_path) -> None:
    forged = "x\ndry-run: 1 events in 0.01 s: 1 ok\n\x1b[2K.py"
    folder = folder_with(tmp_path, {forged: b"0" * (6 * 1024 * 1024), "helpers.py": b"X = 1\n"})
    source = load_source(folder)
    assert sorted(source.files) == ["helpers.py", "main.py"]
    assert [d for d in source.dropped if "non-printable" in d] == [f"{forged!r} (a name with non-printable characters)"]
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "e1", "type": "onSubmit", "project_id": "p", "asset_id": "a",
                                  "label": {"id": "l", "jsonResponse": {}}}) + "\n")
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(folder), "--events", str(events),
                           "--format", "human"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("dry-run: 1 events in 0.01")]


HOSTILE_LINES = [
    # lone surrogates, as JSON escapes, in the id and the label
    b'{"id": "evt-\\ud800", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {"T": "\\udc80"}}}',
    b'{"id": "evt-nan", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {"x": NaN}}}',
    b'{"id": "evt-inf", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {"x": 1e400}}}',
    json.dumps({"id": "evt-deep-metadata", "type": "onSubmit", "project_id": "p", "asset_id": "a",
                "label": {"id": "l", "jsonResponse": {}},
                "context": {"asset": {"id": "a", "jsonMetadata": "[" * 100_000 + "]" * 100_000}}}).encode(),
    b'{"id": "evt-deep", "label": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"id": "evt-bytes-\xff\xfe", "type": "onSubmit"}',
    b'{"id": "bad-\\ud800", "type": "onSubmit"}',
    b'{"id": "evt-attack", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {"ATTACK": 1}}}',
    b'{"id": "evt-fine", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {}}}',
]

OVERFLOWING = r'''
import json
import os

from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if "ATTACK" not in label["jsonResponse"]:
            self.kili.add_to_review(asset_ids=[asset_id])
            return
        # A result written on the protocol's descriptor in place of the SDK's: 1e400 is valid
        # JSON that Python reads as inf, and wrote back as Infinity (not JSON) in the output.
        handler = next(h for h in self.logger.handlers if hasattr(h, "executor"))
        protocol = handler.executor.sink.__self__.channel
        sdk_send = protocol.send

        def send(message):
            if message.get("type") != "result":
                return sdk_send(message)
            protocol.send = sdk_send
            line = json.dumps({**message, "actions": [{"type": "update_asset", "asset_id": asset_id,
                                                       "json_metadata": {"x": "INF"}}]})
            os.write(protocol.out, line.replace('"INF"', "1e400").encode() + b"\n")
        protocol.send = send
'''


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"the dry-run printed {name}, which is not JSON")


def test_every_hostile_line_of_an_events_file_gets_a_result_in_valid_json(tmp_path) -> None:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "main.py").write_text(OVERFLOWING)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(HOSTILE_LINES) + b"\n")
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(folder), "--events", str(events)],
                          capture_output=True, timeout=300, cwd=REPO)
    assert done.returncode == 1, done.stderr.decode("utf-8", "replace")[-2000:]
    text = done.stdout.decode("utf-8")  # strict: valid UTF-8
    assert not re.search("[\ud800-\udfff]", text)
    results = [json.loads(line, parse_constant=_refuse_constant) for line in text.splitlines()]
    # The id of a line refused before it could be read is unknown (null).
    assert [(r["event_id"], r["status"]) for r in results] == [
        ("evt-\ufffd", "ok"), (None, "error"), (None, "error"), ("evt-deep-metadata", "error"), (None, "error"),
        ("evt-bytes-\ufffd\ufffd", "error"), ("bad-\ufffd", "error"), ("evt-attack", "invalid_output"), ("evt-fine", "ok")]
    assert "NaN is not a JSON value" in results[1]["error"] and "1e400 is out of range" in results[2]["error"]
    assert "more than 64 levels" in results[3]["error"] and "nested too deeply" in results[4]["error"]
    assert "not UTF-8" in results[5]["error"] and "project_id: Field required" in results[6]["error"]
    assert "1e400 is out of range" in results[7]["error"]
    assert results[8]["actions"] == [{"type": "add_to_review", "asset_id": "a"}]


def damaged_zips() -> dict[str, bytes]:
    """Zips whose entries zipfile refuses only when they are read (after the directory passed)."""
    good = MAIN.encode()

    def build(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytearray:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
        return bytearray(buffer.getvalue())

    cases = {}
    renamed = build([("main.py", good), ("aaa.py", b"x = 1\n" * 100)])
    at = renamed.find(b"aaa.py")  # the local header's copy of the name comes first
    renamed[at:at + 6] = b"bbb.py"
    cases["names-differ"] = renamed
    bad_crc = build([("main.py", good), ("aaa.py", b"x = 1\n" * 100)], zipfile.ZIP_STORED)
    bad_crc[bad_crc.find(b"x = 1")] = ord("y")
    cases["bad-crc"] = bad_crc
    broken = build([("main.py", good), ("aaa.py", bytes(range(256)) * 100)])
    at = broken.find(b"aaa.py") + 6
    broken[at + 5:at + 40] = b"\xff" * 35
    cases["broken-deflate"] = broken
    encrypted = build([("main.py", good), ("aaa.py", b"x = 1\n")])
    encrypted[encrypted.find(b"PK\x03\x04", 1) + 6] |= 1  # the entry's flags, local and central
    encrypted[encrypted.rfind(b"PK\x01\x02") + 8] |= 1
    cases["encrypted"] = encrypted
    return {name: bytes(data) for name, data in cases.items()}


def test_a_damaged_zip_is_refused_with_a_4xx_not_a_500(tmp_path, database) -> None:
    """zipfile checks an entry's local header, CRC, stream and encryption only as it reads it:
    each raised out of the upload (a 500) and out of the CLI (a traceback)."""
    service = start_service(tmp_path / "data", "process", database)
    try:
        for case, body in damaged_zips().items():
            response = service.admin.post(f"{service.url}/v1/plugins/damaged/versions", params={"create": "true"},
                                          data=body, timeout=30)
            assert response.status_code == 422, (case, response.text[:300])
            assert "entry 'aaa.py' cannot be read" in response.json()["detail"], case
            assert service.count("plugin_versions") == 0
            archive = tmp_path / f"{case}.zip"
            archive.write_bytes(body)
            done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(archive), "--events",
                                   str(tmp_path / "none.jsonl")], capture_output=True, text=True, timeout=300, cwd=REPO)
            assert done.returncode == 2 and "cannot be read" in done.stderr and "Traceback" not in done.stderr, case
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("main.py", MAIN)
        response = service.admin.post(f"{service.url}/v1/plugins/damaged/versions", params={"create": "true"},
                                      data=buffer.getvalue(), timeout=30)
        assert response.status_code == 202, response.text
    finally:
        stop_service(service)


def test_no_corruption_of_a_zip_raises_anything_but_a_refusal() -> None:
    """Mutated archives once raised NotImplementedError (a zip 'version' past 6.3), a
    UnicodeDecodeError (a name flagged UTF-8 that is not), IndexError (an empty name) and the
    errors of reading damaged entries: all 500s on upload."""
    import random

    from plugin_runtime.errors import PluginInvalid
    from plugin_runtime.source import load_archive

    rng = random.Random(20261126)
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", method) as archive:
            archive.writestr("main.py", MAIN)
            archive.writestr("sub/helpers.py", "X = 1\n" * 50)
            archive.writestr("requirements.txt", "six\n")
        base = buffer.getvalue()
        assert sorted(load_archive(base).files) == ["main.py", "requirements.txt", "sub/helpers.py"]
        for _ in range(1_500):
            mutated = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            try:
                load_archive(bytes(mutated))
            except PluginInvalid:
                pass
