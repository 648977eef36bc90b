"""Signed webhooks, in the Standard Webhooks manner.

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``). A secret is any
non-empty string: with a ``whsec_`` prefix the rest is base64 (as Standard Webhooks), otherwise
its UTF-8 bytes are the key. Several secrets may be valid at once, for rotation.

Hand-written (a few lines of hmac) rather than the ``standardwebhooks`` package, whose key
reading differs for secrets without the ``whsec_`` prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from plugin_runtime.errors import SignatureError

__all__ = ["SignatureError", "TOLERANCE_S", "headers", "key", "sign", "verify"]

TOLERANCE_S = 300


def key(secret: str) -> bytes:
    if not secret:
        raise ValueError("a webhook secret is a non-empty string")
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error as error:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from error
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a body."""
    digest = hmac.new(key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers a sender adds."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, message_id, stamp, body)}


def verify(secrets: Iterable[str], request_headers: Mapping[str, str], body: bytes,
           now: float | None = None, tolerance: int = TOLERANCE_S) -> str:
    """Check the headers of a request; returns its ``webhook-id`` or raises SignatureError."""
    message_id = request_headers.get("webhook-id")
    stamp = request_headers.get("webhook-timestamp")
    signatures = request_headers.get("webhook-signature")
    missing = [n for n, v in (("webhook-id", message_id), ("webhook-timestamp", stamp),
                              ("webhook-signature", signatures)) if not v]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)} (requests are signed, Standard Webhooks)")
    try:
        timestamp = int(stamp)  # type: ignore[arg-type]
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"webhook-timestamp is {int(current - timestamp)} s away from now (tolerance {tolerance} s): "
            "a replayed or badly clocked request")
    expected = [sign(s, message_id, timestamp, body).split(",", 1)[1] for s in secrets]  # type: ignore[arg-type]
    for candidate in signatures.split():  # type: ignore[union-attr]
        version, _, value = candidate.partition(",")
        if version == "v1" and any(hmac.compare_digest(value, e) for e in expected):
            return message_id  # type: ignore[return-value]
    raise SignatureError("no valid signature: the body was not signed with a known secret")
