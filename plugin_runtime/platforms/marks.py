"""The consensus, honeypot and inference marks of an asset's labels, computed within a budget.

The embedded platform computes them inside the transaction that adds a label, so what they
cost is time every other writer of the runtime waits. ``plugin_sdk.metrics`` pairs annotations
by an optimal assignment, cubic in their number, and consensus compares every two authors'
latest labels; labels come from webhooks and from plugins' actions (within the size limits a
plugin may append a label of 85,000 empty annotations, or labels by 1,000 made-up authors), so
the work is bounded here: the newest ``MAX_SCORED`` authors' labels take part in consensus, and
each platform change has a budget of work units, a pair of labels costing the cube of their
annotations. A mark whose agreements did not all fit in the budget, or that the metrics cannot
compute from a malformed ``jsonResponse``, is ``None`` (unknown), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugin_sdk import metrics

#: Work units of one platform change (a run's actions, an event, a submitted label): about a
#: second of the worst case (two labels of 400 overlapping boxes cost 5.1e8 and take ~2 s).
WORK_UNITS = 300_000_000
#: The fixed cost of one agreement, so that many small labels are bounded too.
CALL_UNITS = 10_000
#: Authors whose latest labels take part in consensus (the newest; Kili's consensus size is 10
#: at most).
MAX_SCORED = 10

Marks = dict[str, float | None]


@dataclass
class MarkBudget:
    """What is left of one platform change's work units."""

    units: int = WORK_UNITS
    skipped: int = 0

    def spend(self, cost: int) -> bool:
        if cost > self.units:
            self.skipped += 1
            return False
        self.units -= cost
        return True


def annotation_count(response: Any) -> int:
    """Annotations anywhere in a ``jsonResponse`` (nested jobs' included), without recursion."""
    count, stack = 0, [response]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "annotations" and isinstance(item, list):
                    count += len(item)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return count


Chosen = tuple[list[dict], "dict | None", "dict | None"]


def label_marks(labels: list[dict], is_honeypot: bool, json_interface: dict | None,
                budget: MarkBudget, chosen: Chosen | None = None) -> dict[str, Marks]:
    """The marks of each author's latest DEFAULT label (the newest ``MAX_SCORED``), by label id:
    ``consensus_mark`` (mean agreement with the others), ``honeypot_mark`` (with the latest
    REVIEW label, on a honeypot) and ``inference_mark`` (with the latest INFERENCE label)."""
    latest, truth, model = chosen or choose(labels, is_honeypot)
    sizes: dict[int, int] = {}
    scores: dict[frozenset[int], float | None] = {}

    def agree(x: dict, y: dict) -> float | None:
        key = frozenset((id(x), id(y)))
        if key not in scores:
            for label in (x, y):
                sizes.setdefault(id(label), annotation_count(label.get("jsonResponse")))
            scores[key] = None
            if budget.spend((sizes[id(x)] + sizes[id(y)]) ** 3 + CALL_UNITS):
                try:
                    scores[key] = metrics.agreement(metrics.label_response(x), metrics.label_response(y),
                                                    json_interface)
                except Exception:  # a jsonResponse the metrics cannot read: its mark is unknown
                    scores[key] = None
        return scores[key]

    out: dict[str, Marks] = {}
    for label in latest:
        others = [agree(label, other) for other in latest if other is not label]
        out[label["id"]] = {
            "consensus_mark": None if None in others else mean(others),  # type: ignore[arg-type]
            "honeypot_mark": agree(label, truth) if truth else None,
            "inference_mark": agree(label, model) if model else None,
        }
    return out


def compared(chosen: Chosen) -> list[dict]:
    """The labels ``label_marks`` reads the ``jsonResponse`` of, when it compares any."""
    latest, truth, model = chosen
    return latest + [label for label in (truth, model) if label is not None and label not in latest]


def choose(labels: list[dict], is_honeypot: bool) -> Chosen:
    """What ``label_marks`` compares, picked by ``labelType``, ``authorId`` and ``createdAt``
    alone (``chosen``): the newest ``MAX_SCORED`` authors' latest DEFAULT labels, the truth (a honeypot's latest
    REVIEW label) and the model's (latest INFERENCE) label."""
    latest = sorted(metrics.latest_labels(labels).values(), key=metrics.label_time)[-MAX_SCORED:]
    return latest, _latest(labels, "REVIEW") if is_honeypot else None, _latest(labels, "INFERENCE")


def asset_marks(marks: dict[str, Marks]) -> Marks:
    """An asset's marks: the mean of its labels' known marks."""
    return {name: mean([v[name] for v in marks.values() if v[name] is not None])  # type: ignore[misc]
            for name in ("consensus_mark", "honeypot_mark", "inference_mark")}


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _latest(labels: list[dict], label_type: str) -> dict | None:
    # labels_of returns them oldest first, by createdAt as the metrics module reads them.
    of_type = [label for label in labels if label.get("labelType") == label_type]
    return of_type[-1] if of_type else None
