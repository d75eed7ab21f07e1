"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every route the app serves,
generated from the route table (`table.py`) and the pydantic models the views validate
and answer with, so the document cannot drift from the code."""

from __future__ import annotations

from handlers.http.openapi.document import document, routes

__all__ = ["document", "routes"]
