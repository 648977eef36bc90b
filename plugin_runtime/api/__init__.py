"""The HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

``POST /v1/events`` is the signed webhook intake; everything else under ``/v1`` needs the
admin bearer token (or the dashboard's session). Bad input is a 4xx whose ``detail`` says what
is wrong, and writes nothing. ``/ui`` is the dashboard, ``/metrics`` the Prometheus metrics.

Modules: ``app`` (``create_app``, the error-kind to status table), ``deps`` (the runtime, the
admin check, bounded bodies), ``models`` (request and response bodies), one router per area:
``health``, ``events``, ``plugins``, ``runs``, ``platform``, ``metrics``; ``ui`` the dashboard.
"""

from plugin_runtime.api.app import create_app

__all__ = ["create_app"]
