"""Keyword arguments of the real Kili client's read methods (kili 26.2), so the handle accepts
exactly what code written against Kili passes. ``tests/plugin_sdk/test_kili_compat.py`` checks
these against the installed ``kili`` package, so drift shows up as a failing test."""

KILI_READ_PARAMETERS: dict[str, tuple[str, ...]] = {
    "labels": (
        "project_id", "asset_id", "asset_status_in", "asset_external_id_in",
        "asset_external_id_strictly_in", "asset_step_name_in", "asset_step_status_in",
        "asset_group_name_in", "asset_group_name_not_in", "author_in", "created_at",
        "created_at_gte", "created_at_lte", "fields", "first", "honeypot_mark_gte",
        "honeypot_mark_lte", "id_contains", "label_id", "skip", "type_in", "user_id",
        "disable_tqdm", "category_search", "output_format", "as_generator", "asset_step_id_in",
    ),
    "count_labels": (
        "project_id", "asset_id", "asset_status_in", "asset_external_id_in",
        "asset_external_id_strictly_in", "asset_step_name_in", "asset_step_status_in",
        "asset_group_name_in", "asset_group_name_not_in", "author_in", "created_at",
        "created_at_gte", "created_at_lte", "honeypot_mark_gte", "honeypot_mark_lte", "label_id",
        "type_in", "user_id", "category_search", "id_contains", "asset_step_id_in",
    ),
    "assets": (
        "project_id", "asset_id", "skip", "fields", "asset_id_in", "asset_id_not_in",
        "disable_tqdm", "first", "format", "label_author_in", "label_created_at", "label_type_in",
        "metadata_where", "updated_at_gte", "updated_at_lte", "label_category_search",
        "download_media", "local_media_dir", "created_at_gte", "created_at_lte",
        "honeypot_mark_gte", "honeypot_mark_lte", "consensus_mark_gte", "consensus_mark_lte",
        "inference_mark_gte", "inference_mark_lte", "label_labeler_in", "label_labeler_not_in",
        "label_reviewer_in", "label_reviewer_not_in", "assignee_in", "assignee_not_in",
        "label_consensus_mark_gte", "label_consensus_mark_lte", "label_created_at_gte",
        "label_created_at_lte", "label_honeypot_mark_gte", "label_honeypot_mark_lte",
        "issue_type", "issue_status", "external_id_strictly_in", "external_id_in",
        "label_output_format", "skipped", "status_in", "step_name_and_status_in",
        "step_name_and_status_not_in", "step_name_in", "step_name_not_in", "step_status_in",
        "step_status_not_in", "group_name_in", "group_name_not_in", "as_generator", "step_id_in",
        "step_id_not_in", "step_id_and_status_in", "step_id_and_status_not_in",
    ),
    "count_assets": (
        "project_id", "asset_id", "asset_id_in", "asset_id_not_in", "metadata_where", "status_in",
        "label_type_in", "label_author_in", "label_created_at", "skipped", "updated_at_gte",
        "updated_at_lte", "label_category_search", "created_at_gte", "created_at_lte",
        "honeypot_mark_gte", "honeypot_mark_lte", "consensus_mark_gte", "consensus_mark_lte",
        "inference_mark_gte", "inference_mark_lte", "label_labeler_in", "label_labeler_not_in",
        "label_reviewer_in", "label_reviewer_not_in", "assignee_in", "assignee_not_in",
        "label_consensus_mark_gte", "label_consensus_mark_lte", "label_created_at_gte",
        "label_created_at_lte", "label_honeypot_mark_gte", "label_honeypot_mark_lte",
        "issue_type", "issue_status", "external_id_strictly_in", "external_id_in", "step_name_in",
        "step_name_not_in", "step_status_in", "step_status_not_in", "step_name_and_status_in",
        "step_name_and_status_not_in", "group_name_in", "group_name_not_in", "step_id_in",
        "step_id_not_in", "step_id_and_status_in", "step_id_and_status_not_in",
    ),
    "projects": (
        "project_id", "search_query", "should_relaunch_kpi_computation", "updated_at_gte",
        "updated_at_lte", "archived", "starred", "tags_in", "organization_id", "fields",
        "deleted", "first", "skip", "disable_tqdm", "as_generator",
    ),
    "count_projects": (
        "project_id", "search_query", "should_relaunch_kpi_computation", "updated_at_gte",
        "updated_at_lte", "archived", "deleted", "organization_id", "starred", "tags_in",
    ),
    "issues": (
        "project_id", "fields", "first", "skip", "disable_tqdm", "asset_id", "asset_id_in", "issue_type",
        "status", "as_generator",
    ),
    "count_issues": ("project_id", "asset_id", "asset_id_in", "issue_type", "status"),
}
