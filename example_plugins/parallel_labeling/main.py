"""Parallel labeling bot: specialised groups label their own jobs; the bot puts them together.

``config.json`` (next to this file) says which jobs each group of labelers owns::

    {"groups": {"text-experts": {"jobs": ["TRANSCRIPTION_JOB"]},
                "image-experts": {"jobs": ["OBJECT_DETECTION_JOB"]}}}

A group's submission on an asset is the latest DEFAULT label that answers every job of the
group (a job is answered by a category, a non-blank text or at least one annotation). On every
submit the bot looks at the asset's labels:

- while some group has not submitted, it logs which groups (and jobs) are still missing;
- once every group has, it builds one label, each job taken from its owning group's
  submission, appends it for the reviewer as a PREDICTION of model ``parallel-aggregate`` and
  puts the asset in review.

It aggregates once: when a ``parallel-aggregate`` PREDICTION newer than every group's
submission exists, it does nothing; a group that resubmits afterwards gets a new aggregate.
The configuration is checked when the plugin loads (an upload with a broken ``config.json``
fails with the reason); jobs the project's interface does not know are logged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from plugin_sdk import ContextUnavailable, PluginCore
from plugin_sdk.metrics import label_response, label_time

LABEL_FIELDS = ["id", "labelType", "authorId", "createdAt", "jsonResponse", "modelName"]


def load_groups(path: Path) -> dict[str, list[str]]:
    """Each group of ``config.json`` with the jobs it owns; ValueError naming what is wrong."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name}: cannot read the groups: {error}") from None
    groups = config.get("groups") if isinstance(config, dict) else None
    if not isinstance(groups, dict) or not groups:
        raise ValueError(f'{path.name}: expected {{"groups": {{"<group>": {{"jobs": ["<JOB>", ...]}}}}}}')
    owners: dict[str, str] = {}
    for name, group in groups.items():
        jobs = group.get("jobs") if isinstance(group, dict) else None
        if not isinstance(jobs, list) or not jobs or not all(isinstance(j, str) and j for j in jobs):
            raise ValueError(f"{path.name}: group {name!r} needs a non-empty list of job names under 'jobs'")
        for job in jobs:
            if job in owners:
                raise ValueError(f"{path.name}: job {job!r} belongs to both {owners[job]!r} and {name!r}")
            owners[job] = name
    return {name: list(group["jobs"]) for name, group in groups.items()}


def answered(value: Any) -> bool:
    """Whether a job's value holds an answer: a category, a non-blank text or an annotation."""
    if not isinstance(value, dict):
        return False
    text = value.get("text")
    return bool(value.get("categories")) or bool(value.get("annotations")) or (
        isinstance(text, str) and bool(text.strip()))


def submissions(labels: list[dict], groups: dict[str, list[str]]) -> dict[str, dict]:
    """Each group's submission: its latest DEFAULT label answering all the group's jobs."""
    ranked = sorted(((label_time(l), n), l) for n, l in enumerate(labels)
                    if l.get("labelType") == "DEFAULT")
    found: dict[str, dict] = {}
    for _, label in ranked:  # oldest first: a later label replaces an earlier one
        response = label_response(label)
        for group, jobs in groups.items():
            if all(answered(response.get(job)) for job in jobs):
                found[group] = label
    return found


class PluginHandler(PluginCore):
    """Aggregates the groups' jobs into one PREDICTION for review; see the module docstring."""

    MODEL_NAME = "parallel-aggregate"
    CONFIG_FILE = Path(__file__).with_name("config.json")

    def __init__(self, kili: Any, project_id: str, logger: logging.Logger | None = None) -> None:
        super().__init__(kili, project_id, logger)
        self.groups = load_groups(self.CONFIG_FILE)

    def on_submit(self, label: dict, asset_id: str) -> None:
        labels = self._labels(asset_id)
        if labels is None:
            return
        self._check_jobs()
        found = submissions(labels, self.groups)
        if not any(found.get(group, {}).get("id") == label.get("id") for group in self.groups):
            self.logger.info(f"Asset {asset_id}: label {label.get('id')} answers no group's jobs")
        missing = [group for group in self.groups if group not in found]
        if missing:
            waiting = "; ".join(f"{g} ({', '.join(self.groups[g])})" for g in missing)
            self.logger.info(f"Asset {asset_id}: waiting for {waiting}")
            return
        newest = max(label_time(l) for l in found.values())
        if any(l.get("labelType") == "PREDICTION" and l.get("modelName") == self.MODEL_NAME
               and label_time(l) >= newest for l in labels):
            self.logger.info(f"Asset {asset_id}: already aggregated after the groups' labels, nothing to do")
            return

        aggregate = {job: label_response(found[group])[job]
                     for group, jobs in self.groups.items() for job in jobs}
        sources = ", ".join(f"{group} from {found[group].get('id')} ({found[group].get('authorId')})"
                            for group in self.groups)
        self.logger.info(f"Asset {asset_id}: aggregated {sources}")
        self.kili.append_labels(
            project_id=self.project_id,
            asset_id_array=[asset_id],
            json_response_array=[aggregate],
            label_type="PREDICTION",
            model_name=self.MODEL_NAME,
        )
        self.kili.add_to_review(asset_ids=[asset_id])

    def _check_jobs(self) -> None:
        """Log the configured jobs the project's interface does not have (a typo, a rename)."""
        try:
            [project] = self.kili.projects(project_id=self.project_id, fields=["jsonInterface"],
                                           disable_tqdm=True)
        except (ContextUnavailable, ValueError):
            return
        interface = project.get("jsonInterface")
        jobs = interface.get("jobs") if isinstance(interface, dict) else None
        if isinstance(jobs, dict):
            unknown = [job for group in self.groups.values() for job in group if job not in jobs]
            if unknown:
                self.logger.warning(f"config.json names jobs the project does not have: {', '.join(unknown)}")

    def _labels(self, asset_id: str) -> list[dict] | None:
        """All the asset's labels, or None when the event does not carry them."""
        try:
            return self.kili.labels(project_id=self.project_id, asset_id=asset_id,
                                    fields=LABEL_FIELDS, disable_tqdm=True)
        except ContextUnavailable as missing:
            self.logger.warning(f"Asset {asset_id}: cannot read its labels, skipped ({missing})")
            return None
