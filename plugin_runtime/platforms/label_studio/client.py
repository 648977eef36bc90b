"""Label Studio's REST API, as the runtime's bot user: both kinds of token, typed errors.

A *legacy* token is sent as ``Authorization: Token <token>``. A *personal access token* is a
JWT refresh token: it is exchanged at ``/api/token/refresh/`` for a short-lived access token
sent as ``Bearer``, exchanged again shortly before it expires (or once when refused). The
refresh token itself is never sent anywhere else.

Errors: no answer, a timeout or a 5xx is ``PlatformUnavailable`` (retried by the outbox), a
refused token ``PlatformTokenRefused``, a 404 ``PlatformNotFound``, another 4xx
``PlatformRefused`` with Label Studio's reason. A read past its deadline is ``TimeoutError``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from typing import Any

import requests

from plugin_runtime.errors import PlatformNotFound, PlatformRefused, PlatformTokenRefused, PlatformUnavailable

#: Seconds any one request may take (Label Studio answers in milliseconds when it is well).
TIMEOUT_S = 10.0
#: An access token is exchanged again this many seconds before it expires.
_REFRESH_MARGIN_S = 30.0


def _claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, read without checking its signature (only Label Studio can), or
    None when ``token`` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def token_kind(token: str) -> str:
    """``personal`` (a JWT refresh token) or ``legacy``; PlatformRefused for a JWT that is
    not a refresh token (an access token expires within minutes)."""
    claims = _claims(token)
    if claims is None:
        return "legacy"
    if claims.get("token_type") != "refresh":
        raise PlatformRefused(f"this token is a JWT of type {claims.get('token_type')!r}: give the personal access "
                              "token (Account & Settings > Personal Access Token), or a legacy token")
    return "personal"


class LabelStudioClient:
    def __init__(self, url: str, token: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.kind = token_kind(token)
        self._token, self.timeout_s = token, timeout_s
        self.session = requests.Session()
        # Proxies of the environment are for the outside world; Label Studio is reached directly.
        self.session.trust_env = False
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_expires = 0.0

    def close(self) -> None:
        self.session.close()

    # Calls -----------------------------------------------------------------------------------

    def get(self, path: str, deadline: float | None = None, **params: Any) -> Any:
        return self.request("GET", path, params=params or None, deadline=deadline)

    def post(self, path: str, body: Any, deadline: float | None = None) -> Any:
        return self.request("POST", path, json=body, deadline=deadline)

    def patch(self, path: str, body: Any, deadline: float | None = None) -> Any:
        return self.request("PATCH", path, json=body, deadline=deadline)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, deadline: float | None = None, **kwargs: Any) -> Any:
        response = self._send(method, path, self._authorization(), deadline, **kwargs)
        if response.status_code == 401 and self.kind == "personal":
            # The access token expired early or was revoked with its refresh token: once more.
            response = self._send(method, path, self._authorization(renew=True), deadline, **kwargs)
        return self._answer(method, path, response)

    def _send(self, method: str, path: str, authorization: str, deadline: float | None,
              **kwargs: Any) -> requests.Response:
        timeout = self.timeout_s
        if deadline is not None:
            timeout = min(timeout, deadline - time.perf_counter())
            if timeout <= 0:
                raise TimeoutError(f"{method} {path}: no time left")
        try:
            return self.session.request(method, self.url + path, headers={"Authorization": authorization},
                                        timeout=timeout, **kwargs)
        except requests.Timeout:
            if deadline is not None and time.perf_counter() >= deadline:
                raise TimeoutError(f"{method} {path}: no answer before the deadline") from None
            raise PlatformUnavailable(f"Label Studio at {self.url} did not answer {method} {path} within "
                                      f"{timeout:.0f} s") from None
        except requests.RequestException as error:
            raise PlatformUnavailable(f"cannot reach Label Studio at {self.url} ({type(error).__name__}): is it "
                                      "running, and is the URL right?") from None

    def _answer(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status < 400:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise PlatformUnavailable(f"{method} {path} answered {status} with something that is not JSON: "
                                          f"is {self.url} Label Studio?") from None
        reason = _reason(response)
        if status in (401, 403):
            raise PlatformTokenRefused(f"Label Studio refused the runtime's {self.kind} token ({status}: {reason})")
        if status == 404:
            raise PlatformNotFound(f"Label Studio has no {path} ({reason})")
        if status >= 500 or status == 429:
            raise PlatformUnavailable(f"Label Studio failed on {method} {path} ({status}: {reason})")
        raise PlatformRefused(f"Label Studio refused {method} {path} ({status}: {reason})")

    # Tokens ----------------------------------------------------------------------------------

    def _authorization(self, renew: bool = False) -> str:
        if self.kind == "legacy":
            return f"Token {self._token}"
        with self._lock:
            if renew or self._access is None or time.time() >= self._access_expires - _REFRESH_MARGIN_S:
                self._access, self._access_expires = self._exchange()
            return f"Bearer {self._access}"

    def _exchange(self) -> tuple[str, float]:
        """A fresh access token for the refresh token, and when it expires."""
        try:
            response = self.session.post(f"{self.url}/api/token/refresh/", json={"refresh": self._token},
                                         timeout=self.timeout_s)
        except requests.RequestException as error:
            raise PlatformUnavailable(f"cannot reach Label Studio at {self.url} ({type(error).__name__}): is it "
                                      "running, and is the URL right?") from None
        if response.status_code in (400, 401, 403):
            raise PlatformTokenRefused(f"Label Studio refused the runtime's personal access token "
                                       f"({response.status_code}: {_reason(response)}): it may have been revoked "
                                       "or have expired; create another and connect again")
        body = self._answer("POST", "/api/token/refresh/", response)
        access = body.get("access") if isinstance(body, dict) else None
        if not isinstance(access, str):
            raise PlatformUnavailable("Label Studio's /api/token/refresh/ answered without an access token")
        expires = (_claims(access) or {}).get("exp")
        return access, float(expires) if isinstance(expires, (int, float)) else time.time() + 60


def _reason(response: requests.Response) -> str:
    """Label Studio's own words for a refusal, short."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no reason given"
    if isinstance(body, dict):
        found = body.get("validation_errors") or body.get("detail") or body
        return json.dumps(found, ensure_ascii=False)[:500] if not isinstance(found, str) else found[:500]
    return json.dumps(body, ensure_ascii=False)[:500]
