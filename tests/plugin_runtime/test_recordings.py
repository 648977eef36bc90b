"""Recorded events files: one event per line, a bad line reported and the others still read."""

from __future__ import annotations

import json

import pytest

from plugin_runtime.errors import EventsFileError
from plugin_runtime.recordings import Recorded, parse_event, read_events
from plugin_sdk.testing import make_event

GOOD = make_event(id="e-1", asset_id="a-1")


def test_parse_event_returns_the_event_as_written() -> None:
    line = json.dumps({**GOOD, "future_field": {"x": 1}})
    assert parse_event(line) == {**GOOD, "future_field": {"x": 1}}
    assert parse_event(line.encode()) == parse_event(line)


@pytest.mark.parametrize(("text", "message"), [
    (b'{"id": "e-1",', "not valid JSON (Expecting property name enclosed in double quotes at column 14)"),
    (b'{"id": "\xff"}', "not UTF-8 text (invalid start byte at byte 8)"),
    (b"[" * 100_000, "the JSON is nested too deeply"),
    (b'["e-1"]', "an event is a JSON object, not list"),
    (b'"e-1"', "an event is a JSON object, not str"),
    (b'{"id": "e-1", "type": "onSubmit", "project_id": "p"}', "event 'e-1': a onSubmit event needs asset_id"),
    (b'{"id": "e-1", "type": "onSave", "project_id": "p"}', "event 'e-1': unknown event type 'onSave'"),
    (b'{"id": 7, "type": "asset.x", "project_id": "p"}', "id: Input should be a valid string"),
    (b'{"type": "asset.x", "project_id": "p"}', "id: Field required"),
    (b'{"id": "e-1", "type": "asset.x", "project_id": "p", "format": 3}', "event format 3 is newer than this runtime"),
])
def test_a_bad_line_is_refused_with_a_short_reason(text: bytes, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_event(text)
    assert message in str(raised.value)
    assert "pydantic" not in str(raised.value) and "Value error," not in str(raised.value)


def test_read_events_yields_every_non_blank_line_with_its_number(tmp_path, write_events) -> None:
    path = write_events(
        tmp_path / "events.jsonl",
        GOOD, "", "   ", '{"id": "e-2", "type": "onSubmit", "project_id": "p"}', "not json at all",
        make_event("asset.skipped", id="e-4"),
    )
    recorded = list(read_events(path))
    assert [(r.line, r.event_id, r.error is None) for r in recorded] == [
        (1, "e-1", True), (4, "e-2", False), (5, None, False), (6, "e-4", True)]
    assert recorded[0].event == GOOD and recorded[0].raw == json.dumps(GOOD).encode()
    assert recorded[1].error == f"{path}:4: event 'e-2': a onSubmit event needs asset_id"
    assert recorded[1].event == {"id": "e-2"}  # only the id is kept of an invalid event
    assert recorded[2].error.startswith(f"{path}:5: not valid JSON")
    assert recorded[2].event is None


def test_read_events_is_lazy(tmp_path, write_events) -> None:
    path = write_events(tmp_path / "events.jsonl", GOOD, GOOD)
    events = read_events(path)
    first = next(events)
    assert isinstance(first, Recorded) and first.line == 1
    assert [r.line for r in events] == [2]


def test_a_missing_file_is_an_events_file_error(tmp_path) -> None:
    with pytest.raises(EventsFileError, match=r"cannot read events from .*nowhere\.jsonl: No such file or directory"):
        list(read_events(tmp_path / "nowhere.jsonl"))


def test_crlf_line_endings_and_a_missing_final_newline_are_fine(tmp_path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\r\n" + json.dumps({**GOOD, "id": "e-2"}).encode())
    assert [(r.event_id, r.error) for r in read_events(path)] == [("e-1", None), ("e-2", None)]
