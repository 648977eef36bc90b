"""Consensus resolution bot: merges the boxes of a consensus asset's labelers into one proposal.

On every submit it checks whether the asset has all its consensus labels: the latest DEFAULT
label of N distinct labelers, N being the project's ``minConsensusSize`` (2 when the project
does not say). Until then it only logs. Once they are in, it:

- clusters the object-detection boxes of all labelers, job by job: a box joins the cluster
  whose mean box it overlaps most (IoU >= ``IOU_THRESHOLD``), each cluster holding at most one
  box per labeler;
- keeps the clusters drawn by a majority of the labelers, each as one rectangle: the mean of
  its boxes' coordinates, of the class most of them chose (ties: the first name
  alphabetically), its ``confidence`` the share of labelers who chose that class;
- appends that combined label for the reviewer, as a PREDICTION of model
  ``consensus-resolution``;
- writes the consensus mark (``plugin_sdk.metrics.consensus_mark``) into the asset's
  ``json_metadata`` under ``consensusMark``, keeping the metadata already there;
- opens an issue on the latest label when the mark is below ``AGREEMENT_THRESHOLD``;
- puts the asset in review.

It merges once: when a PREDICTION of ``consensus-resolution`` newer than every consensus label
exists, it does nothing. Rectangles are merged; other shapes (polygons, points, lines), boxes
without a class and their child jobs are left out. When no labeler drew any box, the mark,
issue and review still happen, without a proposal.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

from plugin_sdk import ContextUnavailable, PluginCore
from plugin_sdk.metrics import consensus_mark, iou, label_response, label_time, latest_labels

LABEL_FIELDS = ["id", "labelType", "authorId", "createdAt", "jsonResponse", "modelName"]


class Box(NamedTuple):
    """One labeler's rectangle: ``coords`` is ``(x_min, y_min, x_max, y_max)``, normalised."""

    labeler: str
    category: str
    coords: tuple[float, float, float, float]


def object_jobs(json_interface: dict, responses: list[dict]) -> list[str]:
    """The top-level object-detection jobs: from the interface, else from the labels' shapes."""
    jobs = json_interface.get("jobs") if isinstance(json_interface, dict) else None
    if isinstance(jobs, dict) and jobs:
        return [name for name, job in jobs.items() if isinstance(job, dict)
                and job.get("mlTask") == "OBJECT_DETECTION" and not job.get("isChild")]
    found: list[str] = []
    for response in responses:
        for name, job in response.items():
            annotations = job.get("annotations") if isinstance(job, dict) else None
            if isinstance(annotations, list) and any(
                    isinstance(a, dict) and "boundingPoly" in a for a in annotations):
                found += [name] if name not in found else []
    return found


def rectangle(annotation: Any) -> tuple[str, tuple[float, float, float, float]] | None:
    """``(class, box)`` of a rectangle annotation, or None for anything else."""
    if not isinstance(annotation, dict) or annotation.get("type", "rectangle") != "rectangle":
        return None
    try:
        category = str(annotation["categories"][0]["name"])
        vertices = annotation["boundingPoly"][0]["normalizedVertices"]
        xs, ys = [float(v["x"]) for v in vertices], [float(v["y"]) for v in vertices]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    box = (min(xs, default=0.0), min(ys, default=0.0), max(xs, default=0.0), max(ys, default=0.0))
    return (category, box) if box[2] > box[0] and box[3] > box[1] else None


def mean_box(boxes: list[Box]) -> tuple[float, float, float, float]:
    """The coordinate-wise mean of boxes."""
    x0, y0, x1, y1 = (round(sum(b.coords[i] for b in boxes) / len(boxes), 6) for i in range(4))
    return x0, y0, x1, y1


def cluster(boxes_by_labeler: dict[str, list[Box]], threshold: float) -> list[list[Box]]:
    """Clusters of boxes, at most one per labeler each. Labelers are taken in turn; each box
    of a labeler joins the cluster whose mean box it overlaps most (IoU >= threshold), best
    pairs first, or starts a cluster."""
    clusters: list[list[Box]] = []
    for labeler in sorted(boxes_by_labeler):
        boxes = boxes_by_labeler[labeler]
        means = [mean_box(c) for c in clusters]
        pairs = sorted(((iou(box.coords, means[c]), b, c)
                        for b, box in enumerate(boxes) for c in range(len(clusters))),
                       key=lambda p: (-p[0], p[1], p[2]))
        used_boxes: set[int] = set()
        used_clusters: set[int] = set()
        for score, b, c in pairs:
            if score < threshold:
                break
            if b not in used_boxes and c not in used_clusters:
                clusters[c].append(boxes[b])
                used_boxes.add(b)
                used_clusters.add(c)
        clusters += [[box] for b, box in enumerate(boxes) if b not in used_boxes]
    return clusters


def merged_annotation(members: list[Box], labelers: int, number: int) -> dict:
    """One cluster as a Kili rectangle annotation, of its majority class."""
    votes = Counter(box.category for box in members)
    category = min(votes, key=lambda name: (-votes[name], name))
    x0, y0, x1, y1 = mean_box(members)
    return {
        "mid": f"consensus-{number}",
        "type": "rectangle",
        "categories": [{"name": category, "confidence": round(100 * votes[category] / labelers)}],
        "boundingPoly": [{"normalizedVertices": [
            {"x": x0, "y": y1}, {"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1},
        ]}],
        "children": {},
    }


class PluginHandler(PluginCore):
    """Merges consensus labels into one PREDICTION for review; see the module docstring."""

    AGREEMENT_THRESHOLD = 0.7
    IOU_THRESHOLD = 0.5
    DEFAULT_CONSENSUS_SIZE = 2
    MODEL_NAME = "consensus-resolution"

    def on_submit(self, label: dict, asset_id: str) -> None:
        labels = self._labels(asset_id)
        if labels is None:
            return
        project = self._project()
        interface = project.get("jsonInterface") or {}
        size = project.get("minConsensusSize")
        if not isinstance(size, int) or size < 1:
            size = self.DEFAULT_CONSENSUS_SIZE
        latest = latest_labels(labels)
        if len(latest) < size:
            self.logger.info(f"Asset {asset_id}: {len(latest)} of {size} consensus labels in, waiting")
            return
        newest = max(latest.values(), key=label_time)
        if any(l.get("labelType") == "PREDICTION" and l.get("modelName") == self.MODEL_NAME
               and label_time(l) >= label_time(newest) for l in labels):
            self.logger.info(f"Asset {asset_id}: already merged after the latest label, nothing to do")
            return

        proposal = self._merge(asset_id, latest, interface)
        if proposal is not None:
            self.kili.append_labels(
                project_id=self.project_id,
                asset_id_array=[asset_id],
                json_response_array=[proposal],
                label_type="PREDICTION",
                model_name=self.MODEL_NAME,
            )
        mark = consensus_mark(labels, interface or None)
        if mark is not None:
            self.logger.info(f"Asset {asset_id}: consensus mark {mark:.2f} among {len(latest)} labelers")
            metadata = {**self._metadata(asset_id), "consensusMark": round(mark, 4)}
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[metadata])
            if mark < self.AGREEMENT_THRESHOLD:
                self.kili.create_issues(
                    project_id=self.project_id,
                    label_id_array=[newest["id"]],
                    text_array=[
                        f"Low consensus: mark {mark:.2f} among {len(latest)} labelers (below "
                        f"{self.AGREEMENT_THRESHOLD})"
                        + (f"; compare with the {self.MODEL_NAME} proposal" if proposal else "")
                    ],
                )
        self.kili.add_to_review(asset_ids=[asset_id])

    def _merge(self, asset_id: str, latest: dict[Any, dict], interface: dict) -> dict | None:
        """The combined jsonResponse of the labelers' rectangles, or None without any box."""
        responses = {str(author): label_response(label) for author, label in latest.items()}
        jobs = object_jobs(interface, list(responses.values()))
        proposal: dict[str, dict] = {}
        for job in jobs:
            boxes: dict[str, list[Box]] = {}
            for labeler, response in responses.items():
                value = response.get(job)
                annotations = value.get("annotations") if isinstance(value, dict) else None
                if not isinstance(annotations, list):
                    self.logger.info(f"Asset {asset_id}: {labeler} has no {job} annotations")
                    annotations = []
                shapes = [rectangle(a) for a in annotations]
                if None in shapes:
                    self.logger.warning(f"Asset {asset_id}: {shapes.count(None)} {job} annotation(s) "
                                        f"of {labeler} are not classed rectangles, left out")
                boxes[labeler] = [Box(labeler, *shape) for shape in shapes if shape is not None]
            if not any(boxes.values()):
                continue
            clusters = cluster(boxes, self.IOU_THRESHOLD)
            kept = [c for c in clusters if 2 * len(c) > len(responses)]
            self.logger.info(f"Asset {asset_id}: {job}: {len(clusters)} cluster(s), {len(kept)} "
                             "backed by a majority of labelers")
            proposal[job] = {"annotations": [
                merged_annotation(c, len(responses), n) for n, c in enumerate(kept, 1)]}
        if not proposal:
            self.logger.warning(f"Asset {asset_id}: no object-detection box to merge")
            return None
        return proposal

    def _labels(self, asset_id: str) -> list[dict] | None:
        """All the asset's labels, or None when the event does not carry them."""
        try:
            return self.kili.labels(project_id=self.project_id, asset_id=asset_id,
                                    fields=LABEL_FIELDS, disable_tqdm=True)
        except ContextUnavailable as missing:
            self.logger.warning(f"Asset {asset_id}: cannot read its labels, skipped ({missing})")
            return None

    def _project(self) -> dict:
        """The project's interface and consensus size, as far as the platform tells."""
        try:
            return (self.kili.projects(project_id=self.project_id, fields=["jsonInterface", "minConsensusSize"],
                                       disable_tqdm=True) or [{}])[0]
        except ContextUnavailable:
            self.logger.warning("The project is unknown: default consensus size, no interface")
            return {}

    def _metadata(self, asset_id: str) -> dict:
        try:
            assets = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])
        except ContextUnavailable:
            return {}  # a hand-written event without the asset: nothing known to keep
        return dict(assets[0].get("jsonMetadata") or {}) if assets else {}
