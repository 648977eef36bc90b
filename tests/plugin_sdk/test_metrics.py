"""Agreement rules per job type, their combination, and the marks (plugin_sdk.metrics)."""

from __future__ import annotations

import pytest

from plugin_sdk import _geometry
from plugin_sdk.metrics import (
    LINE_RADIUS,
    POINT_RADIUS,
    agreement,
    consensus_mark,
    disagreements,
    honeypot_mark,
    inference_mark,
    iou,
    latest_labels,
    levenshtein,
    span_iou,
    text_agreement,
)

COLORS = ["RED", "BLACK", "WHITE", "GREY"]
# The project of seed 002 (Kili's inference-labels recipe): a 4-class radio job.
SEED_INTERFACE = {"jobs": {"CLASSIFICATION_JOB": {
    "mlTask": "CLASSIFICATION", "content": {"categories": {c: {"name": c.title()} for c in COLORS},
                                            "input": "radio"},
    "required": 0, "isChild": False, "instruction": "Color"}}}


def cls(*names: str, job: str = "CLASSIFICATION_JOB") -> dict:
    return {job: {"categories": [{"name": n} for n in names]}}


def box(x0, y0, x1, y1, cat="CAR", mid="m1", children=None) -> dict:
    corners = [(x0, y1), (x0, y0), (x1, y0), (x1, y1)]
    return {"mid": mid, "type": "rectangle", "categories": [{"name": cat}], "children": children or {},
            "boundingPoly": [{"normalizedVertices": [{"x": x, "y": y} for x, y in corners]}]}


def od(*annotations: dict) -> dict:
    return {"OBJECT_DETECTION_JOB": {"annotations": list(annotations)}}


def entity(begin, content, cat="ORG", mid="e1", **extra) -> dict:
    return {"mid": mid, "categories": [{"name": cat}], "beginOffset": begin, "content": content, **extra}


def label(author, created, response, kind="DEFAULT", **extra) -> dict:
    return {"id": f"{author}-{created}", "authorId": author, "labelType": kind,
            "createdAt": f"2024-05-0{created}T10:00:00.000Z", "jsonResponse": response, **extra}


# Seed 002: a matching prediction gives 1, a different one less than 1 (0.5 on 4 classes).
PREDICTIONS = {"black_car.jpg": "WHITE", "grey_car.jpg": "GREY", "white_car.jpg": "RED", "red_car.jpg": "BLACK"}
TRUTHS = {"black_car.jpg": "BLACK", "grey_car.jpg": "GREY", "white_car.jpg": "WHITE", "red_car.jpg": "RED"}


@pytest.mark.parametrize("asset", sorted(PREDICTIONS))
def test_the_seed_inference_flow(asset: str) -> None:
    human = label("human", 2, cls(TRUTHS[asset]))
    model = label("model", 1, cls(PREDICTIONS[asset]), kind="INFERENCE")
    mark = inference_mark(human, [model, human], SEED_INTERFACE)
    if PREDICTIONS[asset] == TRUTHS[asset]:
        assert mark == 1
        assert disagreements(model["jsonResponse"], human["jsonResponse"], SEED_INTERFACE) == []
    else:
        assert mark == 0.5  # as Kili showed: 2 of the 4 classes agree (both unticked)
        found = disagreements(model["jsonResponse"], human["jsonResponse"], SEED_INTERFACE)
        assert found == [{"job": "CLASSIFICATION_JOB", "a": [PREDICTIONS[asset]], "b": [TRUTHS[asset]]}]


def test_single_choice_rule_depends_on_the_ontology_size() -> None:
    assert agreement(cls("RED"), cls("WHITE")) == 0  # no ontology: 0 or 1
    binary = {"jobs": {"CLASSIFICATION_JOB": {"mlTask": "CLASSIFICATION",
                                              "content": {"categories": {"YES": {}, "NO": {}}, "input": "radio"}}}}
    assert agreement(cls("YES"), cls("NO"), binary) == 0
    assert agreement(cls("YES"), cls("YES"), binary) == 1
    assert agreement(cls("RED"), {}, SEED_INTERFACE) == 0  # answered on one side only


def test_multiple_choice_is_intersection_over_union() -> None:
    assert agreement(cls("RED", job="J"), cls("BLUE", "RED", job="J")) == 0.5  # Kili's example
    checkbox = {"jobs": {"J": {"mlTask": "CLASSIFICATION", "content": {
        "categories": {"RED": {}, "GREEN": {}, "BLUE": {}}, "input": "checkbox"}}}}
    assert agreement(cls("RED", job="J"), cls("BLUE", "RED", job="J"), checkbox) == 0.5
    assert agreement(cls("RED", job="J"), cls("BLUE", job="J"), checkbox) == 0


def test_transcription() -> None:
    assert agreement({"T": {"text": " FR76 3000 "}}, {"T": {"text": "FR76 3000"}}) == 1
    assert agreement({"T": {"text": "kitten"}}, {"T": {"text": "sitting"}}) == pytest.approx(1 - 3 / 7)
    assert agreement({"T": {"text": "abc"}}, {"T": {"text": ""}}) == 0
    assert levenshtein("", "abc") == 3 and levenshtein("flaw", "lawn") == 2
    assert text_agreement("", "  ") == 1


def test_boxes() -> None:
    a = od(box(0, 0, 0.5, 0.5))
    assert agreement(a, a) == 1
    assert agreement(a, od(box(0.25, 0, 0.75, 0.5))) == pytest.approx(1 / 3)  # overlap 1/8, union 3/8
    assert agreement(a, od(box(0.6, 0.6, 0.9, 0.9))) == 0
    assert agreement(a, od(box(0, 0, 0.5, 0.5, cat="BUS"))) == 0  # classes must match
    assert agreement(a, od()) == 0 and agreement(od(), od()) == 1 and agreement({}, {}) == 1
    # One box matched exactly, one missed: 1 / (1 matched + 1 unmatched).
    assert agreement(od(box(0, 0, 0.2, 0.2), box(0.5, 0.5, 0.9, 0.9, mid="m2")),
                     od(box(0, 0, 0.2, 0.2))) == 0.5


def test_the_assignment_is_optimal_not_greedy() -> None:
    # Greedy takes (0, 0) = 0.6 first and leaves row 1 alone; the optimum pairs crosswise.
    assert _geometry.max_weight_matching({(0, 0): 0.6, (0, 1): 0.5, (1, 0): 0.55}) == [(0, 1), (1, 0)]
    assert _geometry.max_weight_matching({(0, 0): 0.0}) == []


def test_polygons_concave_included() -> None:
    square = [(0, 0), (2, 0), (2, 2), (0, 2)]
    ell = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
    assert iou(square, ell) == pytest.approx(0.75)
    assert iou(ell, [(x + 1, y) for x, y in ell]) == pytest.approx(0.2)  # both concave: 1 / 5
    assert iou(ell, list(reversed(ell))) == pytest.approx(1)  # orientation does not matter
    polygon = {"type": "polygon", "categories": [{"name": "CAR"}], "mid": "p",
               "boundingPoly": [{"normalizedVertices": [{"x": x / 4, "y": y / 4} for x, y in ell]}]}
    assert agreement(od(polygon), od(box(0, 0, 0.5, 0.5))) == pytest.approx(0.75)
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1 and iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0


def test_nested_children_use_a_geometric_mean() -> None:
    color = lambda name: {"COLOR": {"categories": [{"name": name}]}}
    red = od(box(0, 0, 0.5, 0.5, children=color("RED")))
    assert agreement(red, red) == 1
    assert agreement(red, od(box(0, 0, 0.5, 0.5, children=color("BLUE")))) == 0  # wrong child
    shifted = od(box(0.25, 0, 0.75, 0.5, children=color("RED")))
    assert agreement(red, shifted) == pytest.approx((1 / 3) ** 0.5)  # sqrt(IoU 1/3 * child 1)
    two = od(box(0, 0, 0.2, 0.2, children=color("RED")), box(0.5, 0.5, 0.9, 0.9, mid="m2", children=color("RED")))
    other = od(box(0, 0, 0.2, 0.2, children=color("RED")), box(0.5, 0.5, 0.9, 0.9, mid="m2", children=color("BLUE")))
    assert agreement(two, other) == 0.5  # nesting keeps each object's weight
    # Among equal overlaps, the pairing with agreeing children wins.
    dup = od(box(0, 0, 0.5, 0.5, children=color("RED")), box(0, 0, 0.5, 0.5, mid="m2", children=color("BLUE")))
    assert agreement(dup, od(box(0, 0, 0.5, 0.5, mid="x", children=color("BLUE")))) == 0.5
    # A category's children count too.
    radio = lambda name: {"J": {"categories": [{"name": "CAR", "children": color(name)}]}}
    assert agreement(radio("RED"), radio("RED")) == 1 and agreement(radio("RED"), radio("BLUE")) == 0


def test_named_entities() -> None:
    ner = lambda *e: {"NER": {"annotations": list(e)}}
    assert agreement(ner(entity(21, "Kili")), ner(entity(21, "Kili", mid="x"))) == 1
    assert agreement(ner(entity(0, "a" * 10)), ner(entity(5, "a" * 10))) == pytest.approx(5 / 15)
    assert agreement(ner(entity(0, "Kili")), ner(entity(0, "Kili", cat="PER"))) == 0
    assert span_iou(entity(0, "abcd", endOffset=2), (0, 4)) == 0.5  # endOffset wins over content
    assert span_iou(entity(0, "abcd", beginId="n1", endId="n2", endOffset=1), (0, 4)) == 1
    # Two entities, one found: 1 / 2.
    assert agreement(ner(entity(0, "Kili"), entity(30, "Paris", cat="LOC", mid="e2")), ner(entity(0, "Kili"))) == 0.5


def test_relations_follow_the_entity_pairing() -> None:
    def doc(mids, end_target):
        e1, e2, e3 = mids
        return {"NER": {"annotations": [entity(0, "Ada", "PER", e1), entity(10, "Kili", "ORG", e2),
                                        entity(20, "Inria", "ORG", e3)]},
                "REL": {"annotations": [{"mid": "r", "categories": [{"name": "WORKS_FOR"}],
                                         "startEntities": [{"mid": e1}], "endEntities": [{"mid": end_target}]}]}}
    a = doc(("a1", "a2", "a3"), "a2")
    assert agreement(a, doc(("b1", "b2", "b3"), "b2")) == 1  # other mids, same entities
    # The relation now ends on the other organisation: 3 entities of 4 annotations agree.
    assert agreement(a, doc(("b1", "b2", "b3"), "b3")) == pytest.approx(3 / 5)


def test_points_and_lines() -> None:
    point = lambda x, y: {"P": {"annotations": [{"mid": "p", "type": "marker", "categories": [{"name": "EYE"}],
                                                 "point": {"x": x, "y": y}}]}}
    assert agreement(point(0.5, 0.5), point(0.5, 0.5)) == 1
    assert agreement(point(0.5, 0.5), point(0.5, 0.5 + POINT_RADIUS / 2)) == pytest.approx(0.5)
    assert agreement(point(0.5, 0.5), point(0.9, 0.9)) == 0
    line = lambda dy: {"L": {"annotations": [{"mid": "l", "type": "polyline", "categories": [{"name": "ROAD"}],
                                              "polyline": [{"x": 0.1, "y": 0.5 + dy}, {"x": 0.9, "y": 0.5 + dy}]}]}}
    assert agreement(line(0), line(0)) == 1
    assert agreement(line(0), line(LINE_RADIUS / 2)) == pytest.approx(0.5)
    assert agreement(line(0), line(0.3)) == 0


def test_jobs_are_weighted_by_annotation_count() -> None:
    boxes = [box(i / 10, 0, i / 10 + 0.05, 0.05, mid=f"m{i}") for i in range(3)]
    a = {**od(*boxes), **cls("RED")}
    b = {**od(*boxes), **cls("WHITE")}
    assert agreement(a, b) == pytest.approx(3 / 4)  # 3 boxes agree, the classification job does not
    # Kili's bookkeeping keys are not jobs.
    assert agreement({**a, "ANNOTATION_JOB_COUNTER": {"X": {"CAR": 3}}}, a) == 1


def test_consensus_uses_each_authors_latest_default_label() -> None:
    labels = [
        label("ann", 3, cls("RED")), label("ann", 1, cls("WHITE")),  # ann's latest is RED
        label("bob", 2, cls("RED")),
        label("cyd", 1, cls("RED")), label("cyd", 4, cls("BLACK")),  # cyd's latest is BLACK
        label("rev", 5, cls("GREY"), kind="REVIEW"),  # not a DEFAULT label
    ]
    # Pairs: ann-bob 1, ann-cyd 0.5, bob-cyd 0.5.
    assert consensus_mark(labels, SEED_INTERFACE) == pytest.approx(2 / 3)
    assert consensus_mark(labels) == pytest.approx(1 / 3)
    assert {a: l["id"] for a, l in latest_labels(labels).items()} == {"ann": "ann-3", "bob": "bob-2", "cyd": "cyd-4"}
    assert consensus_mark(labels[:2]) is None  # one author
    assert consensus_mark([]) is None


def test_honeypot_and_inference_marks() -> None:
    labels = [
        label("gold", 1, cls("BLACK"), kind="REVIEW"), label("gold", 2, cls("RED"), kind="REVIEW"),
        label("ann", 3, cls("RED")), label("bob", 3, cls("WHITE")),
    ]
    assert honeypot_mark(labels, SEED_INTERFACE) == pytest.approx(0.75)  # latest truth is RED
    assert honeypot_mark(labels[:2]) is None  # no DEFAULT label
    assert honeypot_mark(labels[2:]) is None  # no ground truth
    models = [label("m", 1, cls("BLACK"), kind="INFERENCE"), label("m", 2, cls("RED"), kind="INFERENCE")]
    assert inference_mark(labels[2], models + labels, SEED_INTERFACE) == 1  # latest inference: RED
    assert inference_mark(labels[2], labels) is None
    # createdAt orders labels; the position in the list only breaks ties.
    assert latest_labels([label("x", 2, {}), label("x", 1, {})])["x"]["id"] == "x-2"


def test_malformed_geometry_scores_instead_of_crashing() -> None:
    broken = {"JOB": {"annotations": [{"mid": "m", "categories": [{"name": "CAR"}],
                                       "boundingPoly": [{"normalizedVertices": [{"x": "left", "y": 0}]}]}]}}
    bad_point = {"JOB": {"annotations": [{"mid": "p", "categories": [{"name": "CAR"}], "point": {"x": None, "y": 1}}]}}
    good = {"JOB": {"annotations": [{"mid": "m", "categories": [{"name": "CAR"}], "boundingPoly": [
        {"normalizedVertices": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}, {"x": 0, "y": 1}]}]}]}}
    assert agreement(broken, good) == 0.0
    assert agreement(bad_point, bad_point) == 1.0 and agreement(bad_point, good) == 0.0


def test_every_public_name_is_importable_from_plugin_sdk_metrics_with_its_docstring() -> None:
    # The scoring engine lives in plugin_sdk._agreement; plugin authors import from metrics.
    from plugin_sdk import metrics

    for name in metrics.__all__:
        value = getattr(metrics, name)
        assert not callable(value) or value.__doc__, name
    assert {"agreement", "disagreements", "consensus_mark", "honeypot_mark", "inference_mark", "latest_labels",
            "iou", "span_iou", "levenshtein", "text_agreement", "label_response", "label_time",
            "POINT_RADIUS", "LINE_RADIUS"} <= set(metrics.__all__)
