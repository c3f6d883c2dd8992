"""Route handlers, grouped by resource; `app.api.main.create_app` registers them."""

from __future__ import annotations

from litestar.di import NamedDependency

from app.db import AsyncConn

__all__ = ["MUTATING", "READS", "DbConn"]

DbConn = NamedDependency[AsyncConn]
"""A pooled connection for the request (provided by `create_app` under the name `conn`)."""

# OpenAPI security requirements: writes name the bearer token; reads may carry it
# (needed only with SPINE_API_TOKEN_READS=1).
MUTATING: list[dict[str, list[str]]] = [{"bearerAuth": []}]
READS: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
