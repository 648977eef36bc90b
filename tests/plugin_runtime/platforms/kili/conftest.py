"""The fake Kili GraphQL API (``fake_kili``) the Kili platform's tests drive the real ``kili``
package against: Kili's cloud cannot run here."""

from __future__ import annotations

import pytest

pytest.importorskip("kili", reason="the official kili client comes with the dev extra")

from tests.plugin_runtime.platforms.kili.fake_kili import FakeKili  # noqa: E402

INTERFACE = {"jobs": {"JOB_0": {"mlTask": "OBJECT_DETECTION", "content": {"categories": {
    "IBAN": {"name": "IBAN"}, "CURRENCY": {"name": "Currency"}}}}}}


@pytest.fixture()
def fake_kili():
    """A fake Kili with one invoice project (workflow V2, as Kili's new projects): an asset
    with a DEFAULT label then a REVIEW one, another asset with a DEFAULT label and, five minutes
    later, an open issue on it."""
    fake = FakeKili()
    fake.add_project("kili-proj", title="Invoices", json_interface=INTERFACE)
    fake.add_asset("kili-proj", "kili-asset-1", "invoice-1.pdf", jsonMetadata={"vendor": "ACME"})
    fake.add_asset("kili-proj", "kili-asset-2", "invoice-2.pdf")
    empty = {"JOB_0": {"annotations": []}}
    fake.add_label("kili-asset-1", "kili-label-1", empty, created_at="2026-03-01T10:00:00.000Z")
    fake.add_label("kili-asset-2", "kili-label-2", empty, created_at="2026-03-02T10:00:00.000Z")
    fake.add_issue("kili-asset-2", "kili-label-2", "IBAN number should start with FR",
                   created_at="2026-03-02T10:05:00.000Z")
    fake.add_label("kili-asset-1", "kili-label-3", {"JOB_0": {"annotations": []}}, label_type="REVIEW",
                   author="reviewer-1", created_at="2026-03-03T10:00:00.000Z")
    yield fake
    fake.close()
