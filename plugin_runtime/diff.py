"""``plugin-runtime diff``: two versions of a plugin over the same recorded events, compared
action by action, before one of them goes live.

Each side runs in its own sandbox exactly as the dry-run runs a plugin (``dryrun.open_sandbox``,
events read by ``recordings.read_events``), both on each event at once. One JSON line per event
says whether they did the same (``compare``, which the shadow report uses too); the summary
(events compared, differing, by action type) goes to stderr. Exit code 0 when no event differs,
1 when some do, 2 when no line of the events file could be compared; an input refused as a whole
raises before anything is compared.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from plugin_runtime.dryrun import open_sandbox, shorten
from plugin_runtime.recordings import read_events
from plugin_runtime.sandbox.base import Limits, Sandbox
from plugin_runtime.source import PluginSource
from plugin_runtime.terminal import escape
from plugin_sdk.actions import dump_actions
from plugin_sdk.results import RunResult, Status

#: Writes one line of output (the CLI's ``click.echo``, which drops colours off a terminal).
Echo = Callable[[str], None]
#: Colours a piece of human output: (text, colour name) -> text.
Style = Callable[[str, str], str]
#: Error lines of a failed side a human view shows; JSON keeps the whole error.
HUMAN_ERROR_LINES = 6


class Meter(Protocol):
    """A status line on a terminal (``cli._common.Progress``), erased before other lines."""

    def update(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Comparison:
    """What two runs of one event did differently.

    ``only_a``/``only_b``: the actions one side did and the other did not, as a multiset (an
    action done twice by a and once by b is once in ``only_a``: its later occurrence), each
    list in its run's order. ``reordered``: both did the same actions in another order, which
    matters (a later ``update_asset`` replaces an earlier one's metadata)."""

    same: bool
    only_a: list[dict[str, Any]] = field(default_factory=list)
    only_b: list[dict[str, Any]] = field(default_factory=list)
    reordered: bool = False


def _key(action: dict[str, Any]) -> str:
    return json.dumps(action, sort_keys=True, ensure_ascii=False)


def _unmatched(actions: Sequence[dict[str, Any]], keys: list[str], other: list[str]) -> list[dict[str, Any]]:
    left = Counter(other)
    out = []
    for action, key in zip(actions, keys):
        if left[key]:
            left[key] -= 1
        else:
            out.append(action)
    return out


def compare(a_status: str, a_actions: Sequence[dict[str, Any]], b_status: str,
            b_actions: Sequence[dict[str, Any]]) -> Comparison:
    """Two runs' outcomes, their actions in wire form (``dump_actions``) compared as data:
    same status and the same actions in the same order."""
    keys_a, keys_b = [_key(a) for a in a_actions], [_key(b) for b in b_actions]
    if keys_a == keys_b:
        return Comparison(same=str(a_status) == str(b_status))
    only_a, only_b = _unmatched(a_actions, keys_a, keys_b), _unmatched(b_actions, keys_b, keys_a)
    return Comparison(same=False, only_a=only_a, only_b=only_b, reordered=not only_a and not only_b)


@dataclass
class Tally:
    """What the summary counts: events compared and differing, actions by type on each side,
    status pairs of the events whose sides ended differently."""

    compared: int = 0
    differing: int = 0
    refused_lines: int = 0
    reordered: int = 0
    only_a: Counter[str] = field(default_factory=Counter)
    only_b: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, a: RunResult, b: RunResult, comparison: Comparison) -> None:
        self.compared += 1
        if comparison.same:
            return
        self.differing += 1
        self.reordered += comparison.reordered
        self.only_a.update(action["type"] for action in comparison.only_a)
        self.only_b.update(action["type"] for action in comparison.only_b)
        if a.status != b.status:
            self.statuses[(str(a.status), str(b.status))] += 1

    def lines(self, elapsed: float) -> list[str]:
        head = f"diff: {self.compared} events compared in {elapsed:.2f} s, {self.differing} differ"
        if self.refused_lines:
            head += f"; {self.refused_lines} event line(s) refused, not compared (see above)"
        out = [head]
        types = sorted(set(self.only_a) | set(self.only_b))
        width = max((len(t) for t in types), default=0)
        out += [f"  {t:{width}}  only in a: {self.only_a[t]}  only in b: {self.only_b[t]}" for t in types]
        out += [f"  status  a {a}, b {b}: {n} event(s)" for (a, b), n in sorted(self.statuses.items())]
        if self.reordered:
            out.append(f"  same actions in another order: {self.reordered} event(s)")
        return out


def _side(result: RunResult) -> dict[str, Any]:
    return {"status": str(result.status), "actions": dump_actions(result.actions), "error": result.error}


def diff_line(event_id: str | None, a: RunResult, b: RunResult, comparison: Comparison) -> dict[str, Any]:
    """The JSON object printed for one event."""
    return {"event_id": event_id, "same": comparison.same, "a": _side(a), "b": _side(b),
            "only_a": comparison.only_a, "only_b": comparison.only_b, "reordered": comparison.reordered}


def run_diff(a: PluginSource, b: PluginSource, events: str, *, names: tuple[str, str] = ("a", "b"),
             sandbox: str = "process", limits: Limits | None = None, echo: Echo, err: IO[str],
             human: bool = False, style: Style = lambda text, colour: text,
             progress: Meter | None = None) -> int:
    """Run every event of ``events`` through ``a`` and ``b``; returns the exit code (0: no
    event differs, 1: some do, 2: every event line was refused). Raises ``PluginRuntimeError``
    when an input is refused whole."""
    limits = limits or Limits()
    for name, source in zip(names, (a, b)):
        for warning in source.warnings:
            err.write(f"warning: {escape(name)}: {escape(warning, multiline=True)}\n")
    tally, started = Tally(), time.monotonic()
    boxes: list[Sandbox] = []
    try:
        boxes = [open_sandbox(sandbox, a, limits)]
        boxes.append(open_sandbox(sandbox, b, limits))
        if human:
            echo(f"a: {escape(names[0])}\nb: {escape(names[1])}\n")
        # Both sides of an event at once: each sandbox still serves one event at a time.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="diff") as pool:
            for recorded in read_events(events):
                if recorded.error is not None:
                    tally.refused_lines += 1
                    if progress is not None:
                        progress.close()
                    err.write(f"error: {escape(recorded.error, multiline=True)}\n")
                    continue
                event = recorded.event
                assert event is not None
                runs = [pool.submit(box.run, event) for box in boxes]
                ra, rb = (run.result() for run in runs)
                comparison = compare(ra.status, dump_actions(ra.actions), rb.status, dump_actions(rb.actions))
                tally.add(ra, rb, comparison)
                if human:
                    echo(human_lines(event, ra, rb, comparison, style))
                else:
                    echo(json.dumps(diff_line(recorded.event_id, ra, rb, comparison), ensure_ascii=False))
                if progress is not None:
                    progress.update(f"{tally.compared} events compared, {tally.differing} differ")
    finally:
        for box in boxes:
            box.close()
        if progress is not None:
            progress.close()
    err.write("\n".join(tally.lines(time.monotonic() - started)) + "\n")
    if tally.refused_lines and not tally.compared:
        return 2  # nothing compared: "no event differs" would pass a check that never ran
    return 1 if tally.differing else 0


def describe(action: dict[str, Any]) -> str:
    """One action on one line, for a terminal (plugin text escaped and shortened)."""
    data = dict(action)
    kind, target = data.pop("type"), data.pop("asset_id", "")
    detail = " ".join(f"{k}={shorten(json.dumps(v, ensure_ascii=False))}" for k, v in data.items() if v is not None)
    return f"{escape(str(kind))} {escape(str(target))} {detail}".rstrip()


def _outcome(result: RunResult) -> str:
    if result.skipped:
        return "no hook"
    return f"{result.status}, {len(result.actions)} action(s)" if result.ok else str(result.status).upper()


def human_lines(event: dict[str, Any], a: RunResult, b: RunResult, comparison: Comparison, style: Style) -> str:
    """An event's comparison for a terminal: one line when both sides did the same, else the
    actions only one side did (``-`` a, ``+`` b) and the error of a side that failed."""
    head = escape(f"{event.get('id', '?')}  {event.get('type', '?')}  {event.get('asset_id') or '-'}")
    if comparison.same:
        return f"{head}  same  ({_outcome(a)})"
    lines = [f"{head}  {style('DIFFERS', 'yellow')}  a: {_outcome(a)}  b: {_outcome(b)}"]
    lines += [style(f"    - {describe(action)}", "red") for action in comparison.only_a]
    lines += [style(f"    + {describe(action)}", "green") for action in comparison.only_b]
    if comparison.reordered:
        lines.append("    ~ the same actions in another order:")
        for name, result in (("a", a), ("b", b)):
            lines.append(f"      {name}: " + ", ".join(escape(action.type) for action in result.actions))
    for name, result in (("a", a), ("b", b)):
        if result.status != Status.OK and result.error:
            error = escape(result.error, multiline=True).splitlines()
            # A traceback's last lines say what failed; --format json has all of it.
            cut = f" (its last {HUMAN_ERROR_LINES} lines)" if len(error) > HUMAN_ERROR_LINES else ""
            lines.append(f"    {name} failed{cut}:")
            lines += [f"      {line}" for line in error[-HUMAN_ERROR_LINES:]]
    return "\n".join(lines)
