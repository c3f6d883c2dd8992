"""Leases: what a worker does to the executions it holds.

Finish or schedule a retry (through the batch's statement in `batches`,
which also claims), requeue, give back, progress. Every change is guarded by
"still held by me" in its WHERE clause, so a worker that lost its claim can never
overwrite what another did, and every status change writes its event in the
same statement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from psycopg.types.json import Jsonb

from app.db import AsyncConn
from app.engine.batches import Record, record
from app.engine.executions import HELD_SQL
from app.engine.models import EXECUTIONS_CHANNEL, ClaimState, End

__all__ = [
    "CLAIM_ANSWER_LOST",
    "GIVEN_BACK_BEHIND_SLOW",
    "GIVEN_BACK_ON_STOP",
    "claim_state",
    "finish",
    "record_progress",
    "release_held",
    "requeue",
]


async def finish(conn: AsyncConn, execution_id: str, worker_id: str, end: End) -> bool:
    """End a held execution on its own; False when this worker no longer held it.

    The batch's record statement with one row (app.engine.batches), so an end
    is written the same way batched or alone: a failure with
    `retry_max_backoff` set (retryable, attempts left) goes back to pending
    with a `retry_scheduled` event instead.
    """
    one = Record(
        execution_id,
        end.status,
        None,
        time.monotonic(),
        end.error,
        end.payload,
        end.retry_max_backoff,
    )
    recorded, _ = await record(conn, worker_id, [one])
    return execution_id in recorded


_REQUEUE = f"""
WITH r AS (
    UPDATE executions
    SET status = 'pending', worker_id = NULL, queued_at = NULL, started_at = NULL
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN {HELD_SQL}
    RETURNING id, attempt
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'requeued', %(payload)s || jsonb_build_object('attempt', attempt) FROM r
)
SELECT id, pg_notify('{EXECUTIONS_CHANNEL}', 'requeued') AS n FROM r
"""


async def requeue(conn: AsyncConn, execution_id: str, worker_id: str, *, reason: str) -> bool:
    """Give a held execution back to the queue (a transient failure); False if not held."""
    cur = await conn.execute(
        _REQUEUE, {"id": execution_id, "worker": worker_id, "payload": Jsonb({"reason": reason})}
    )
    return await cur.fetchone() is not None


_RELEASE_HELD = f"""
WITH r AS (
    -- Back to pending, the attempt not counted; one whose cancel was requested
    -- meanwhile ends cancelled instead (it never ran).
    UPDATE executions
    SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
        worker_id = CASE WHEN cancel_requested THEN worker_id END,
        queued_at = CASE WHEN cancel_requested THEN queued_at END,
        started_at = CASE WHEN cancel_requested THEN started_at END,
        completed_at = CASE WHEN cancel_requested THEN now() END,
        -- A claim that started it counted the attempt; one only queued did not.
        attempt = attempt - (status = 'running')::int
    WHERE worker_id = %(worker)s AND status IN {HELD_SQL}
      AND (%(ids)s::text[] IS NULL OR id = ANY (%(ids)s::text[]))
    RETURNING id, status, attempt
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, CASE status WHEN 'pending' THEN 'requeued' ELSE status END,
           jsonb_build_object('reason', %(reason)s::text, 'attempt', attempt)
    FROM r
)
SELECT id, pg_notify('{EXECUTIONS_CHANNEL}', 'requeued') AS n FROM r
"""

CLAIM_ANSWER_LOST = "claimed but not run: the claim's answer was lost"
GIVEN_BACK_ON_STOP = "claimed but not run: the worker is stopping"
GIVEN_BACK_BEHIND_SLOW = "claimed but not run: given back while one before it runs long"


async def release_held(
    conn: AsyncConn, worker_id: str, *, reason: str, ids: Sequence[str] | None = None
) -> list[str]:
    """Give back executions held by a worker that is running none of them (or only `ids`).

    Three cases: a worker stopping with a claimed batch it has not started, a
    batch's rest given back while one of it runs long, and a claim whose commit
    succeeded while its connection broke, which leaves executions held by a
    live worker that never learned of them (its heartbeat would keep them from
    recovery forever). The attempt is not counted: they never ran. The
    `requeued` event carries `reason`.
    """
    args = {"worker": worker_id, "reason": reason, "ids": None if ids is None else list(ids)}
    rows = await (await conn.execute(_RELEASE_HELD, args)).fetchall()
    return [str(r["id"]) for r in rows]


_PROGRESS = f"""
WITH held AS (
    SELECT id, cancel_requested FROM executions
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN {HELD_SQL}
), p AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'progress', %(payload)s FROM held
)
SELECT
    EXISTS (SELECT 1 FROM held) AS held,
    COALESCE((SELECT cancel_requested FROM held), false) AS cancel_requested
"""


async def record_progress(
    conn: AsyncConn,
    execution_id: str,
    worker_id: str,
    *,
    done: int,
    total: int | None,
    message: str,
    phase: str | None = None,
) -> ClaimState:
    payload: dict[str, object] = {"done": done, "total": total, "message": message}
    if phase is not None:
        payload["phase"] = phase
    cur = await conn.execute(
        _PROGRESS, {"id": execution_id, "worker": worker_id, "payload": Jsonb(payload)}
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)


async def claim_state(conn: AsyncConn, execution_id: str, worker_id: str) -> ClaimState:
    cur = await conn.execute(
        f"""
        SELECT
            COALESCE(bool_or(worker_id = %(worker)s AND status IN {HELD_SQL}), false)
                AS held,
            COALESCE(bool_or(cancel_requested), false) AS cancel_requested
        FROM executions WHERE id = %(id)s
        """,
        {"id": execution_id, "worker": worker_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)
