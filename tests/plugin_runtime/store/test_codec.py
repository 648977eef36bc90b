"""The store's JSON (orjson where it writes events) writes what ``json`` did: the same values,
long integers included, and ``json`` itself for what orjson refuses."""

from __future__ import annotations

import json
import math

import pytest

from plugin_runtime.sandbox.channel import _encode
from plugin_runtime.store.codec import dumps, dumps_data, loads
from plugin_sdk import _wire

TEXTS = [
    '{"id": "e-1", "label": {"jsonResponse": {"A": {"categories": [{"name": "é"}]}}}, "n": -0.0}',
    '{"big": 1000000000000000000000000000000, "u64": 18446744073709551615, "i": -9223372036854775808}',
    '[1e-07, 1.5e+16, 0.1, 123456789.123, 1e308]',
    '{"a": 1, "a": 2}',
    '"\\ud800 lone"',
    '[NaN, Infinity, -Infinity]',
    '{"0.1234567890123456789": 0.1234567890123456789}',
]


@pytest.mark.parametrize("text", TEXTS)
def test_loads_reads_the_values_json_reads(text: str) -> None:
    expected, read = json.loads(text), loads(text)
    assert json.dumps(read) == json.dumps(expected)  # NaN compares unequal: compared as text
    assert type(read) is type(expected)


def test_loads_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError):
        loads('{"a": ')
    assert loads(None, {}) == {}


@pytest.mark.parametrize("value", [
    {"id": "e-1", "label": {"jsonResponse": {"A": [1, 2.5, None, True, "é"]}}, "context": {"asset": {"labels": []}}},
    {"big": 10**30, "small": -(10**25)},
    {1: "int key", "x": [1e-7, 1.5e16]},
])
def test_dumps_data_writes_what_json_reads_back_the_same(value: object) -> None:
    assert json.loads(dumps_data(value)) == json.loads(dumps(value))
    assert dumps_data({"plain": [1, "a", None]}) == dumps({"plain": [1, "a", None]})  # byte for byte


def test_the_wire_encoding_of_events_is_read_by_the_child_as_before() -> None:
    message = {"type": "events", "events": [{"id": "e-1", "n": 10**30, "s": "é"}]}
    assert _encode(message).endswith(b"\n")
    assert json.loads(_encode(message)) == json.loads(_wire.encode(message))
    surrogate = {"type": "event", "event": {"id": "\ud800"}}  # orjson refuses: the protocol's own encoding
    assert _encode(surrogate) == _wire.encode(surrogate)
    assert math.isnan(loads("NaN"))
