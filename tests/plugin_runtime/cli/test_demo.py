"""``plugin-runtime demo``: numbers that add up and say why, and issues shown as they stand."""

from __future__ import annotations

import subprocess
import sys

from tests.plugin_runtime.service_fixtures import REPO


def test_the_demo_explains_its_numbers_and_the_bot_solves_its_issue_once_a_newer_label_passes() -> None:
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "demo", "--sandbox", "process"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr  # on pipes: whole lines only
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "events: 8 sent (7 onSubmit, 1 onReview), 4 caused by the bot's actions (4 onSendBackToQueue)",
        "runs: 7 (7 succeeded, 0 failed): one per event of a type the bot has a hook for (onSubmit)",
        "no run for 5 event(s) of types invoice-qa has no hook for: onReview (1 sent), onSendBackToQueue (4 caused)",
    ]
    rows = {line.split()[0]: line for line in lines if line.startswith("asset-")}
    # asset-02's German IBAN was corrected by label-02b, which passed: the bot solved its own issue.
    assert "100%  solved: IBAN number should start with FR" in rows["asset-02"]
    assert "ONGOING         50%  open: Currency should be EUR or USD, not 'GBP'" in rows["asset-03"]
    assert rows["asset-01"].endswith("100%  -")
    assert sum("open:" in line for line in lines) == 4  # asset-03, asset-04 (two), asset-05
    assert "the bot then marks the issues it opened\n'solved'" in done.stdout  # the legend says what it means
    steps = [line for line in done.stderr.splitlines() if line.startswith("==> ")]
    assert steps[3].startswith("==> invoice-qa v1 active on proj-invoices; sending its 8 recorded events")
    # As processes nothing is built: the step says what happens instead of promising an image.
    assert steps[2].endswith("as invoice-qa (checking and loading it once: no image as processes)")
