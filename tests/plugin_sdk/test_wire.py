"""The protocol's encoding, and the host's defensive reading of what a plugin writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import _wire
from plugin_sdk._wire import MAX_DEPTH, UntrustedJSONError, decode_untrusted, loads_untrusted, nests_deeper


def nested(depth: int, inner: str = "1") -> bytes:
    """``depth`` levels, alternating objects and arrays."""
    opening = "".join('{"k": ' if level % 2 else "[" for level in reversed(range(depth)))
    closing = "".join("}" if level % 2 else ", 2]" for level in range(depth))
    return (opening + inner + closing).encode()


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@pytest.mark.parametrize("depth", [0, 1, MAX_DEPTH - 1, MAX_DEPTH])
def test_nesting_up_to_the_limit_is_read(depth: int) -> None:
    assert not nests_deeper(nested(depth))
    assert depth_of(loads_untrusted(nested(depth))) == depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 200_000])
def test_nesting_past_the_limit_is_refused_before_parsing(depth: int) -> None:
    assert nests_deeper(nested(depth))
    with pytest.raises(UntrustedJSONError, match=f"more than {MAX_DEPTH} levels deep"):
        loads_untrusted(nested(depth))


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"message": "[" * 10_000 + '\\"{' * 500, "escaped": "\"[[[[", "list": [["x"]]}).encode()
    assert not nests_deeper(text)
    assert loads_untrusted(text)["message"].startswith("[[[")


def test_unclosed_brackets_past_the_limit_are_refused() -> None:
    # The parser would recurse into each before finding the text ends.
    with pytest.raises(UntrustedJSONError):
        loads_untrusted(b"[" * 100_000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_the_scan_agrees_with_the_depth_of_any_value(value) -> None:
    data = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert nests_deeper(data, limit=3) == (depth_of(value) > 3)


def test_lone_surrogates_become_replacement_characters_however_they_arrive() -> None:
    escaped = b'{"type": "log", "message": "a \\ud800 b", "\\udc80": ["\\ud83d\\ude00"]}'
    assert loads_untrusted(escaped) == {"type": "log", "message": "a \ufffd b", "\ufffd": ["\U0001F600"]}
    raw = '{"message": "a \ud800 b"}'.encode("utf-8", "surrogatepass")  # not UTF-8
    assert loads_untrusted(raw)["message"].replace("\ufffd", "?") == "a ??? b"
    assert _wire.encode({"message": "a \udc80 b"}) == '{"message":"a \ufffd b"}\n'.encode()


@pytest.mark.parametrize(("data", "reason"), [
    (b"[1, NaN]", "NaN is not a JSON value"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
    (b"9" * 5000, "it is not JSON"),
    (b"\xff\xfe{", "it is not JSON"),
])
def test_values_json_cannot_carry_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(UntrustedJSONError, match=reason):
        loads_untrusted(data)


@pytest.mark.parametrize("line", [b"[]", b'"log"', b'{"type": 1}', b"{}"])
def test_a_message_is_an_object_with_a_string_type(line: bytes) -> None:
    with pytest.raises(UntrustedJSONError, match="string 'type'"):
        decode_untrusted(line)
