"""The marks the embedded platform stores as labels arrive, read from only the labels they
compare, equal those computed from every label of the asset (the whole records)."""

from __future__ import annotations

import random
from pathlib import Path

from plugin_runtime.platforms import marks
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.store import Store

INTERFACE = {"jobs": {"COLOR": {"mlTask": "CLASSIFICATION", "content": {"input": "radio", "categories": {
    name: {"name": name} for name in ("WHITE", "BLACK", "RED", "BLUE")}}}}}


def test_marks_read_from_the_compared_labels_equal_those_from_every_label(tmp_path: Path) -> None:
    draw = random.Random(12)
    store = Store(tmp_path / "db.sqlite")
    platform = EmbeddedPlatform(store)
    with store.write() as db:
        platform.create_project(db, "proj", json_interface=INTERFACE)
    checked = 0
    for number in range(40):
        asset_id = f"asset-{number}"
        with store.write() as db:
            platform.create_asset(db, "proj", {"id": asset_id, "isHoneypot": number % 3 == 0})
        # Authors, types and dates drawn so that ties in createdAt and one author's several
        # labels happen: the choice of the labels compared must not depend on their JSON.
        for k in range(draw.randint(1, 14)):
            label = {"id": f"{asset_id}-l{k}", "labelType": draw.choice(["DEFAULT"] * 4 + ["REVIEW", "INFERENCE"]),
                     "authorId": draw.choice(["ann", "bob", "cy", None]),
                     "createdAt": f"2026-01-01T00:00:0{draw.randint(0, 5)}.000Z",
                     "jsonResponse": {"COLOR": {"categories": [{"name": draw.choice(["WHITE", "RED", "BLUE"])}]}}}
            with store.write() as db:
                platform.ingest(db, {"type": "onSubmit", "project_id": "proj", "asset_id": asset_id, "label": label})
                expected = marks.label_marks(platform.labels_of(db, asset_id), number % 3 == 0, INTERFACE,
                                             marks.MarkBudget())
                stored = {row["id"]: {"consensus_mark": row["consensus_mark"], "honeypot_mark": row["honeypot_mark"],
                                      "inference_mark": row["inference_mark"]}
                          for row in db.execute("SELECT * FROM labels WHERE id IN (%s)" % ", ".join("?" * len(expected)),
                                                list(expected))}
                assert stored == expected
                row = db.execute("SELECT consensus_mark, honeypot_mark, inference_mark FROM assets WHERE id = ?",
                                 (asset_id,)).fetchone()
                assert dict(zip(("consensus_mark", "honeypot_mark", "inference_mark"), row)) == marks.asset_marks(expected)
                checked += sum(value is not None for marks_ in expected.values() for value in marks_.values())
    assert checked > 50  # the draw compared labels, not only lone ones
    store.close()
