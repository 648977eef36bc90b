"""The embedded platform: projects, assets and labels, in Kili's shapes. A submitted label
emits its event (onSubmit, onReview) in the same transaction. Every change and view goes through
the platform's admin methods (``platforms.embedded_admin``): no route holds a connection.

Every route answers with ``response_model_exclude_unset``: a key the record does not carry
stays absent (a label's "latest" flags exist only in its asset's list of labels).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from plugin_runtime.api.deps import RuntimeDep, admin
from plugin_runtime.api.models import (
    Asset, LabelSubmitted, NewAsset, NewLabel, NewProject, Project, ProjectChanges, ProjectUpdated, refusals,
)

router = APIRouter(tags=["platform"], dependencies=[Depends(admin)])


@router.get("/v1/projects", response_model=list[Project], response_model_exclude_unset=True,
            responses=refusals(401))
def projects(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return runtime.platform.list_projects()


@router.post("/v1/projects", status_code=201, response_model=Project, response_model_exclude_unset=True,
             responses=refusals(401, 409, 422))
def create_project(body: NewProject, runtime: RuntimeDep) -> dict[str, Any]:
    settings = {"minConsensusSize": body.min_consensus_size, "consensusTotCoverage": body.consensus_tot_coverage,
                "reviewCoverage": body.review_coverage}
    return runtime.platform.add_project(body.id, body.title, body.json_interface, body.input_type, settings)


@router.get("/v1/projects/{project_id}", response_model=Project, response_model_exclude_unset=True,
            responses=refusals(401, 404, 422))
def project(project_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.platform.show_project(project_id)


@router.patch("/v1/projects/{project_id}", response_model=ProjectUpdated, response_model_exclude_unset=True,
              summary="Change project settings (emits onProjectUpdated with what changed)",
              responses=refusals(400, 401, 404, 422))
def update_project(project_id: str, body: ProjectChanges, runtime: RuntimeDep) -> dict[str, Any]:
    changes = body.kili_names()
    if not runtime.platform.pending_settings(project_id, changes):
        return {"event_id": None, "settings_updated": [], "project": runtime.platform.show_project(project_id)}
    event = runtime.dispatcher.submit_change(lambda: runtime.platform.change_settings(project_id, changes))
    return {"event_id": event["id"], "settings_updated": event["settings_updated"],
            "project": event["context"]["project"]}


@router.get("/v1/projects/{project_id}/assets", response_model=list[Asset], response_model_exclude_unset=True,
            responses=refusals(401, 404, 422))
def assets(project_id: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return runtime.platform.list_assets(project_id)  # 404 for an unknown project, not an empty list


@router.post("/v1/projects/{project_id}/assets", status_code=201, response_model=Asset,
             response_model_exclude_unset=True, responses=refusals(401, 404, 409, 422))
def create_asset(project_id: str, body: NewAsset, runtime: RuntimeDep) -> dict[str, Any]:
    record = {"id": body.id, "externalId": body.external_id, "content": body.content,
              "jsonMetadata": body.json_metadata or {}, "priority": body.priority}
    return runtime.platform.add_asset(project_id, record)


@router.get("/v1/projects/{project_id}/assets/{asset_id}", response_model=Asset,
            response_model_exclude_unset=True, responses=refusals(401, 404, 422))
def asset(project_id: str, asset_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.platform.show_asset(project_id, asset_id)


@router.post("/v1/projects/{project_id}/assets/{asset_id}/labels", status_code=201, response_model=LabelSubmitted,
             response_model_exclude_unset=True, summary="Submit a label (DEFAULT emits onSubmit, REVIEW onReview)",
             responses=refusals(400, 401, 404, 409, 422))
def submit(project_id: str, asset_id: str, body: NewLabel, runtime: RuntimeDep) -> dict[str, Any]:
    label = {"id": body.id, "labelType": body.label_type, "jsonResponse": body.json_response,
             "authorId": body.author_id, "secondsToLabel": body.seconds_to_label}
    event = runtime.dispatcher.submit_change(lambda: runtime.platform.submit(project_id, asset_id, label))
    return {"event_id": event["id"], "label": event["label"]}
