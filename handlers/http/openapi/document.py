"""The OpenAPI 3.1 document, built from the route table and the models, and its route."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from handlers.common.answers import json_response
from handlers.http.openapi.components import components, ref, schema_name, schemas
from handlers.http.openapi.spec import JSON, Body, Route, Schema
from handlers.http.openapi.table import ROUTES

_ADMIN: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_PUBLIC: list[dict[str, list[str]]] = []
_ERRORS = {"404": "NotFound", "409": "Conflict", "422": "Unprocessable"}
_TAGS = ("erp", "journal", "settings", "clients", "managers", "previews", "sms", "operations")
_DESCRIPTION = (
    "Notifications from the ERP to clients and managers by Telegram and SMS: the ERP "
    "webhook and the admin API (described in docs/INTERFACE.md). On every route a `Host` "
    "that is not this server's is a 421 and a cross-site browser request (`Origin`, "
    "`Sec-Fetch-Site`) a 403; admin bodies must be `application/json` (else 415)."
)

routes = web.RouteTableDef()


def _schema_of(model: type[BaseModel] | str) -> Schema:
    return ref(model if isinstance(model, str) else schema_name(model))


def _content(body: Body) -> dict[str, Any]:
    if body.model is not None:
        return {JSON: {"schema": _schema_of(body.model)}}
    return {media: {"schema": schema} for media, schema in body.media.items()}


def _answer(body: Body | str) -> dict[str, Any]:
    if isinstance(body, str):
        return {"$ref": f"#/components/responses/{body}"}
    answer: dict[str, Any] = {"description": body.description, "content": _content(body)}
    if body.headers:
        answer["headers"] = dict(body.headers)
    return answer


def _answers(route: Route) -> dict[str, Any]:
    answers: dict[str, Body | str] = dict(route.answers)
    if route.admin:
        if route.request is not None or route.request_media:
            answers.update({"400": "InvalidJson", "408": "RequestTimeout"})
            answers["415"] = "UnsupportedMediaType"
        # The request guard (handlers/common/guard.py) answers 403 and 421 on every route;
        # listed on the admin API, the one browsers are a danger to.
        answers.update({"401": "Unauthorized", "403": "CrossSite", "421": "MisdirectedRequest"})
        answers.update({code: _ERRORS[code] for code in route.errors})
        answers["503"] = "Unavailable"
    return {status: _answer(answers[status]) for status in sorted(answers)}


def _query_parameter(name: str, prop: Schema) -> Schema:
    """One field of a query model as a parameter: a query string has no null."""
    schema = {key: value for key, value in prop.items() if key not in {"title", "description"}}
    branches = schema.pop("anyOf", None)
    if branches is not None:
        (only,) = [branch for branch in branches if branch != {"type": "null"}]
        schema = {**only, **schema}
    if schema.get("default", ...) is None:
        del schema["default"]
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": prop.get("description", ""),
        "schema": schema,
    }


def _parameters(route: Route, schemas_by_name: dict[str, Schema]) -> list[Schema]:
    found = [
        {
            "name": param.name,
            "in": param.where,
            "required": param.required,
            "description": param.description,
            "schema": param.schema,
        }
        for param in route.params
    ]
    if route.query is not None:
        properties = schemas_by_name[schema_name(route.query)]["properties"]
        found += [_query_parameter(name, prop) for name, prop in properties.items()]
    return found


def _operation(route: Route, schemas_by_name: dict[str, Schema]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "security": _ADMIN if route.admin else _PUBLIC,
    }
    parameters = _parameters(route, schemas_by_name)
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        content = {JSON: {"schema": _schema_of(route.request)}}
        operation["requestBody"] = {"required": route.request_required, "content": content}
    elif route.request_media:
        content = {media: {"schema": schema} for media, schema in route.request_media.items()}
        operation["requestBody"] = {"required": route.request_required, "content": content}
    operation["responses"] = _answers(route)
    return operation


def _models(route: Route) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    requests = [m for m in (route.request, route.query) if isinstance(m, type)]
    answers = [
        body.model
        for body in route.answers.values()
        if isinstance(body, Body) and isinstance(body.model, type)
    ]
    return requests, answers


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; callers must not change it)."""
    requests: list[type[BaseModel]] = []
    answers: list[type[BaseModel]] = []
    for route in ROUTES:
        taken, given = _models(route)
        requests += taken
        answers += given
    schemas_by_name = schemas(requests, answers)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, schemas_by_name)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vestnik", "version": "1", "description": _DESCRIPTION},
        "tags": [{"name": name} for name in _TAGS],
        "paths": dict(sorted(paths.items())),
        "components": components(schemas_by_name),
    }


@routes.get("/api/v1/openapi.json")
async def openapi_json(_request: web.Request) -> web.Response:
    """Serve the document; it holds no data, so it needs no token."""
    return json_response(document())
