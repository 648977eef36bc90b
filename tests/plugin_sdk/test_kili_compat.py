"""The handle against the real ``kili`` package (a dev dependency): the same keyword
arguments for every method it offers, and Kili-style plugins running unchanged."""

from __future__ import annotations

import inspect

import pytest

from plugin_sdk._kili_api import KILI_READ_PARAMETERS
from plugin_sdk.handle import KiliHandle, iter_offered
from plugin_sdk.testing import load_plugin, make_event

kili_client = pytest.importorskip("kili.client", reason="the real kili package is in the dev extra")
Kili = kili_client.Kili


def _names(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _kili(method: str):
    """Kili's method: on the client, or (create_questions, which the client class does not
    mix in) on the client methods class the package defines it in."""
    if hasattr(Kili, method):
        return getattr(Kili, method)
    from kili.presentation.client.question import QuestionClientMethods

    return getattr(QuestionClientMethods, method)


@pytest.mark.parametrize("method", list(iter_offered()))
def test_every_offered_method_accepts_kilis_keyword_arguments(method: str) -> None:
    real = _names(_kili(method))
    ours = inspect.signature(getattr(KiliHandle, method)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours.values()):
        accepted = set(ours) | set(KILI_READ_PARAMETERS[method])
    else:
        accepted = set(ours)
    assert [name for name in real if name not in accepted] == []


@pytest.mark.parametrize("method", sorted(KILI_READ_PARAMETERS))
def test_the_recorded_read_arguments_are_kilis(method: str) -> None:
    assert list(KILI_READ_PARAMETERS[method]) == _names(getattr(Kili, method))


@pytest.mark.parametrize("method", ["create_issues", "send_back_to_queue", "add_to_review",
                                    "update_properties_in_assets", "append_labels", "create_honeypot",
                                    "create_predictions", "add_metadata", "set_metadata", "set_assets_priority",
                                    "assign_assets_to_labelers", "update_issue_status", "create_questions"])
def test_write_methods_take_kilis_arguments_in_kilis_order(method: str) -> None:
    assert _names(getattr(KiliHandle, method)) == _names(_kili(method))


def test_an_unknown_argument_is_a_type_error_like_python_gives() -> None:
    handle = KiliHandle("project-1")
    handle._begin(make_event())
    with pytest.raises(TypeError, match="unexpected keyword argument 'asset_idd'"):
        handle.labels("project-1", asset_idd="asset-1")


def test_a_method_the_sandbox_cannot_offer_names_itself_and_the_alternative() -> None:
    handle = KiliHandle("project-1")
    with pytest.raises(AttributeError) as raised:
        handle.export_labels  # noqa: B018 - the attribute access is the test
    assert "kili.export_labels is not available to a plugin" in str(raised.value)
    assert "create_issues" in str(raised.value)


KILI_STYLE = '''
from typing import Dict
from kili.plugins import PluginCore


def check(json_response):
    issues = []
    for annotation in json_response.get("OBJECT_DETECTION_JOB", {}).get("annotations", []):
        if annotation["categories"][0]["name"] == "CAR" and len(annotation["boundingPoly"][0]["normalizedVertices"]) != 4:
            issues.append((annotation["mid"], "A car is a rectangle"))
    return issues


class PluginHandler(PluginCore):
    def on_submit(self, label: Dict, asset_id: str) -> None:
        issues = check(label["jsonResponse"])
        if issues:
            self.kili.create_issues(
                project_id=self.project_id,
                label_id_array=[label["id"]] * len(issues),
                object_mid_array=[mid for mid, _ in issues],
                text_array=[text for _, text in issues],
            )
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        else:
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=['{"checked": true}'])
            self.kili.add_to_review(asset_ids=[asset_id])
        self.logger.info("done")
'''


def test_a_plugin_written_against_kili_runs_unchanged(tmp_path) -> None:
    (tmp_path / "main.py").write_text(KILI_STYLE)
    plugin = load_plugin(tmp_path)
    triangle = {"mid": "m-1", "categories": [{"name": "CAR"}],
                "boundingPoly": [{"normalizedVertices": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}]}]}
    bad = plugin.submit({"OBJECT_DETECTION_JOB": {"annotations": [triangle]}}, asset_id="asset-9")
    assert bad.status == "ok", bad.error
    assert [(a.type, getattr(a, "object_mid", None)) for a in bad.actions] == [
        ("create_issue", "m-1"), ("send_back_to_queue", None)]
    good = plugin.submit({"OBJECT_DETECTION_JOB": {"annotations": []}}, asset_id="asset-9")
    assert [a.type for a in good.actions] == ["update_asset", "add_to_review"]
    assert good.actions[0].json_metadata == {"checked": True}
    assert [log.message for log in good.logs] == ["done"]
