"""Dashboard logins: random session ids kept in the server's memory.

The cookie holds a random id, never the admin token: a stolen cookie dies with its session
(logout, expiry, a restart) while the token stays valid for the API. Ids are kept by their
SHA-256, so the server's memory holds no usable cookie. A restart logs everyone out, which
costs an admin one login and leaves no session table to protect on disk.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque

#: Failed logins tolerated per minute from one address before the form refuses it more (a
#: guessed token, not a typo). Counted per address: counted for all, anyone could keep the
#: admin out of the dashboard by sending wrong tokens.
MAX_FAILURES_PER_MINUTE = 20
#: Addresses whose failures are remembered at most (the oldest forgotten first): memory stays bounded.
MAX_CLIENTS = 10_000
#: Sessions kept at most: logging in again and again drops the oldest, memory stays bounded.
MAX_SESSIONS = 1_000


class Sessions:
    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}  # sha256 of the id -> monotonic expiry
        self._failures: dict[str, deque[float]] = {}  # client address -> monotonic times

    def open(self) -> str:
        """A new session; returns its id (the cookie's value)."""
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for digest, expiry in list(self._expiry.items()):
                if expiry <= now:
                    del self._expiry[digest]
            while len(self._expiry) >= MAX_SESSIONS:
                del self._expiry[next(iter(self._expiry))]  # the oldest: dicts keep insertion order
            self._expiry[_digest(session_id)] = now + self.lifetime_s
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id or len(session_id) > 200:
            return False
        with self._lock:
            expiry = self._expiry.get(_digest(session_id))
        return expiry is not None and expiry > time.monotonic()

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._expiry.pop(_digest(session_id), None)

    def failed(self, client: str) -> None:
        """A login with a wrong token from ``client`` (its address)."""
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]
            self._failures.setdefault(client, deque()).append(time.monotonic())

    def throttled(self, client: str) -> bool:
        """Whether ``client`` sent too many wrong tokens in the last minute to try another now."""
        horizon = time.monotonic() - 60
        with self._lock:
            failures = self._failures.get(client)
            while failures and failures[0] < horizon:
                failures.popleft()
            if failures is not None and not failures:
                del self._failures[client]
            return failures is not None and len(failures) >= MAX_FAILURES_PER_MINUTE


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()
