"""Text from plugins, made safe to print on an admin's terminal.

A plugin controls its logs, its errors, its issue texts and the metadata it writes. Printed
raw, their control characters drive the terminal: cursor moves and erase-line rewrite what
was printed before (a fake "OK"), a carriage return overwrites a line, OSC sequences change
the window title or write to the clipboard, bidi overrides show text in another order than it
reads. Every human view of the CLI and the dry-run passes such text through ``escape``, which
shows those characters as visible escapes (``\\x1b``, ``\\u202e``); JSON output keeps them
exactly.
"""

from __future__ import annotations

# C0 controls but tab (it only moves right) and newline (which blocks keep), DEL, C1 controls
# (0x9b is a one-byte CSI to some terminals), the bidi embeddings, overrides and isolates
# (Trojan Source, CVE-2021-42574), and lone surrogates, which no terminal encoding can print
# (printing would raise instead).
_CONTROLS = [
    *(c for c in range(0x20) if c not in (0x09, 0x0A)),
    0x7F,
    *range(0x80, 0xA0),
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),
]
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _table(codes: list[int]) -> dict[int, str]:
    return {c: _NAMED.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in codes}


_BLOCK = _table(_CONTROLS)
_LINE = _table([*_CONTROLS, 0x09, 0x0A])


def escape(text: str, multiline: bool = False) -> str:
    """``text`` with every character that could drive a terminal shown as a visible escape
    (``\\x1b``, ``\\r``, ``\\u202e``). With ``multiline`` newlines and tabs are kept (a block
    the caller indents); else they are escaped too, so the text stays on one line."""
    return text.translate(_BLOCK if multiline else _LINE)
