"""The OpenAPI document describes exactly the routes the app serves, and is valid."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from bot.app import create_app
from handlers.http import openapi
from tests.conftest import Service, make_settings

METHODS = {"get", "put", "post", "delete", "patch"}
# A value for each path parameter, so every documented route can be called.
SAMPLE_PARAMETERS = {
    "id": "1",
    "code": "client_order.ready",
    "name": "main",
    "recipient": "client",
}


def served_routes() -> set[tuple[str, str]]:
    """The API's routes; the web desk's pages (`/desk…`, HTML for browsers) are no API and
    are described in docs/INTERFACE.md."""
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"), run_migrations=False)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method not in {"HEAD", "OPTIONS"}
        and route.resource is not None
        and not route.resource.canonical.startswith("/desk")
    }


def documented_operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_document_describes_exactly_the_served_routes() -> None:
    served = served_routes()
    documented = set(documented_operations())

    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert {("post", "/api/v1/events"), ("get", "/healthz"), ("get", "/api/v1/settings")} <= served


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize(("method", "path"), sorted(documented_operations()))
def test_every_operation_has_responses_and_declares_its_path_parameters(
    method: str, path: str
) -> None:
    operation = documented_operations()[(method, path)]
    assert operation["responses"], "an operation without responses"
    assert operation.get("operationId")
    in_template = set(re.findall(r"{([^}]+)}", path))
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert declared == in_template
    assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")


def test_the_webhook_is_described_with_all_its_answers_and_signature() -> None:
    operation = documented_operations()[("post", "/api/v1/events")]
    assert set(operation["responses"]) == {
        "200", "202", "400", "401", "403", "408", "413", "415", "421", "422", "503"
    }  # fmt: skip
    assert "X-Vestnik-Signature" in [p["name"] for p in operation["parameters"]]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Event"
    }
    event = openapi.document()["components"]["schemas"]["Event"]
    assert {"event_id", "type", "occurred_at", "client"} <= set(event["required"])


def test_every_error_answer_is_the_contract_error_body() -> None:
    document = openapi.document()
    error = {"$ref": "#/components/schemas/Error"}
    for name, response in document["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == error, name
    body = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(body["required"]) == {"code", "message", "details"}


async def test_the_security_in_the_document_is_what_the_app_enforces(service: Service) -> None:
    """Bearer-protected operations answer 401 without a token; the others do not."""
    for (method, path), operation in documented_operations().items():
        if path == "/api/v1/events":
            continue  # signed by HMAC, covered by the webhook tests
        url = path.format(**SAMPLE_PARAMETERS)
        response = await service.client.request(method, url, json={})
        wants_bearer = operation["security"] == [{"bearerAuth": []}]
        if wants_bearer:
            assert response.status == 401, (method, path)
            assert (await response.json())["error"]["code"] == "unauthorized"
        else:
            assert operation["security"] == []
            if path.startswith("/api/v1/providers/"):
                # No SMS service is configured in this app: refused as unknown, not as
                # unauthenticated (each provider authenticates its own callbacks).
                assert response.status == 404, (method, path)
            else:
                assert response.status == 200, (method, path)


async def test_the_document_is_served_without_a_token(service: Service) -> None:
    response = await service.client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert await response.json() == openapi.document()
