"""Properties of plugin_sdk.metrics over generated labels mixing every job type: symmetry,
bounds, identity; and its building blocks against brute force."""

from __future__ import annotations

import math
from itertools import permutations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin_sdk import _agreement, _geometry, metrics
from plugin_sdk.metrics import agreement, levenshtein

COLORS = ["RED", "BLACK", "WHITE", "GREY"]
INTERFACE = {"jobs": {
    "CLS": {"mlTask": "CLASSIFICATION", "content": {"categories": {c: {} for c in COLORS}, "input": "radio"}},
    "MULTI": {"mlTask": "CLASSIFICATION", "content": {"categories": {c: {} for c in COLORS}, "input": "checkbox"}},
    "TEXT": {"mlTask": "TRANSCRIPTION"},
}}
# A coarse grid, so that identical and touching shapes (ties, degenerate cases) come up often.
grid = st.integers(0, 6).map(lambda v: v / 6)
category = st.sampled_from(["A", "B"])
children = st.one_of(st.just({}), st.sampled_from(COLORS[:2]).map(
    lambda c: {"CHILD": {"categories": [{"name": c}]}}))


def vertex(x: float, y: float) -> dict:
    return {"x": x, "y": y}


@st.composite
def star(draw, center=(0.5, 0.5)) -> list[tuple[float, float]]:
    # One vertex per angular sector around the center, gaps below half a turn: a simple polygon,
    # star-shaped and often concave.
    count = draw(st.integers(3, 7))
    angles = [2 * math.pi * (k + draw(st.floats(0, 0.9))) / count for k in range(count)]
    radii = draw(st.lists(st.floats(0.05, 0.5), min_size=count, max_size=count))
    return [(center[0] + r * math.cos(t), center[1] + r * math.sin(t)) for t, r in zip(angles, radii)]


@st.composite
def shape_annotation(draw) -> dict:
    kind = draw(st.sampled_from(["rectangle", "polygon", "marker", "polyline"]))
    base = {"type": kind, "categories": [{"name": draw(category)}], "children": draw(children)}
    if kind == "rectangle":
        x0, x1 = sorted(draw(st.lists(grid, min_size=2, max_size=2)))
        y0, y1 = sorted(draw(st.lists(grid, min_size=2, max_size=2)))
        corners = [vertex(x0, y1), vertex(x0, y0), vertex(x1, y0), vertex(x1, y1)]
        return {**base, "boundingPoly": [{"normalizedVertices": corners}]}
    if kind == "polygon":
        pts = draw(star(center=(draw(grid), draw(grid))))
        return {**base, "boundingPoly": [{"normalizedVertices": [vertex(x, y) for x, y in pts]}]}
    if kind == "marker":
        return {**base, "point": vertex(draw(grid), draw(grid))}
    return {**base, "polyline": [vertex(draw(grid), draw(grid)) for _ in range(draw(st.integers(1, 3)))]}


@st.composite
def entity(draw) -> dict:
    begin = draw(st.integers(0, 12))
    ann = {"categories": [{"name": draw(category)}], "beginOffset": begin, "content": "x" * draw(st.integers(0, 5))}
    if draw(st.booleans()):
        ann["endOffset"] = begin + draw(st.integers(0, 5))
    return ann


def with_mids(prefix: str, annotations: list[dict]) -> list[dict]:
    return [{**a, "mid": f"{prefix}{k}"} for k, a in enumerate(annotations)]


@st.composite
def response(draw) -> dict:
    out: dict = {}
    if draw(st.booleans()):
        out["CLS"] = {"categories": [{"name": c} for c in draw(st.lists(st.sampled_from(COLORS), max_size=1))]}
    if draw(st.booleans()):
        out["MULTI"] = {"categories": [{"name": c} for c in draw(st.sets(st.sampled_from(COLORS)))]}
    if draw(st.booleans()):
        out["TEXT"] = {"text": draw(st.text(alphabet="ab ", max_size=6))}
    if draw(st.booleans()):
        out["OD"] = {"annotations": with_mids("o", draw(st.lists(shape_annotation(), max_size=4)))}
    entities = with_mids("e", draw(st.lists(entity(), max_size=4)))
    if entities or draw(st.booleans()):
        out["NER"] = {"annotations": entities}
    if entities and draw(st.booleans()):
        mids = st.sampled_from([e["mid"] for e in entities]).map(lambda m: [{"mid": m}])
        relations = draw(st.lists(st.fixed_dictionaries({
            "categories": st.just([{"name": "REL"}]), "startEntities": mids, "endEntities": mids}), max_size=3))
        out["REL"] = {"annotations": with_mids("r", relations)}
    return out


interfaces = st.sampled_from([None, INTERFACE])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(response(), response(), interfaces)
def test_agreement_is_symmetric_and_bounded(a: dict, b: dict, interface) -> None:
    score = agreement(a, b, interface)
    assert 0 <= score <= 1
    assert agreement(b, a, interface) == score


@SETTINGS
@given(response(), interfaces)
def test_a_label_agrees_fully_with_itself(a: dict, interface) -> None:
    assert agreement(a, a, interface) == pytest.approx(1, abs=1e-9)


@st.composite
def float_boxes(draw) -> dict:
    boxes = []
    for k in range(draw(st.integers(0, 6))):
        x, y = draw(st.floats(0, 0.8)), draw(st.floats(0, 0.8))
        w, h = draw(st.floats(0.01, 0.2)), draw(st.floats(0.01, 0.2))
        corners = [vertex(x, y), vertex(x + w, y), vertex(x + w, y + h), vertex(x, y + h)]
        boxes.append({"mid": f"b{k}", "categories": [{"name": "A"}], "boundingPoly": [{"normalizedVertices": corners}]})
    return {"OD": {"annotations": boxes}}


@SETTINGS
@given(float_boxes(), float_boxes())
def test_the_matching_itself_is_symmetric_without_ties(a: dict, b: dict) -> None:
    # agreement() orders its arguments canonically; here both orders really run.
    forward = _agreement._combine(a, b, _agreement._Context(None))
    backward = _agreement._combine(b, a, _agreement._Context(None))
    assert forward == pytest.approx(backward, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.tuples(st.integers(0, 4), st.integers(0, 4)), st.floats(0, 1), max_size=16))
def test_the_matching_is_optimal(edges: dict) -> None:
    pairs = _geometry.max_weight_matching(edges)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    got = sum(edges[p] for p in pairs)
    best = max(sum(edges.get((i, j), 0.0) for i, j in zip(range(5), perm)) for perm in permutations(range(5)))
    assert got == pytest.approx(best, abs=1e-9)


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcd", max_size=90), st.text(alphabet="abcd", max_size=90))
def test_levenshtein_matches_the_table(a: str, b: str) -> None:
    assert levenshtein(a, b) == _edit_distance(a, b)


@SETTINGS
@given(star(), star(center=(0.6, 0.55)))
def test_concave_overlap_by_fan_equals_direct_clipping(a, b) -> None:
    sa, sb = _geometry.Shape(a), _geometry.Shape(b)
    area = _geometry.intersection_area(sa, sb)
    assert -1e-12 <= area <= min(sa.area, sb.area) + 1e-12
    assert area == pytest.approx(_geometry.intersection_area(sb, sa), abs=1e-9)
    if sb.convex:  # force the triangle-fan path and compare with Sutherland-Hodgman
        sb.convex = False
        sa.convex = False
        assert _geometry.intersection_area(sa, sb) == pytest.approx(area, abs=1e-9)
    assert metrics.iou(a, b) == pytest.approx(metrics.iou(b, a), abs=1e-9)
