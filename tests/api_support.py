"""Helpers for the API tests: a client on a fresh app, problem assertions, raw fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app import db
from app.config import get_settings
from app.engine import workers
from app.server import create_app
from tests.support import claim_and_start, free_port

Client = AsyncTestClient[Litestar]


@asynccontextmanager
async def api_client() -> AsyncIterator[Client]:
    """A client on a new app, built now so it reads the test's environment."""
    get_settings.cache_clear()
    async with AsyncTestClient(create_app()) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem with `status`; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert "Traceback" not in response.text
    return body


async def make_running(database_url: str, execution_id: str) -> None:
    """Drive an execution to `running` the way a worker would (claimed, then started)."""
    async with await db.aconnect(database_url) as conn:
        await workers.heartbeat(conn, "api-test-worker", "test", 1)
        claimed = await claim_and_start(conn, "api-test-worker")
        assert claimed is not None and claimed.id == execution_id
        assert claimed.status == "running"


def closed_port() -> int:
    """A local port nothing listens on: where an unreachable database "is"."""
    return free_port()
