"""Manual retry: failed or cancelled executions back to pending with a fresh budget.

One statement per call moves every chosen execution and writes its `retried`
event (the trigger source, the status it left, the attempts it had used).
`attempt` starts again from 0, so the execution gets its whole `max_attempts`
again and `ctx.attempt` counts from 1. An execution whose logical_key another
active execution holds is left alone (the key names one active execution).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final, Literal, cast

import psycopg

from app.db import AsyncConn
from app.engine.backends import OrchestratorBackend
from app.engine.executions import ACTIVE_SQL, COLUMNS, get, to_execution
from app.engine.models import EXECUTIONS_CHANNEL, Execution, Status

__all__ = ["RETRYABLE", "RetryOutcome", "count_retryable", "retry_many", "retry_one"]

log = logging.getLogger(__name__)

RETRYABLE: Final[tuple[Status, ...]] = ("failed", "cancelled")
RetryOutcome = Literal["retried", "missing", "not_ended", "completed", "key_active"]

# The executions a retry may take: ended unsuccessfully, their logical_key free.
_CHOSEN_WHERE = f"""
    e.status IN ('failed', 'cancelled')
    AND (%(id)s::text IS NULL OR e.id = %(id)s)
    AND (%(status)s::text IS NULL OR e.status = %(status)s)
    AND (%(pipeline)s::text IS NULL OR e.pipeline = %(pipeline)s)
    AND (%(since)s::timestamptz IS NULL OR e.created_at >= %(since)s)
    AND (%(until)s::timestamptz IS NULL OR e.created_at < %(until)s)
    AND (e.logical_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM executions a
        WHERE a.logical_key = e.logical_key AND a.status IN {ACTIVE_SQL}))
"""

_RETRY = f"""
WITH chosen AS (
    SELECT e.id, e.status, e.attempt, e.logical_key, e.created_at FROM executions e
    WHERE {_CHOSEN_WHERE}
    FOR UPDATE OF e
), one_per_key AS (
    -- Two ended executions with one logical_key: only the newest comes back.
    SELECT DISTINCT ON (COALESCE(logical_key, id)) id, status, attempt FROM chosen
    ORDER BY COALESCE(logical_key, id), created_at DESC
), r AS (
    UPDATE executions e
    SET status = 'pending', attempt = 0, worker_id = NULL, queued_at = NULL,
        started_at = NULL, completed_at = NULL, cancel_requested = false, available_at = now()
    FROM one_per_key o
    WHERE e.id = o.id
    RETURNING e.{COLUMNS.replace(", ", ", e.")},
              o.status AS previous_status, o.attempt AS previous_attempts
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'retried', jsonb_build_object(
        'trigger_source', %(source)s::text, 'previous_status', previous_status,
        'previous_attempts', previous_attempts)
    FROM r
)
SELECT * FROM r
"""

_COUNT = f"""
SELECT count(DISTINCT COALESCE(e.logical_key, e.id)) AS n FROM executions e WHERE {_CHOSEN_WHERE}
"""


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
    conn: AsyncConn, args: dict[str, Any], backend: OrchestratorBackend
) -> list[Execution]:
    """Run the retry (autocommit: it commits alone), then wake the workers and tell the
    backend of each execution retried.

    Returns the executions as the retry left them (pending): read before the
    NOTIFY, since a worker may take one the moment it is sent.
    """
    rows = await (await conn.execute(_RETRY, args)).fetchall()
    retried = [to_execution(r) for r in rows]
    if retried:
        try:
            await conn.execute("SELECT pg_notify(%s, 'retried')", (EXECUTIONS_CHANNEL,))
        except psycopg.Error as exc:  # committed already: the workers' poll finds them
            log.warning("%d execution(s) retried; NOTIFY failed (%s)", len(retried), exc)
    for execution in retried:
        await backend.retry(execution)
    return retried


async def retry_one(
    conn: AsyncConn, execution_id: str, *, source: str, backend: OrchestratorBackend
) -> tuple[Execution | None, RetryOutcome]:
    """Retry one failed or cancelled execution; the outcome says why not otherwise."""
    retried = await _retry(conn, _args(execution_id=execution_id, source=source), backend)
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
    return [execution.id for execution in await _retry(conn, args, backend)]


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
    row = await (await conn.execute(_COUNT, args)).fetchone()
    assert row is not None
    return cast(int, row["n"])
