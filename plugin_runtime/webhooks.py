"""Signed webhooks: ``plugin_runtime.intake.webhooks``, importable from here, its home before
the intake was a package."""

from plugin_runtime.intake.webhooks import TOLERANCE_S, SignatureError, headers, key, sign, verify

__all__ = ["SignatureError", "TOLERANCE_S", "headers", "key", "sign", "verify"]
