"""Agreement between two labels, and the consensus, honeypot and inference marks built on it.

    from plugin_sdk.metrics import agreement, inference_mark, disagreements

Pure functions over Kili-shaped dicts (a ``jsonResponse``; labels with ``labelType``,
``authorId``, ``createdAt``), stdlib only. They follow Kili's published "Calculation rules for
quality metrics"; where Kili publishes nothing, the rule chosen here is:

- Single choice, with an ontology: per-class agreement over the job's classes, a class ticked by
  neither counting as agreeing; a mismatch on K classes scores 1 - 2/K (0.5 on the 4-class job
  of Kili's inference recipe, 0 on a binary job). Without an ontology: 1 or 0.
- Multiple choice: |A ∩ B| / |A ∪ B|.
- Transcription: 1 - Levenshtein distance / length of the longer text, both stripped.
- Annotations (boxes, polygons, points, polylines, entities, relations): same-class annotations
  are paired by an optimal assignment maximising their total similarity; a pair of similarity 0
  is no pair; score = Σ pair score / (pairs + unpaired in a + unpaired in b). Similarity: IoU of
  the first ``boundingPoly`` polygon; IoU of character spans in the same text node; for points
  1 - distance / POINT_RADIUS; for polylines 1 - mean distance / LINE_RADIUS; for relations the
  product of the start and end endpoints' Jaccard indices, two endpoints being the same when the
  entity/object assignment paired them (or, unpaired, share a mid); equality for other shapes.
- Nested jobs: a pair's (or a common category's) score is the geometric mean of its similarity
  and of each child job's score, so a wrong child classification makes it 0.
- Jobs at one level: mean weighted by annotations (the denominator above; 1 for a classification
  or transcription job). A job empty on both sides is left out; if all are, the agreement is 1.
  A job answered on one side only scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from itertools import combinations
from typing import Any

from plugin_sdk import _geometry
from plugin_sdk._agreement import (
    LINE_RADIUS,
    MULTIPLE_CHOICE_INPUTS,
    POINT_RADIUS,
    SINGLE_CHOICE_INPUTS,
    _categories,
    _combine,
    _Context,
    _job_kind,
    _parse,
    levenshtein,
    text_agreement,
)

__all__ = [
    "LINE_RADIUS",
    "MULTIPLE_CHOICE_INPUTS",
    "POINT_RADIUS",
    "SINGLE_CHOICE_INPUTS",
    "agreement",
    "consensus_mark",
    "disagreements",
    "honeypot_mark",
    "inference_mark",
    "iou",
    "label_response",
    "label_time",
    "latest_labels",
    "levenshtein",
    "span_iou",
    "text_agreement",
]


def agreement(a: dict, b: dict, json_interface: dict | None = None) -> float:
    """Agreement in [0, 1] between two ``jsonResponse`` dicts, job by job, combined by the rules
    above. With ``json_interface`` (the project's, ``{"jobs": ...}``) classification jobs follow
    their ``mlTask``, ``content.input`` and categories; without it each job's type is read from
    its shape. Exactly symmetric in ``a`` and ``b``."""
    a, b = _parse(a), _parse(b)
    if repr(b) < repr(a):
        # A canonical order, so that ties between equally good pairings resolve the same way
        # whichever label comes first.
        a, b = b, a
    return _combine(a, b, _Context(json_interface))


def disagreements(a: dict, b: dict, json_interface: dict | None = None) -> list[dict]:
    """The top-level classification jobs whose ticked categories differ, in job order, e.g.
    ``[{"job": "COLOR", "a": ["WHITE"], "b": ["BLACK"]}]`` (an unanswered job gives ``[]``)."""
    a, b = _parse(a), _parse(b)
    ctx = _Context(json_interface)
    found = []
    for name in dict.fromkeys([*a, *b]):
        if _job_kind(name, a.get(name), b.get(name), ctx) != "classification":
            continue
        names_a, names_b = list(_categories(a.get(name))), list(_categories(b.get(name)))
        if set(names_a) != set(names_b):
            found.append({"job": name, "a": names_a, "b": names_b})
    return found


def latest_labels(labels: Iterable[dict], label_type: str = "DEFAULT") -> dict[Any, dict]:
    """Each author's latest label of ``label_type``, keyed by ``authorId`` (or ``author.id``):
    latest by ``createdAt``, then by position in ``labels``."""
    best: dict[Any, tuple[tuple[float, int], dict]] = {}
    for rank, label in enumerate(labels):
        if label.get("labelType") != label_type:
            continue
        author = label.get("authorId", (label.get("author") or {}).get("id"))
        key = (label_time(label), rank)
        if author not in best or key > best[author][0]:
            best[author] = (key, label)
    return {author: label for author, (_, label) in best.items()}


def consensus_mark(labels: Iterable[dict], json_interface: dict | None = None) -> float | None:
    """Mean pairwise agreement among each author's latest DEFAULT label; None with fewer than
    two authors."""
    latest = latest_labels(labels)
    if len(latest) < 2:
        return None
    chosen = [latest[author] for author in sorted(latest, key=str)]
    scores = [agreement(label_response(x), label_response(y), json_interface)
              for x, y in combinations(chosen, 2)]
    return sum(scores) / len(scores)


def honeypot_mark(labels: Iterable[dict], json_interface: dict | None = None) -> float | None:
    """Mean agreement of each author's latest DEFAULT label with the ground truth, the latest
    REVIEW label; None without a ground truth or without DEFAULT labels."""
    labels = list(labels)
    truth = _latest_of(labels, "REVIEW")
    answers = list(latest_labels(labels).values())
    if truth is None or not answers:
        return None
    scores = [agreement(label_response(label), label_response(truth), json_interface) for label in answers]
    return sum(scores) / len(scores)


def inference_mark(human_label: dict, labels: Iterable[dict],
                   json_interface: dict | None = None) -> float | None:
    """Agreement of ``human_label`` with the latest INFERENCE label among ``labels`` (the
    asset's); None when there is none."""
    model = _latest_of(labels, "INFERENCE")
    if model is None:
        return None
    return agreement(label_response(human_label), label_response(model), json_interface)


def iou(a: Any, b: Any) -> float:
    """Intersection over union of two shapes, each an object annotation (its first
    ``boundingPoly``), a list of vertices (``{"x", "y"}`` dicts or ``(x, y)`` pairs) or an
    ``(x_min, y_min, x_max, y_max)`` box. Polygons may be concave, not self-intersecting."""
    return _geometry.shape_iou(_geometry.to_shape(a), _geometry.to_shape(b))


def span_iou(a: Any, b: Any) -> float:
    """Overlap over union of two text spans, each an entity annotation (``beginOffset`` and
    ``content`` or ``endOffset``) or a ``(begin, end)`` pair, end excluded."""
    return _geometry.span_iou(_geometry.text_span(a), _geometry.text_span(b))


def label_response(label: dict) -> dict:
    """A label's ``jsonResponse`` as a dict: parsed when given as a JSON string, ``{}`` when
    missing or unreadable."""
    return _parse(label.get("jsonResponse"))


def label_time(label: dict) -> float:
    """A label's ``createdAt`` as a Unix timestamp; an undated label is older than any other."""
    value = label.get("createdAt")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return -math.inf  # undated: older than any dated label
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _latest_of(labels: Iterable[dict], label_type: str) -> dict | None:
    ranked = [((label_time(l), k), l) for k, l in enumerate(labels) if l.get("labelType") == label_type]
    return max(ranked, key=lambda item: item[0])[1] if ranked else None
