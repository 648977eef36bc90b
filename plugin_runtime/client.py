"""The CLI's HTTP client for a running service: bearer token, clear errors, retries of
connection errors (urllib3's Retry), nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from plugin_runtime.errors import ClientError

__all__ = ["Client", "ClientError", "segment"]


def segment(value: object) -> str:
    """``value`` as one segment of a request's path: an id holding ``#``, ``?`` or ``/`` names
    that record, not a shorter id's (``x#y`` was sent as ``x``, its fragment dropped); ``.``
    and ``..`` are encoded too, or the URL would be read as the folder above (``runs show .``
    got the list of runs)."""
    text = str(value)
    if not text:
        raise ClientError("an empty name or id names nothing: give one")
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if text in (".", "..") else quoted


class Client:
    def __init__(self, url: str, token: str | None, connect_retries: int = 0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if connect_retries:
            # Only connection failures are retried: a request the server saw is never resent.
            retry = Retry(total=connect_retries, connect=connect_retries, read=0, status=0, other=0,
                          backoff_factor=0.5, backoff_max=5, allowed_methods=None)
            self.session.mount("http://", HTTPAdapter(max_retries=retry))
            self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def request(self, method: str, path: str, expect_json: bool = True, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 660)
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except requests.ConnectionError as error:
            raise ClientError(
                f"cannot reach the runtime at {self.url} ({error.__class__.__name__}); is "
                "`plugin-runtime serve` running? (--url / PLUGIN_RUNTIME_URL)") from None
        except requests.RequestException as error:
            raise ClientError(f"request to {self.url} failed: {error}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ClientError(f"{response.status_code}: {detail}", response.status_code)
        if not expect_json:
            return response
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)
