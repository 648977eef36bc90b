"""Label Studio results <-> Kili's jsonResponse, and labeling configs -> jsonInterface: pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin_runtime.errors import PlatformRefused
from plugin_runtime.platforms.label_studio import interface, labels, records

CONFIG = interface.parse("""<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="boxes" toName="image"><Label value="Car"/><Label value="Bike"/></RectangleLabels>
  <PolygonLabels name="shapes" toName="image"><Label value="Road"/></PolygonLabels>
  <Text name="text" value="$text"/>
  <Choices name="kind" toName="text" choice="multiple" required="true"><Choice value="A"/><Choice value="B" alias="b"/></Choices>
  <TextArea name="note" toName="text"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Rating name="stars" toName="text"/>
</View>""")


def test_every_control_maps_as_the_issue_says() -> None:
    response = labels.json_response([
        {"id": "c1", "from_name": "kind", "to_name": "text", "type": "choices", "value": {"choices": ["A", "b"]}},
        {"id": "t1", "from_name": "note", "to_name": "text", "type": "textarea", "value": {"text": ["one", "two"]}},
        {"id": "t2", "from_name": "note", "to_name": "text", "type": "textarea", "value": {"text": ["three"]}},
        {"id": "r1", "from_name": "boxes", "to_name": "image", "type": "rectanglelabels", "original_width": 200,
         "original_height": 100, "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0,
                                           "rectanglelabels": ["Car"]}},
        {"id": "p1", "from_name": "shapes", "to_name": "image", "type": "polygonlabels",
         "value": {"points": [[0, 0], [50, 0], [50, 100]], "polygonlabels": ["Road"]}},
        {"id": "n1", "from_name": "ner", "to_name": "text", "type": "labels",
         "value": {"start": 3, "end": 8, "text": "Alice", "labels": ["PER"]}},
        {"id": "s1", "from_name": "stars", "to_name": "text", "type": "rating", "value": {"rating": 4}},
        {"from_id": "r1", "to_id": "p1", "type": "relation", "direction": "right"},
    ])
    assert response["kind"] == {"categories": [{"name": "A"}, {"name": "b"}]}
    assert response["note"] == {"text": "one\ntwo\nthree"}
    [box] = response["boxes"]["annotations"]
    assert box["mid"] == "r1" and box["type"] == "rectangle" and box["categories"] == [{"name": "Car"}]
    # bottom-left, top-left, top-right, bottom-right, in 0..1
    assert box["boundingPoly"] == [{"normalizedVertices": [
        {"x": 0.1, "y": 0.6}, {"x": 0.1, "y": 0.2}, {"x": 0.4, "y": 0.2}, {"x": 0.4, "y": 0.6}]}]
    [polygon] = response["shapes"]["annotations"]
    assert polygon["type"] == "polygon" and polygon["boundingPoly"][0]["normalizedVertices"] == [
        {"x": 0.0, "y": 0.0}, {"x": 0.5, "y": 0.0}, {"x": 0.5, "y": 1.0}]
    assert response["ner"] == {"annotations": [{"mid": "n1", "categories": [{"name": "PER"}], "beginOffset": 3,
                                                "endOffset": 8, "content": "Alice"}]}
    assert response["stars"] == {"labelStudio": [{"id": "s1", "from_name": "stars", "to_name": "text",
                                                  "type": "rating", "value": {"rating": 4}}]}
    assert response["labelStudio"][0]["type"] == "relation"  # items of no control: nothing hidden
    assert "unlabelled" not in response  # controls left empty are absent


def test_a_rotated_rectangle_turns_in_pixels_around_its_top_left_corner() -> None:
    [box] = labels.json_response([{"id": "r", "from_name": "boxes", "type": "rectanglelabels", "original_width": 100,
                                   "original_height": 100, "value": {"x": 10, "y": 10, "width": 20, "height": 10,
                                                                     "rotation": 90, "rectanglelabels": []}}])["boxes"]["annotations"]
    corners = [(round(v["x"], 6), round(v["y"], 6)) for v in box["boundingPoly"][0]["normalizedVertices"]]
    assert corners == [(0.0, 0.1), (0.1, 0.1), (0.1, 0.3), (0.0, 0.3)]


def test_a_kili_response_goes_back_to_label_studio_results() -> None:
    response = {"kind": {"categories": [{"name": "A"}]}, "note": {"text": "fine"},
                "boxes": {"annotations": [{"mid": "m1", "categories": [{"name": "Bike"}], "boundingPoly": [
                    {"normalizedVertices": [{"x": 0.1, "y": 0.6}, {"x": 0.1, "y": 0.2}, {"x": 0.4, "y": 0.2},
                                            {"x": 0.4, "y": 0.6}]}]}]},
                "ner": {"annotations": [{"categories": [{"name": "PER"}], "beginOffset": 1, "endOffset": 4,
                                         "content": "Bob"}]}}
    out = {r["from_name"]: r for r in labels.results(response, CONFIG, seed="run-1:0")}
    assert out["kind"]["value"] == {"choices": ["A"]} and out["kind"]["to_name"] == "text"
    assert out["note"]["value"] == {"text": ["fine"]}
    assert out["boxes"]["id"] == "m1" and out["boxes"]["type"] == "rectanglelabels"
    assert out["boxes"]["value"] == {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0,
                                     "rectanglelabels": ["Bike"]}
    assert out["ner"]["value"] == {"start": 1, "end": 4, "text": "Bob", "labels": ["PER"]}
    assert labels.results(response, CONFIG, seed="run-1:0") == labels.results(response, CONFIG, seed="run-1:0")
    assert labels.unmapped({"kind": {}, "nope": {}}, CONFIG) == ["nope"]


percent = st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda v: round(v, 4))


@given(x=percent, y=percent, w=percent, h=percent, names=st.lists(st.sampled_from(["Car", "Bike"]), max_size=2))
def test_a_rectangle_survives_the_round_trip(x: float, y: float, w: float, h: float, names: list[str]) -> None:
    item = {"id": "abc", "from_name": "boxes", "to_name": "image", "type": "rectanglelabels",
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": names}}
    [back] = labels.results(labels.json_response([item]), CONFIG)
    for key in ("x", "y", "width", "height"):
        assert back["value"][key] == pytest.approx(item["value"][key], abs=1e-6)  # type: ignore[index]
    assert back["value"]["rectanglelabels"] == names and back["id"] == "abc"


def test_the_labeling_config_becomes_kilis_json_interface() -> None:
    jobs = interface.json_interface(CONFIG)["jobs"]
    assert jobs["kind"]["mlTask"] == "CLASSIFICATION" and jobs["kind"]["content"]["input"] == "checkbox"
    assert list(jobs["kind"]["content"]["categories"]) == ["A", "b"] and jobs["kind"]["required"] == 1
    assert jobs["note"]["mlTask"] == "TRANSCRIPTION"
    assert jobs["boxes"]["mlTask"] == "OBJECT_DETECTION" and jobs["boxes"]["tools"] == ["rectangle"]
    assert jobs["shapes"]["tools"] == ["polygon"] and jobs["ner"]["mlTask"] == "NAMED_ENTITIES_RECOGNITION"
    assert "stars" not in jobs  # no Kili ML task: its results reach plugins raw


def test_a_config_with_entities_or_broken_xml_is_refused() -> None:
    with pytest.raises(PlatformRefused, match="DOCTYPE"):
        interface.parse('<!DOCTYPE x [<!ENTITY a "aaaa">]><View>&a;</View>')
    with pytest.raises(PlatformRefused, match="not valid XML"):
        interface.parse("<View><Text name='t'></View>")


def test_annotations_become_labels_and_the_bots_edits_are_told_apart() -> None:
    person = {"id": 7, "task": 3, "completed_by": 2, "updated_by": 2, "result": [], "lead_time": 1.5,
              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z", "was_cancelled": False}
    assert records.label(person, bot_user_id=9)["labelType"] == "DEFAULT"
    assert records.label({**person, "was_cancelled": True}, 9) is None
    assert records.by_bot({**person, "updated_by": 9}, 9) and not records.by_bot(person, 9)
    assert records.label({**person, "completed_by": 9, "ground_truth": True}, 9)["labelType"] == "REVIEW"
    event = records.submitted("label-studio-1", 1, person, None, None, 9)
    assert event is not None and event["id"] == "ls-1-7-2026-01-01T00:00:01Z" and event["asset_id"] == "3"
    assert records.submitted("label-studio-1", 1, {**person, "updated_by": 9}, None, None, 9) is None
