"""The official ``kili`` client, opened for the runtime: the package is an optional extra
(``pip install 'plugin-runtime[kili]'``) imported only here, and its schema cache is kept in
a folder the runtime names (its data directory), not in the user's home."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from plugin_runtime.errors import PlatformNotFound, PlatformRefused

#: Kili's SaaS endpoint, what the client talks to without --api-endpoint.
DEFAULT_ENDPOINT = "https://cloud.kili-technology.com/api/label/v2/graphql"


def open_client(api_key: str, api_endpoint: str | None, cache_dir: Path | None = None) -> Any:
    """A ``kili.client.Kili`` for ``api_key``; PlatformRefused saying what to do when the
    package is missing or Kili refuses the key."""
    try:
        from kili.client import Kili
        from kili.exceptions import AuthenticationFailed
    except ImportError:
        raise PlatformRefused("Kili's official client is not installed: pip install 'plugin-runtime[kili]' "
                              "(or pip install kili) where plugin-runtime runs") from None
    if not api_key:
        raise PlatformRefused("no Kili API key: pass --api-key KEY or set KILI_API_KEY (Kili: My account > API KEY)")
    params: dict[str, Any] = {}
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        params["graphql_schema_cache_dir"] = str(cache_dir)
    try:
        with warnings.catch_warnings():
            # Kili warns (key close to expiry, a newer SDK) through warnings: said once, not as errors.
            warnings.simplefilter("default")
            return Kili(api_key=api_key, api_endpoint=api_endpoint or DEFAULT_ENDPOINT, disable_tqdm=True,
                        graphql_client_params=params)
    except AuthenticationFailed:
        raise PlatformRefused(f"Kili refused the API key at {api_endpoint or DEFAULT_ENDPOINT}: check the key "
                              "(Kili: My account > API KEY) and --api-endpoint") from None
    except OSError as error:  # requests' connection errors are OSErrors
        raise PlatformRefused(f"cannot reach Kili at {api_endpoint or DEFAULT_ENDPOINT}: {error}") from None


def project(kili: Any, project_id: str, fields: list[str]) -> dict[str, Any]:
    """The Kili project, or PlatformNotFound saying the key cannot see it."""
    from kili.exceptions import NotFound

    try:
        found = kili.projects(project_id=project_id, fields=fields, disable_tqdm=True)
    except NotFound:
        found = []
    if not found:
        raise PlatformNotFound(f"Kili project {project_id!r} does not exist or this API key cannot see it")
    return found[0]
