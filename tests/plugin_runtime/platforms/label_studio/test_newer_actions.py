"""Kili's newer write methods on a project connected to Label Studio: refused by name, with the
reason, before they reach it (never marked applied with nothing done). No Label Studio needed:
the refusal is decided from the action alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_runtime.config import Settings
from plugin_runtime.platforms.label_studio.platform import LabelStudioPlatform
from plugin_runtime.store import Store
from plugin_runtime.store.connections import Connection


@pytest.mark.parametrize("action", [
    {"type": "add_metadata", "asset_id": "1", "json_metadata": {"a": 1}},
    {"type": "set_metadata", "asset_id": "1", "json_metadata": {"a": 1}},
    {"type": "update_issue_status", "asset_id": "1", "issue_id": "i", "status": "SOLVED"},
    {"type": "create_question", "asset_id": "1", "text": "?"},
])
def test_actions_label_studio_does_not_take_are_refused_naming_them(tmp_path: Path, action: dict) -> None:
    connection = Connection("ls-1", "label-studio", {"url": "http://127.0.0.1:9", "project": 1, "bot_user_id": 1},
                            "secret", {"token": "t"}, "t", "t")
    store = Store(tmp_path / "db.sqlite")
    try:
        platform = LabelStudioPlatform(connection, store, Settings(data_dir=tmp_path / "data"))
        reason = platform._cannot(action)
    finally:
        store.close()
    assert reason is not None and reason.startswith(f"{action['type']}: the Label Studio platform does not apply it")
