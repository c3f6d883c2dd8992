"""Liveness and readiness probes, plus the pipeline catalogue.

Probes are public even when reads need a token: orchestrators call them
without credentials, and they reveal nothing but up/down and migration names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from app import __version__
from app.api.routes import READS
from app.db import AsyncConn, AsyncPool
from app.engine.registry import Registry
from app.migrations import Migration, applied_async, compare, discover
from app.web.problems import RETRY_AFTER_SECONDS, problem_responses
from app.web.schemas import (
    LivenessResponse,
    MigrationsReport,
    PipelineParam,
    PipelineResponse,
    ReadinessResponse,
)

__all__ = ["ReadinessCache", "list_pipelines", "liveness", "readiness"]

READY_TIMEOUT = 2.0  # seconds to get a connection before the database counts as unavailable
READY_CACHE_SECONDS = 1.0


class ReadinessCache:
    """The last readiness answer, reused for a second; one check runs at a time.

    Probes from several orchestrators (and retries) then cost one database
    round trip a second, and during an outage they wait on one check of at
    most READY_TIMEOUT instead of each opening a wait of its own.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._answer: Response[ReadinessResponse] | None = None
        self._at = 0.0

    async def get(
        self, check: Callable[[], Awaitable[Response[ReadinessResponse]]]
    ) -> Response[ReadinessResponse]:
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at > READY_CACHE_SECONDS:
                self._answer = await check()
                self._at = time.monotonic()
            answer = self._answer
        # A new Response per request: Litestar may add to a response's headers.
        headers = dict(answer.headers)
        return Response(answer.content, status_code=answer.status_code, headers=headers)


PUBLIC = {"public": True}


@get("/health", tags=["health"], operation_id="liveness", summary="Liveness", opt=PUBLIC)
async def liveness() -> LivenessResponse:
    """200 while the process serves requests; never touches the database."""
    return LivenessResponse(status="ok", version=__version__)


@get(
    "/health/ready",
    tags=["health"],
    operation_id="readiness",
    summary="Readiness",
    opt=PUBLIC,
    responses={
        503: ResponseSpec(
            data_container=ReadinessResponse,
            description="Not ready: the database does not answer or migrations are pending.",
        )
    },
)
async def readiness(state: State) -> Response[ReadinessResponse]:
    """200 when the database answers and every migration is applied; 503 with the reason.

    Answered from a check at most READY_CACHE_SECONDS old.
    """
    cache: ReadinessCache = state.readiness
    return await cache.get(lambda: _check_readiness(state))


async def _check_readiness(state: State) -> Response[ReadinessResponse]:
    pool: AsyncPool = state.pool
    try:
        async with pool.connection(timeout=READY_TIMEOUT) as conn:
            states = compare(state.migrations, await applied_async(conn))
            health = await _backend_health(conn, state)
    except psycopg.OperationalError as exc:
        reason = f"database unavailable ({type(exc).__name__})"
        return Response(
            ReadinessResponse(status="not_ready", database="unavailable", reason=reason),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    pending = [m.name for m in states if m.state == "pending"]
    changed = [m.name for m in states if m.state == "changed"]
    applied = sum(m.state != "pending" for m in states)
    report = MigrationsReport(applied=applied, pending=pending, changed=changed)
    reasons = []
    if pending:
        reasons.append(f"pending migrations: {', '.join(pending)} (run `spine db init`)")
    if changed:
        reasons.append(f"migrations changed after they were applied: {', '.join(changed)}")
    return Response(
        ReadinessResponse(
            status="not_ready" if reasons else "ready",
            database="ok",
            reason="; ".join(reasons) or None,
            migrations=report,
            live_workers=None if health is None else int(health["live_workers"]),
            backend=None if health is None else str(health["backend"]),
            broker=None if health is None else health.get("broker"),
        ),
        status_code=503 if reasons else 200,
    )


@get(
    "/pipelines",
    tags=["pipelines"],
    operation_id="listPipelines",
    summary="List pipelines",
    security=READS,
    responses=problem_responses(401),
)
async def list_pipelines(state: State) -> list[PipelineResponse]:
    """The pipelines that can be submitted, with their parameters (type, default, description)."""
    registry: Registry = state.registry
    return [
        PipelineResponse(
            name=p.name,
            description=p.description,
            params=[
                PipelineParam(
                    name=d.name, type=d.type, default=d.default, description=d.description
                )
                for d in p.param_docs()
            ],
        )
        for p in registry
    ]


async def _backend_health(conn: AsyncConn, state: State) -> dict[str, Any] | None:
    try:
        health: dict[str, Any] = await state.backend.health(conn)
    except psycopg.errors.UndefinedTable:  # not migrated yet: readiness says so already
        return None
    return health


def migrations_on_disk() -> list[Migration]:
    """Read once at start-up: the files do not change under a running process."""
    return discover()
