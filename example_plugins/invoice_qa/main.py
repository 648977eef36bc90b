"""Invoice QA bot: checks the payment information of every submitted invoice label.

Rules (from the labeling team's guidelines):
- the IBAN must start with FR;
- the currency must be EUR or USD.

On a violation it opens an issue on the offending annotation and sends the asset back to the
labeling queue. When a newer label passes every rule, it resolves the issues it opened itself on
that asset (those a reviewer opened are left to the reviewer). On every submit it writes the
labeling accuracy (the share of rules the label passes, in %) into the asset's
``json_metadata``, keeping the metadata already there.

It reads the values where invoice projects put them: in the children of an object-detection
annotation whose category is IBAN or CURRENCY (``JOB_0`` with a transcription child), or in a
top-level transcription job named like IBAN / CURRENCY, or a CURRENCY classification job.
"""

from __future__ import annotations


from plugin_sdk import ContextUnavailable, PluginCore

ALLOWED_CURRENCIES = ("EUR", "USD")
#: How the bot's own issues begin: it resolves those, never a reviewer's.
OWN_ISSUES = ("IBAN number should start with FR", "Currency should be EUR or USD", "No IBAN was annotated",
              "No CURRENCY was annotated")


def _texts(node: dict) -> list[str]:
    """Transcribed texts of a job or of an annotation's children."""
    if isinstance(node.get("text"), str):
        return [node["text"]]
    out: list[str] = []
    for child in (node.get("children") or {}).values():
        if isinstance(child, dict):
            out += _texts(child)
    return out


def find_fields(json_response: dict) -> list[tuple[str, str, str | None]]:
    """``(field, value, object mid or None)`` for every IBAN and CURRENCY in a label."""
    found: list[tuple[str, str, str | None]] = []
    for job_name, job in json_response.items():
        if not isinstance(job, dict):
            continue
        name = job_name.upper()
        for field in ("IBAN", "CURRENCY"):
            if field in name:
                found += [(field, text, None) for text in _texts(job)]
                found += [(field, c["name"], None) for c in job.get("categories") or [] if c.get("name")]
        for annotation in job.get("annotations") or []:
            categories = {c.get("name", "").upper() for c in annotation.get("categories") or []}
            for field in ("IBAN", "CURRENCY"):
                if field in categories:
                    found += [(field, text, annotation.get("mid")) for text in _texts(annotation)]
    return found


def check_label(json_response: dict) -> tuple[list[tuple[str, str | None]], int]:
    """The rule violations of a label as ``(issue text, object mid)``, and how many checks ran."""
    issues: list[tuple[str, str | None]] = []
    fields = find_fields(json_response)
    checks = 0
    for field, value, mid in fields:
        checks += 1
        value = value.strip()
        if field == "IBAN" and not value.replace(" ", "").startswith("FR"):
            issues.append((f"IBAN number should start with FR (found {value[:4]!r}...)", mid))
        if field == "CURRENCY" and value not in ALLOWED_CURRENCIES:
            issues.append((f"Currency should be EUR or USD, not {value!r}", mid))
    for field in ("IBAN", "CURRENCY"):
        if not any(f == field for f, _, _ in fields):
            checks += 1
            issues.append((f"No {field} was annotated: the payment information needs one", None))
    return issues, checks


class PluginHandler(PluginCore):
    """Checks IBAN and currency on submit; see the module docstring."""

    def on_submit(self, label: dict, asset_id: str) -> None:
        issues, checks = check_label(label.get("jsonResponse") or {})
        accuracy = round(100 * (checks - len(issues)) / checks, 1)
        self.logger.info(f"Asset {asset_id}: {len(issues)} issue(s), accuracy {accuracy}%")

        if issues:
            self.kili.create_issues(
                project_id=self.project_id,
                label_id_array=[label["id"]] * len(issues),
                object_mid_array=[mid for _, mid in issues],
                text_array=[text for text, _ in issues],
            )
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        else:
            for issue in self._own_open_issues(asset_id):
                self.kili.update_issue_status(issue_id=issue["id"], status="SOLVED")

        # json_metadata replaces the asset's metadata: keep what is already there.
        metadata = {**self._metadata(asset_id), "accuracy": accuracy}
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[metadata])

    def _own_open_issues(self, asset_id: str) -> list[dict]:
        try:
            issues = self.kili.issues(project_id=self.project_id, asset_id=asset_id, status="OPEN",
                                      fields=["id", "text"])
        except ContextUnavailable:
            # A hand-written event without context: no issue known to resolve.
            return []
        return [issue for issue in issues if str(issue.get("text") or "").startswith(OWN_ISSUES)]

    def _metadata(self, asset_id: str) -> dict:
        try:
            assets = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])
        except ContextUnavailable:
            # A hand-written event without context: nothing known to keep.
            return {}
        return dict(assets[0].get("jsonMetadata") or {}) if assets else {}
