"""Liveness and readiness probes, plus the pipeline catalogue.

Probes are public even when reads need a token: orchestrators call them
without credentials, and they reveal nothing but up/down and migration names.
"""

from __future__ import annotations

import psycopg
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from app import __version__
from app.api.errors import RETRY_AFTER_SECONDS, problem_responses
from app.api.routes import READS
from app.api.schemas import (
    LivenessResponse,
    MigrationsReport,
    PipelineParam,
    PipelineResponse,
    ReadinessResponse,
)
from app.config import get_settings
from app.db import AsyncConn, AsyncPool
from app.migrations import Migration, discover
from app.registry import get_registry
from app.repositories import executions

__all__ = ["list_pipelines", "liveness", "readiness"]

READY_TIMEOUT = 2.0  # seconds to get a connection before the database counts as unavailable
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
    """200 when the database answers and every migration is applied; 503 with the reason."""
    pool: AsyncPool = state.pool
    try:
        async with pool.connection(timeout=READY_TIMEOUT) as conn:
            applied = await _applied_migrations(conn)
            live_workers = await _live_workers(conn)
    except psycopg.OperationalError as exc:
        reason = f"database unavailable ({type(exc).__name__})"
        return Response(
            ReadinessResponse(status="not_ready", database="unavailable", reason=reason),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    on_disk = state.migrations
    pending = [m.name for m in on_disk if m.name not in applied]
    changed = [m.name for m in on_disk if m.name in applied and applied[m.name] != m.checksum]
    report = MigrationsReport(applied=len(applied), pending=pending, changed=changed)
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
            live_workers=live_workers,
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
async def list_pipelines() -> list[PipelineResponse]:
    """The pipelines that can be submitted, with their parameters (name, type, default)."""
    return [
        PipelineResponse(
            name=p.name,
            description=p.description,
            params=[PipelineParam(name=n, type=t, default=d) for n, t, d in p.param_docs()],
        )
        for p in get_registry()
    ]


async def _applied_migrations(conn: AsyncConn) -> dict[str, str]:
    """name -> checksum of applied migrations (none when the table does not exist yet)."""
    try:
        cur = await conn.execute("SELECT name, checksum FROM schema_migrations")
    except psycopg.errors.UndefinedTable:
        return {}
    return {str(r["name"]): str(r["checksum"]) for r in await cur.fetchall()}


async def _live_workers(conn: AsyncConn) -> int | None:
    try:
        return len(await executions.live_workers(conn, get_settings().lease_timeout))
    except psycopg.errors.UndefinedTable:  # not migrated yet: readiness says so already
        return None


def migrations_on_disk() -> list[Migration]:
    """Read once at start-up: the files do not change under a running process."""
    return discover()
