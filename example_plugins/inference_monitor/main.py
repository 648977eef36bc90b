"""Inference monitor bot: compares every human label with the production model's prediction.

The flow of Kili's inference-labels recipe: a model in production pushes its prediction on
each asset as an INFERENCE label; labelers label a sample of the assets. On every submit the
bot computes the agreement between the human label and the asset's latest INFERENCE label
(``plugin_sdk.metrics.inference_mark``, in [0, 1]) and writes it into the asset's
``json_metadata`` under ``inferenceMark``, keeping the metadata already there.

When the mark is below ``THRESHOLD`` the model and the human disagree (data drift, or a
category the model gets wrong), so in the same update it raises the asset's priority to
``100 * (1 - mark)`` (never lowering it), opens an issue on the human label naming the
classification jobs where they differ ("model predicted WHITE, human BLACK on
CLASSIFICATION_JOB") and puts the asset in review.

An asset without an INFERENCE label (the model did not see it) is logged and left alone.
"""

from __future__ import annotations


from plugin_sdk import ContextUnavailable, PluginCore
from plugin_sdk.metrics import disagreements, inference_mark, label_time

LABEL_FIELDS = ["id", "labelType", "authorId", "createdAt", "jsonResponse", "modelName"]


def latest(labels: list[dict]) -> dict:
    """The latest label by ``createdAt``, then by position (as ``inference_mark`` picks it)."""
    return max(enumerate(labels), key=lambda item: (label_time(item[1]), item[0]))[1]


def describe(found: list[dict]) -> str:
    """Disagreements as "model predicted WHITE, human BLACK on CLASSIFICATION_JOB; ..."."""
    def names(categories: list[str]) -> str:
        return " and ".join(categories) or "nothing"

    return "; ".join(f"model predicted {names(d['a'])}, human {names(d['b'])} on {d['job']}" for d in found)


class PluginHandler(PluginCore):
    """Writes the inference mark and flags disagreements; see the module docstring."""

    THRESHOLD = 0.8

    def on_submit(self, label: dict, asset_id: str) -> None:
        models = self._inference_labels(asset_id)
        if models is None:
            return
        if not models:
            self.logger.info(f"Asset {asset_id}: no INFERENCE label to compare label {label.get('id')} with")
            return
        model = latest(models)
        interface = self._interface()
        try:
            mark = inference_mark(label, models, interface)
            found = disagreements(model.get("jsonResponse") or {}, label.get("jsonResponse") or {}, interface)
        except (ValueError, TypeError) as error:  # e.g. a coordinate that is not a number
            self.logger.warning(f"Asset {asset_id}: cannot compare with the model, a label is malformed ({error})")
            return
        if mark is None:  # defensive: models holds INFERENCE labels only
            return
        self.logger.info(f"Asset {asset_id}: inference mark {mark:.2f} against {model.get('id')} "
                         f"({model.get('modelName') or 'unnamed model'})")

        asset = self._asset(asset_id)
        metadata = {**self._metadata(asset_id, asset), "inferenceMark": round(mark, 4)}
        if mark >= self.THRESHOLD:
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[metadata])
            return

        current = asset.get("priority")
        current = current if isinstance(current, int) else 0
        priority = max(current, round(100 * (1 - mark)))
        self.kili.update_properties_in_assets(
            asset_ids=[asset_id], json_metadatas=[metadata], priorities=[priority]
        )
        text = f"Model and human disagree (inference mark {mark:.2f}, below {self.THRESHOLD})"
        text += f": {describe(found)}" if found else f"; compare with the model's label {model.get('id')}"
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=[text])
        self.kili.add_to_review(asset_ids=[asset_id])

    def _inference_labels(self, asset_id: str) -> list[dict] | None:
        """The asset's INFERENCE labels, or None when the event does not carry them."""
        query = {"project_id": self.project_id, "asset_id": asset_id, "type_in": ["INFERENCE"],
                 "disable_tqdm": True}
        try:
            return self.kili.labels(fields=LABEL_FIELDS, **query)
        except ContextUnavailable:
            pass  # a hand-written event whose labels lack a field: take them as recorded
        try:
            return self.kili.labels(**query)
        except ContextUnavailable as missing:
            self.logger.warning(f"Asset {asset_id}: cannot read its labels ({missing})")
            return None

    def _interface(self) -> dict | None:
        """The project's ``jsonInterface``; None when unknown (job types are then read from the
        labels' shapes, and a single-choice mismatch scores 0 instead of 1 - 2/K)."""
        try:
            [project] = self.kili.projects(project_id=self.project_id, fields=["jsonInterface"], disable_tqdm=True)
        except (ContextUnavailable, ValueError):
            self.logger.warning("The project's interface is unknown: job types read from the labels")
            return None
        interface = project.get("jsonInterface")
        return interface if isinstance(interface, (dict, str)) and interface else None

    def _asset(self, asset_id: str) -> dict:
        """The asset's metadata and priority, as far as the event tells."""
        try:
            assets = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata", "priority"])
        except ContextUnavailable:
            return {}  # a hand-written event without the asset
        return assets[0] if assets else {}

    def _metadata(self, asset_id: str, asset: dict) -> dict:
        """The asset's ``jsonMetadata`` as a dict, to merge into: ``json_metadatas`` replaces it."""
        return dict(asset.get("jsonMetadata") or {})
