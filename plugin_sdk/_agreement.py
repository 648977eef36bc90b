"""How two ``jsonResponse`` dicts are scored, job by job: the rules ``plugin_sdk.metrics``
documents, behind its public ``agreement`` and ``disagreements``.

Text edit distance lives here too, as transcription jobs are scored by it; ``plugin_sdk.metrics``
re-exports it with the constants below.
"""

from __future__ import annotations

import json
import math
from typing import Any

from plugin_sdk import _geometry
from plugin_sdk._geometry import Shape

#: Distance (normalised coordinates) at which two points stop agreeing; 1 when they coincide.
POINT_RADIUS = 0.05
#: Mean distance (normalised coordinates) at which two polylines stop agreeing.
LINE_RADIUS = 0.05
#: ``content.input`` values of single- and multiple-choice classification jobs.
SINGLE_CHOICE_INPUTS = frozenset({"radio", "singleDropdown"})
MULTIPLE_CHOICE_INPUTS = frozenset({"checkbox", "multipleDropdown"})

_RELATION_TASKS = frozenset({"NAMED_ENTITIES_RELATION", "OBJECT_RELATION"})
_ENDPOINTS = (("startEntities", "startObjects"), ("endEntities", "endObjects"))
_SPATIAL = frozenset({"shape", "span", "point", "line"})
# Added to a pair's matching weight, far below any meaningful IoU difference: among equally
# overlapping pairings prefer agreeing children, then the same mid (labels started from one
# pre-annotation keep its mids, and relations then keep their endpoints).
_TIE_CHILDREN = 1e-6
_TIE_MID = 1e-9


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    # Myers' bit-parallel algorithm (Hyyrö's form): one big-integer step per character of the
    # longer string instead of a len(a) x len(b) table.
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    masks: dict[str, int] = {}
    for i, char in enumerate(b):
        masks[char] = masks.get(char, 0) | 1 << i
    full, last = (1 << m) - 1, 1 << (m - 1)
    pv, mv, dist = full, 0, m
    for char in a:
        eq = masks.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & last:
            dist += 1
        elif mh & last:
            dist -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return dist


def text_agreement(a: str, b: str) -> float:
    """1 - Levenshtein distance / length of the longer text, after stripping surrounding
    whitespace; 1 for two empty texts."""
    a, b = a.strip(), b.strip()
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1 - levenshtein(a, b) / longest


def _parse(value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


class _Context:
    # The project's jobs, and the mids paired so far (a's mid -> b's): relations need them.
    __slots__ = ("depth", "jobs", "mids")

    def __init__(self, json_interface: Any) -> None:
        interface = _parse(json_interface)
        interface = _parse(interface.get("jsonInterface", interface))  # a project dict works too
        self.jobs: dict = interface.get("jobs") or {}
        self.mids: dict[Any, Any] = {}
        self.depth = 0


def _combine(a: dict, b: dict, ctx: _Context) -> float:
    names = sorted(set(a) | set(b), key=str)
    relations = [n for n in names if _is_relation_job(n, a.get(n), b.get(n), ctx)]
    # Relations last: their endpoints are compared through the entity and object pairings.
    parts = [part for n in [n for n in names if n not in relations] + relations
             if (part := _job_score(n, a.get(n), b.get(n), ctx)) is not None]
    weight = sum(w for _, w in parts)
    if not weight:
        return 1.0
    return min(1.0, max(0.0, sum(s * w for s, w in parts) / weight))


def _job_kind(name: Any, va: Any, vb: Any, ctx: _Context) -> str | None:
    task = (ctx.jobs.get(name) or {}).get("mlTask")
    if task == "CLASSIFICATION":
        return "classification"
    if task == "TRANSCRIPTION":
        return "transcription"
    for value in (va, vb):
        if isinstance(value, dict):
            if isinstance(value.get("categories"), list):
                return "classification"
            if "text" in value:
                return "transcription"
            if isinstance(value.get("annotations"), list):
                return "annotations"
    return None  # not a job (e.g. Kili's ANNOTATION_JOB_COUNTER): left out


def _is_relation_job(name: Any, va: Any, vb: Any, ctx: _Context) -> bool:
    if (ctx.jobs.get(name) or {}).get("mlTask") in _RELATION_TASKS:
        return True
    return any(isinstance(r, dict) and any(k in r for pair in _ENDPOINTS for k in pair)
               for v in (va, vb) if isinstance(v, dict) for r in v.get("annotations") or ())


def _job_score(name: Any, va: Any, vb: Any, ctx: _Context) -> tuple[float, float] | None:
    # (score, weight) of one job, or None when neither side answered it.
    kind = _job_kind(name, va, vb, ctx)
    va, vb = (v if isinstance(v, dict) else {} for v in (va, vb))
    if kind == "classification":
        return _classification(name, va, vb, ctx)
    if kind == "transcription":
        ta, tb = (str(v.get("text") or "").strip() for v in (va, vb))
        return (text_agreement(ta, tb), 1.0) if ta or tb else None
    if kind == "annotations":
        return _annotation_job(va, vb, ctx)
    return None


def _categories(value: Any) -> dict[str, dict]:
    # Ticked category names, in order, with their nested jobs.
    found: dict[str, dict] = {}
    for category in (value.get("categories") or ()) if isinstance(value, dict) else ():
        if isinstance(category, dict) and category.get("name") is not None:
            children = category.get("children")
            found.setdefault(str(category["name"]), children if isinstance(children, dict) else {})
    return found


def _classification(name: Any, va: dict, vb: dict, ctx: _Context) -> tuple[float, float] | None:
    ca, cb = _categories(va), _categories(vb)
    if not ca and not cb:
        return None
    if not ca or not cb:
        return 0.0, 1.0
    content = (ctx.jobs.get(name) or {}).get("content") or {}
    ontology = set(content.get("categories") or ())
    sa, sb = set(ca), set(cb)
    multiple = content.get("input") in MULTIPLE_CHOICE_INPUTS or (
        content.get("input") not in SINGLE_CHOICE_INPUTS and max(len(sa), len(sb)) > 1)
    if multiple or not ontology:
        base = len(sa & sb) / len(sa | sb)
    else:
        base = 1 - len(sa ^ sb) / len(ontology | sa | sb)
    nested = [s for n in sorted(sa & sb) for s in _nested(ca[n], cb[n], ctx)]
    return _geomean([base, *nested]), 1.0


def _nested(ja: Any, jb: Any, ctx: _Context) -> list[float]:
    # The scores of the child jobs answered on either side.
    ja, jb = (j if isinstance(j, dict) else {} for j in (ja, jb))
    if not ja and not jb:
        return []
    ctx.depth += 1
    parts = [_job_score(n, ja.get(n), jb.get(n), ctx) for n in sorted(set(ja) | set(jb), key=str)]
    ctx.depth -= 1
    return [p[0] for p in parts if p is not None]


def _geomean(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return 0.0 if min(values) <= 0 else math.prod(values) ** (1 / len(values))


class _Ann:
    # One annotation, parsed once: kind, matching group, geometry, envelope for the sweep.
    __slots__ = ("children", "env", "geom", "group", "kind", "mid")
    children: dict
    env: tuple[float, float, float, float]
    geom: Any
    group: tuple
    kind: str
    mid: Any


def _annotation(raw: dict) -> _Ann:
    ann = _Ann()
    ann.mid, ann.env = raw.get("mid"), (0.0, 0.0, 0.0, 0.0)
    children = raw.get("children")
    ann.children = children if isinstance(children, dict) else {}
    try:
        node = _read_geometry(ann, raw)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        # Malformed geometry (a vertex "x": "left") scores like any other annotation: equal
        # only to an identical one; it never stops the scoring of the rest.
        ann.kind, ann.env, node = "other", (0.0, 0.0, 0.0, 0.0), None
        ann.geom = json.dumps({k: v for k, v in raw.items() if k not in ("mid", "children")},
                              sort_keys=True, default=str)
    names = {str(c.get("name")) for c in raw.get("categories") or () if isinstance(c, dict)}
    ann.group = (ann.kind, tuple(sorted(names)), node)
    return ann


def _read_geometry(ann: _Ann, raw: dict) -> Any:
    """Set the annotation's kind, geometry and envelope; returns its text node (spans)."""
    node = None
    if "boundingPoly" in raw:
        ann.kind, ann.geom = "shape", Shape(_geometry.vertices(raw))
        ann.env = ann.geom.box
    elif "beginOffset" in raw:
        ann.kind, ann.geom, node = "span", _geometry.text_span(raw), raw.get("beginId")
        ann.env = (ann.geom[0], 0.0, ann.geom[1], 0.0)
    elif any(k in raw for pair in _ENDPOINTS for k in pair):
        ann.kind = "relation"
        ann.geom = tuple(frozenset(e.get("mid") for k in pair for e in raw.get(k) or ()
                                   if isinstance(e, dict)) for pair in _ENDPOINTS)
    elif isinstance(raw.get("point"), dict):
        [point] = _geometry.points([raw["point"]])  # ValueError when malformed
        ann.kind, ann.geom = "point", point
        ann.env = _geometry.pad([ann.geom], POINT_RADIUS / 2)
    elif isinstance(raw.get("polyline"), list):
        ann.kind, ann.geom = "line", _geometry.points(raw["polyline"])
        ann.env = _geometry.pad(ann.geom or [(0.0, 0.0)], LINE_RADIUS / 2)
    else:
        ann.kind = "other"
        ann.geom = json.dumps({k: v for k, v in raw.items() if k not in ("mid", "children")},
                              sort_keys=True, default=str)
    return node


def _similarity(x: _Ann, y: _Ann, ctx: _Context) -> float:
    if x.kind == "shape":
        return _geometry.shape_iou(x.geom, y.geom)
    if x.kind == "span":
        return _geometry.span_iou(x.geom, y.geom)
    if x.kind == "point":
        return max(0.0, 1 - math.dist(x.geom, y.geom) / POINT_RADIUS)
    if x.kind == "line":
        if not x.geom or not y.geom or x.geom == y.geom:
            return float(x.geom == y.geom)
        return max(0.0, 1 - _geometry.polyline_distance(x.geom, y.geom) / LINE_RADIUS)
    if x.kind == "relation":
        return _ends(x.geom[0], y.geom[0], ctx.mids) * _ends(x.geom[1], y.geom[1], ctx.mids)
    return float(x.geom == y.geom)


def _ends(ea: frozenset, eb: frozenset, mids: dict) -> float:
    # Jaccard index of two endpoint sets, a's mids read through the pairings made so far (a mid
    # no pairing covers stands for itself).
    if not ea and not eb:
        return 1.0
    common = sum(1 for m in ea if mids.get(m, m) in eb)
    return common / (len(ea) + len(eb) - common)


def _candidates(xs: list[_Ann], ys: list[_Ann]):
    # Pairs that may have a similarity above 0: same group, and envelopes touching.
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for side, anns in enumerate((xs, ys)):
        for k, ann in enumerate(anns):
            groups.setdefault(ann.group, ([], []))[side].append(k)
    for group, (ia, ib) in groups.items():
        if not ia or not ib:
            continue
        if group[0] in _SPATIAL:
            envs_a, envs_b = [xs[i].env for i in ia], [ys[j].env for j in ib]
            for p, q in _geometry.overlapping_pairs(envs_a, envs_b):
                yield ia[p], ib[q]
        else:
            yield from ((i, j) for i in ia for j in ib)


def _annotation_job(va: dict, vb: dict, ctx: _Context) -> tuple[float, float] | None:
    xs = [_annotation(r) for r in va.get("annotations") or () if isinstance(r, dict)]
    ys = [_annotation(r) for r in vb.get("annotations") or () if isinstance(r, dict)]
    count = len(xs) + len(ys)
    if not count:
        return None
    scores: dict[tuple[int, int], float] = {}
    weights: dict[tuple[int, int], float] = {}
    for i, j in _candidates(xs, ys):
        x, y = xs[i], ys[j]
        similarity = _similarity(x, y, ctx)
        if similarity > 0:
            nested = _nested(x.children, y.children, ctx) if x.children or y.children else []
            score = _geomean([similarity, *nested])
            scores[i, j] = score
            weights[i, j] = (similarity + _TIE_CHILDREN * score
                             + _TIE_MID * (x.mid is not None and x.mid == y.mid))
    pairs = _geometry.max_weight_matching(weights)
    if ctx.depth == 0:
        ctx.mids.update((xs[i].mid, ys[j].mid) for i, j in pairs if xs[i].mid is not None)
    count -= len(pairs)
    return sum(scores[p] for p in pairs) / count, float(count)
