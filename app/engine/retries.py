"""Manual retry: failed or cancelled executions back to pending with a fresh budget.

One statement per call moves every chosen execution and writes its `retried`
event (the trigger source, the status it left, the attempts it had used).
`attempt` starts again from 0 and `ctx.attempt` counts from 1. The budget
(`max_attempts`, backoff, timeout) is resolved again as a submit's is
(`app.engine.retry.budget`): each pipeline's policy and SPINE_MAX_ATTEMPTS as
they are now, computed here per pipeline and handed to the statement as one
small table, with the row's stored overrides over them. An execution whose
logical_key another active execution holds is left alone (the key names one
active execution).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final, Literal, cast

import msgspec
import psycopg

from app.config import Settings
from app.db import AsyncConn
from app.engine.backends import OrchestratorBackend
from app.engine.history import get
from app.engine.models import Execution, Status, to_execution
from app.engine.queries import load
from app.engine.registry import Registry
from app.engine.retry import budget

__all__ = ["RETRYABLE", "RetryOutcome", "count_retryable", "retry_many", "retry_one"]

log = logging.getLogger(__name__)

RETRYABLE: Final[tuple[Status, ...]] = ("failed", "cancelled")
RetryOutcome = Literal["retried", "missing", "not_ended", "completed", "key_active"]

_SQL = load("retries")
_encode = msgspec.json.Encoder().encode


def _budgets(registry: Registry, settings: Settings) -> str:
    """Each pipeline's budget before overrides, as a JSON object keyed by pipeline name."""
    return _encode(
        {p.name: budget(p.retry, settings.max_attempts)._asdict() for p in registry}
    ).decode()


def _args(
    *,
    execution_id: str | None = None,
    status: str | None = None,
    pipeline: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str = "api",
) -> dict[str, Any]:
    return {
        "id": execution_id,
        "status": status,
        "pipeline": pipeline,
        "since": since,
        "until": until,
        "source": source,
    }


async def _retry(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    args: dict[str, Any],
    backend: OrchestratorBackend,
) -> list[Execution]:
    """Run the retry (autocommit: it commits alone), then wake the workers and tell the
    backend of each execution retried.

    Returns the executions as the retry left them (pending): read before the
    NOTIFY, since a worker may take one the moment it is sent.
    """
    args = {**args, "budgets": _budgets(registry, settings)}
    rows = await (await conn.execute(_SQL["retry"], args)).fetchall()
    retried = [to_execution(r) for r in rows]
    if retried:
        try:
            await conn.execute(_SQL["notify_retried"])
        except psycopg.Error as exc:  # committed already: the workers' poll finds them
            log.warning("%d execution(s) retried; NOTIFY failed (%s)", len(retried), exc)
    for execution in retried:
        await backend.retry(conn, execution)
    return retried


async def retry_one(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    execution_id: str,
    *,
    source: str,
    backend: OrchestratorBackend,
) -> tuple[Execution | None, RetryOutcome]:
    """Retry one failed or cancelled execution; the outcome says why not otherwise."""
    args = _args(execution_id=execution_id, source=source)
    retried = await _retry(conn, registry, settings, args, backend)
    if retried:
        return retried[0], "retried"
    execution = await get(conn, execution_id)
    if execution is None:
        return None, "missing"
    if execution.status == "completed":
        return execution, "completed"
    if execution.status in RETRYABLE:
        return execution, "key_active"
    return execution, "not_ended"


async def retry_many(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    *,
    source: str,
    backend: OrchestratorBackend,
    status: str | None = None,
    pipeline: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[str]:
    """Retry every failed or cancelled execution matching the filters; their ids."""
    args = _args(status=status, pipeline=pipeline, since=since, until=until, source=source)
    return [execution.id for execution in await _retry(conn, registry, settings, args, backend)]


async def count_retryable(
    conn: AsyncConn,
    *,
    status: str | None = None,
    pipeline: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """How many executions `retry_many` with the same filters would retry now."""
    args = _args(status=status, pipeline=pipeline, since=since, until=until)
    row = await (await conn.execute(_SQL["count_retryable"], args)).fetchone()
    assert row is not None
    return cast(int, row["n"])
