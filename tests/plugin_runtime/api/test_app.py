"""The application: each kind of error answers with its status, whatever its message says;
/openapi.json documents every answer of every route."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from plugin_runtime import errors
from plugin_runtime.api import create_app
from plugin_runtime.api.app import STATUS
from plugin_runtime.config import Settings
from plugin_runtime.server import Runtime
from tests.plugin_runtime.api.workload import serve
from tests.plugin_runtime.service_fixtures import Service

RAISED = {
    "not-found": (errors.NotFound("what you asked for does not exist"), 404),
    "platform-not-found": (errors.PlatformNotFound("asset 'a' does not exist in project 'p'"), 404),
    "registry-not-found": (errors.RegistryNotFound("plugin 'x' has no version 9"), 404),
    "conflict": (errors.Conflict("it is already so"), 409),
    # By type, not by text: a conflict whose message says "does not exist" is still a conflict.
    "platform-conflict": (errors.PlatformConflict("project 'does not exist' already exists"), 409),
    "registry-conflict": (errors.RegistryConflict("plugin 'x' already exists"), 409),
    "refused": (errors.Refused("give a name"), 400),
    "registry-refused": (errors.RegistryRefused("invalid plugin name 'X'"), 400),
    "platform-refused": (errors.PlatformRefused("only DEFAULT and REVIEW labels are submitted"), 400),
    "unauthorized": (errors.Unauthorized("who are you?"), 401),
    "signature": (errors.SignatureError("no valid signature"), 401),
    "plugin-invalid": (errors.PluginInvalid(["main.py:1: no PluginCore subclass"]), 422),
    "busy": (errors.Busy("the runtime is busy; retry later", retry_after_s=7), 429),
}


@pytest.fixture(scope="module")
def raising(tmp_path_factory: pytest.TempPathFactory):
    """The real app, plus a route raising the error named in its path."""
    data_dir: Path = tmp_path_factory.mktemp("raising")
    runtime = Runtime(Settings(data_dir=data_dir, sandbox="process", token="t", webhook_secret="s"))
    app = create_app(runtime)

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        if name == "plain":
            raise errors.PluginRuntimeError("an infrastructure failure")
        raise RAISED[name][0]

    url, server = serve(app)
    yield url
    server.should_exit = True
    runtime.close()


@pytest.mark.parametrize("name", sorted(RAISED))
def test_each_kind_of_error_answers_with_its_status_and_message(raising: str, name: str) -> None:
    error, status = RAISED[name]
    response = requests.get(f"{raising}/raise/{name}", timeout=30)
    assert response.status_code == status
    assert response.json() == {"detail": str(error)}
    assert response.headers.get("Retry-After") == ("7" if name == "busy" else None)


def test_an_error_of_no_kind_is_a_server_error(raising: str) -> None:
    # An infrastructure failure is not the client's fault: it must not read as a refusal.
    assert requests.get(f"{raising}/raise/plain", timeout=30).status_code == 500


def test_every_kind_has_one_status_and_the_module_errors_are_kinds() -> None:
    assert set(STATUS) == {errors.NotFound, errors.Conflict, errors.Refused, errors.Unauthorized, errors.Forbidden,
                           errors.PluginInvalid, errors.Busy, errors.PlatformUnavailable,
                           errors.StoreUnavailable}
    for area in (errors.RegistryError, errors.PlatformError):
        for error in area.__subclasses__():
            assert any(issubclass(error, kind) for kind in STATUS), error
    everything = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert all(issubclass(error, errors.PluginRuntimeError) for error in everything)


def test_errors_are_still_importable_from_their_old_modules() -> None:
    from plugin_runtime.client import ClientError
    from plugin_runtime.platforms.embedded import PlatformError
    from plugin_runtime.registry import RegistryError
    from plugin_runtime.scaffold import ScaffoldError
    from plugin_runtime.webhooks import SignatureError

    assert (ClientError, PlatformError, RegistryError, ScaffoldError, SignatureError) == (
        errors.ClientError, errors.PlatformError, errors.RegistryError, errors.ScaffoldError, errors.SignatureError)
    # Callers that caught ValueError still catch them.
    assert issubclass(PlatformError, ValueError) and issubclass(SignatureError, ValueError)


def operations(service: Service) -> list[tuple[str, str, dict]]:
    document = requests.get(f"{service.url}/openapi.json", timeout=30).json()
    return [(method.upper(), path, operation) for path, methods in document["paths"].items()
            for method, operation in methods.items()]


def test_every_route_documents_its_answer_with_a_model(service: Service) -> None:
    checked = 0
    for method, path, operation in operations(service):
        answers = {code: answer for code, answer in operation["responses"].items() if code.startswith("2")}
        assert answers, (method, path)
        for code, answer in answers.items():
            content = answer["content"]
            if (method, path) == ("GET", "/v1/events"):  # JSON Lines: one recorded event per line
                assert content == {"application/x-ndjson": {"schema": {"type": "string"}}}
                continue
            if (method, path) == ("GET", "/v1/plugins/{name}/versions/{version}/archive"):  # the version's files
                assert content == {"application/zip": {}}
                continue
            schema = content["application/json"]["schema"]
            schema = schema.get("items", schema)
            assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, code, schema)
            checked += 1
    assert checked >= 24


def test_every_route_documents_its_refusals(service: Service) -> None:
    for method, path, operation in operations(service):
        refusals = {code: answer for code, answer in operation["responses"].items() if code.startswith("4")}
        # The admin token for all of /v1 but the webhooks, signed (or carrying their connection's secret) instead.
        webhooks = {("POST", "/v1/events"), ("POST", "/v1/connections/{project_id}/webhook")}
        assert ("security" in operation) == (path != "/healthz" and (method, path) not in webhooks)
        assert ("401" in refusals) == (path != "/healthz"), (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in refusals, (method, path)
        if "{" in path:
            assert "404" in refusals, (method, path)
        for code, answer in refusals.items():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)
