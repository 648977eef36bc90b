"""``plugin-runtime connect label-studio`` refused: each case says what to do, exits non-zero,
shows no token, and leaves nothing connected, neither in the runtime nor in Label Studio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_runtime.platforms.label_studio.conftest import BOT, LabelStudio
from tests.plugin_runtime.platforms.label_studio.test_end_to_end import TEXT_CONFIG, cli
from tests.plugin_runtime.service_fixtures import Service, free_port, start_service, stop_service

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = start_service(tmp_path / "runtime", "process", reconcile_interval_s=1.0)
    yield running
    stop_service(running)


def refused(service: Service, url: str, token: str, project: int) -> str:
    done = cli(service, "connect", "label-studio", "--url", url, "--token", token, "--project", str(project))
    assert done.returncode == 1, done.stdout
    assert token not in done.stdout + done.stderr
    assert json.loads(cli(service, "connections", "list", "--json").stdout) == []
    return done.stderr


def test_each_refusal_says_what_to_do_and_leaves_nothing(service: Service, label_studio: LabelStudio) -> None:
    project, _ = label_studio.project("Refusals", TEXT_CONFIG, [{"text": "x"}])
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert "cannot reach Label Studio" in refused(service, nowhere, BOT[2], project)
    assert "check --url" in refused(service, nowhere, BOT[2], project)
    wrong = refused(service, label_studio.url, "not-the-token-0123456789", project)
    assert "refused the token" in wrong and "legacy token or the personal access token" in wrong
    missing = refused(service, label_studio.url, BOT[2], 99_999)
    assert "has no project 99999" in missing and "check --project" in missing
    assert label_studio.webhooks(project) == []


def test_a_label_studio_guarding_against_ssrf_is_named_with_its_setting(
        service: Service, guarded_label_studio: LabelStudio) -> None:
    project, _ = guarded_label_studio.project("Guarded", TEXT_CONFIG, [{"text": "x"}])
    message = refused(service, guarded_label_studio.url, BOT[2], project)
    assert "SSRF protection" in message and "SSRF_PROTECTION_ENABLED=false" in message
    assert guarded_label_studio.webhooks(project) == []
