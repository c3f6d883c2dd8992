"""All SQL for executions, their events and the workers that run them.

Every status change and its event are one statement (data-modifying CTEs), so
they commit together; every change a worker makes is guarded by "still held by
me" in its WHERE clause, so a worker that lost its claim can never overwrite
what another did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from app.db import AsyncConn

__all__ = [
    "ACTIVE",
    "EXECUTIONS_CHANNEL",
    "TERMINAL",
    "ClaimState",
    "End",
    "Event",
    "Execution",
    "claim",
    "claim_state",
    "finish",
    "finish_and_claim",
    "get",
    "insert",
    "list_events",
    "list_page",
    "record_progress",
    "recover_stale",
    "release_held",
    "request_cancel",
    "requeue",
]

log = logging.getLogger(__name__)

EXECUTIONS_CHANNEL = "spine_executions"
CANCEL_CHANNEL = "spine_cancel"
ACTIVE = ("pending", "queued", "running")
TERMINAL = ("completed", "failed", "cancelled")

Status = Literal["pending", "queued", "running", "completed", "failed", "cancelled"]


class Execution(msgspec.Struct, frozen=True):
    """An executions row."""

    id: str
    pipeline: str
    params: dict[str, Any]
    lane: str
    status: Status
    trigger_source: str
    logical_key: str | None
    attempt: int
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None


class Event(msgspec.Struct, frozen=True):
    id: int
    execution_id: str
    event_type: str
    timestamp: datetime
    payload: dict[str, Any]


class ClaimState(msgspec.Struct, frozen=True):
    held: bool
    cancel_requested: bool


_COLUMNS = (
    "id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id, "
    "cancel_requested, created_at, queued_at, started_at, completed_at, error"
)


def _execution(row: dict[str, Any]) -> Execution:
    return msgspec.convert(row, Execution, from_attributes=False)


# ------------------------------------------------------------------ submit

_INSERT = f"""
WITH new AS (
    INSERT INTO executions (pipeline, params, lane, trigger_source, logical_key)
    VALUES (%(pipeline)s, %(params)s, %(lane)s, %(trigger_source)s, %(logical_key)s)
    ON CONFLICT (logical_key)
        WHERE logical_key IS NOT NULL AND status IN ('pending', 'queued', 'running')
        DO NOTHING
    RETURNING {_COLUMNS}
), created AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'created', jsonb_build_object('trigger_source', trigger_source, 'lane', lane)
    FROM new
)
SELECT * FROM new
"""

_ACTIVE_BY_KEY = f"""
SELECT {_COLUMNS} FROM executions
WHERE logical_key = %s AND status IN ('pending', 'queued', 'running')
"""


async def insert(
    conn: AsyncConn,
    *,
    pipeline: str,
    params: dict[str, Any],
    lane: str,
    trigger_source: str,
    logical_key: str | None,
) -> tuple[Execution, bool]:
    """Insert a pending execution with its `created` event, then wake the workers.

    Returns (execution, created). When `logical_key` is already held by an
    active execution, that one is returned with created=False.

    `conn` is in autocommit mode: the insert is one statement, so it commits
    alone, and the NOTIFY follows as a statement of its own. Sent inside the
    insert's transaction it would hold PostgreSQL's notify-queue lock across
    the commit's WAL flush and serialize concurrent submits; a NOTIFY lost to
    a crash in between is covered by the workers' poll.
    """
    args = {
        "pipeline": pipeline,
        "params": Jsonb(params),
        "lane": lane,
        "trigger_source": trigger_source,
        "logical_key": logical_key,
    }
    while True:
        row = await (await conn.execute(_INSERT, args)).fetchone()
        if row is not None:
            execution = _execution(row)
            try:
                await conn.execute("SELECT pg_notify(%s, %s)", (EXECUTIONS_CHANNEL, lane))
            except psycopg.Error as exc:
                # Committed already: the submit stands, and the workers' poll finds it.
                log.warning("execution %s stored; NOTIFY failed (%s)", execution.id, exc)
            return execution, True
        existing = await (await conn.execute(_ACTIVE_BY_KEY, (logical_key,))).fetchone()
        if existing is not None:
            return _execution(existing), False
        # The holder finished between our insert and our look-up: try again.


# ------------------------------------------------------------------ read


async def get(conn: AsyncConn, execution_id: str) -> Execution | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM executions WHERE id = %s", (execution_id,))
    row = await cur.fetchone()
    return _execution(row) if row else None


async def list_page(
    conn: AsyncConn,
    *,
    limit: int,
    status: str | None = None,
    pipeline: str | None = None,
    lane: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[Execution]:
    """Newest first; `before` is the (created_at, id) keyset cursor of the previous page."""
    cur = await conn.execute(
        f"""
        SELECT {_COLUMNS} FROM executions
        WHERE (%(status)s::text IS NULL OR status = %(status)s)
          AND (%(pipeline)s::text IS NULL OR pipeline = %(pipeline)s)
          AND (%(lane)s::text IS NULL OR lane = %(lane)s)
          AND (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s))
        ORDER BY created_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {
            "status": status,
            "pipeline": pipeline,
            "lane": lane,
            "at": before[0] if before else None,
            "id": before[1] if before else None,
            "limit": limit,
        },
    )
    return [_execution(r) for r in await cur.fetchall()]


async def list_events(conn: AsyncConn, execution_id: str, after_id: int = 0) -> list[Event]:
    cur = await conn.execute(
        """
        SELECT id, execution_id, event_type, timestamp, payload FROM execution_events
        WHERE execution_id = %s AND id > %s ORDER BY id
        """,
        (execution_id, after_id),
    )
    return [msgspec.convert(r, Event) for r in await cur.fetchall()]


# ------------------------------------------------------------------ worker side

# The claim's CTEs, shared by claim() and finish_and_claim(): take the next
# pending execution and start it, writing its `queued` and `started` events.
_CLAIM_CTES = f"""
next AS MATERIALIZED (
    SELECT id FROM executions
    WHERE status = 'pending'
    ORDER BY priority, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE executions e
    SET status = 'running', worker_id = %(worker)s, queued_at = now(), started_at = now(),
        attempt = e.attempt + 1
    FROM next
    WHERE e.id = next.id
    RETURNING e.{_COLUMNS.replace(", ", ", e.")}
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT claimed.id, step.event_type,
           jsonb_build_object('worker_id', claimed.worker_id, 'attempt', claimed.attempt)
    FROM claimed, (VALUES (1, 'queued'), (2, 'started')) AS step (n, event_type)
    ORDER BY step.n
)"""

_CLAIM = f"""
WITH {_CLAIM_CTES}
SELECT * FROM claimed
"""


async def claim(conn: AsyncConn, worker_id: str) -> Execution | None:
    """Claim the next pending execution (normal lane first, then oldest) and start it.

    One statement takes the row, sets it `running` and writes both the `queued`
    and the `started` event: a local worker starts what it claims at once, so a
    separate queued -> running transaction would cost a commit and say nothing.
    """
    row = await (await conn.execute(_CLAIM, {"worker": worker_id})).fetchone()
    return _execution(row) if row else None


# Ending a held execution: only while this worker still holds it.
_FINISH_CTES = """
f AS (
    UPDATE executions
    SET status = %(status)s, completed_at = now(), error = %(error)s
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN ('queued', 'running')
    RETURNING id
), ended AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, %(status)s, %(payload)s FROM f
)"""

_FINISH = f"""
WITH {_FINISH_CTES}
SELECT id FROM f
"""

_FINISH_AND_CLAIM = f"""
WITH {_FINISH_CTES}, {_CLAIM_CTES}
SELECT EXISTS (SELECT FROM f) AS finished, claimed.*
FROM (SELECT) AS one LEFT JOIN claimed ON true
"""


class End(msgspec.Struct, frozen=True):
    """How a held execution ended: the status, the error (failed), the event's payload."""

    status: Literal["completed", "failed", "cancelled"]
    error: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


def _finish_args(execution_id: str, worker_id: str, end: End) -> dict[str, Any]:
    return {
        "id": execution_id,
        "worker": worker_id,
        "status": end.status,
        "error": end.error,
        "payload": Jsonb(end.payload),
    }


async def finish(conn: AsyncConn, execution_id: str, worker_id: str, end: End) -> bool:
    """End a held execution; False when this worker no longer held it (nothing written)."""
    args = _finish_args(execution_id, worker_id, end)
    return await (await conn.execute(_FINISH, args)).fetchone() is not None


async def finish_and_claim(
    conn: AsyncConn, execution_id: str, worker_id: str, end: End
) -> tuple[bool, Execution | None]:
    """finish() and claim() in one statement, so a busy worker commits once per execution.

    Returns (finished, the next execution or None). Both parts commit together;
    the claim is made whether or not the finish found the execution still held.
    """
    row = await (
        await conn.execute(_FINISH_AND_CLAIM, _finish_args(execution_id, worker_id, end))
    ).fetchone()
    assert row is not None
    finished = bool(row.pop("finished"))
    return finished, (_execution(row) if row["id"] is not None else None)


_REQUEUE = f"""
WITH r AS (
    UPDATE executions
    SET status = 'pending', worker_id = NULL, queued_at = NULL, started_at = NULL
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN ('queued', 'running')
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
        attempt = attempt - 1
    WHERE worker_id = %(worker)s AND status IN ('queued', 'running')
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


async def release_held(conn: AsyncConn, worker_id: str, *, reason: str) -> list[str]:
    """Give back every execution held by a worker that is running none of them.

    Two cases: a worker stopping with the execution its last finish claimed,
    and a claim whose commit succeeded while its connection broke, which leaves
    an execution held by a live worker that never learned of it (its heartbeat
    would keep it from recovery forever). The attempt is not counted: the
    execution never ran. The `requeued` event carries `reason`.
    """
    args = {"worker": worker_id, "reason": reason}
    rows = await (await conn.execute(_RELEASE_HELD, args)).fetchall()
    return [str(r["id"]) for r in rows]


_PROGRESS = """
WITH held AS (
    SELECT id, cancel_requested FROM executions
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN ('queued', 'running')
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
) -> ClaimState:
    payload = {"done": done, "total": total, "message": message}
    cur = await conn.execute(
        _PROGRESS, {"id": execution_id, "worker": worker_id, "payload": Jsonb(payload)}
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)


async def claim_state(conn: AsyncConn, execution_id: str, worker_id: str) -> ClaimState:
    cur = await conn.execute(
        """
        SELECT
            COALESCE(bool_or(worker_id = %(worker)s AND status IN ('queued', 'running')), false)
                AS held,
            COALESCE(bool_or(cancel_requested), false) AS cancel_requested
        FROM executions WHERE id = %(id)s
        """,
        {"id": execution_id, "worker": worker_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)


# ------------------------------------------------------------------ cancel


async def request_cancel(conn: AsyncConn, execution_id: str) -> tuple[Execution | None, str]:
    """Cancel: pending ends at once; queued/running is asked to stop.

    Returns (execution after the change, outcome) where outcome is one of
    "cancelled", "requested", "already_requested", "finished" or "missing".
    """
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT status, cancel_requested FROM executions WHERE id = %s FOR UPDATE",
            (execution_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None, "missing"
        if row["status"] in TERMINAL:
            outcome = "finished"
        elif row["status"] == "pending":
            await conn.execute(
                """
                WITH c AS (
                    UPDATE executions
                    SET status = 'cancelled', cancel_requested = true, completed_at = now()
                    WHERE id = %(id)s RETURNING id
                )
                INSERT INTO execution_events (execution_id, event_type, payload)
                SELECT id, e.type, e.payload FROM c, (VALUES
                    (1, 'cancel_requested', '{}'::jsonb),
                    (2, 'cancelled', '{"reason": "cancelled before it started"}'::jsonb)
                ) AS e (n, type, payload)
                ORDER BY e.n
                """,
                {"id": execution_id},
            )
            outcome = "cancelled"
        elif row["cancel_requested"]:
            outcome = "already_requested"
        else:
            await conn.execute(
                """
                WITH c AS (
                    UPDATE executions SET cancel_requested = true WHERE id = %(id)s RETURNING id
                )
                INSERT INTO execution_events (execution_id, event_type)
                SELECT id, 'cancel_requested' FROM c
                """,
                {"id": execution_id},
            )
            await conn.execute("SELECT pg_notify(%s, %s)", (CANCEL_CHANNEL, execution_id))
            outcome = "requested"
        execution = await get(conn, execution_id)
    return execution, outcome


# ------------------------------------------------------------------ workers and recovery


async def heartbeat(conn: AsyncConn, worker_id: str, host: str, pid: int) -> None:
    """Register the worker (its first heartbeat) or keep its row fresh.

    Also puts back a row that vanished (pruned while this worker was cut off
    from the database): without it every execution the worker claims would
    look orphaned to recovery.
    """
    await conn.execute(
        """
        INSERT INTO workers (id, host, pid) VALUES (%s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
        """,
        (worker_id, host, pid),
    )


async def mark_stopped(conn: AsyncConn, worker_id: str) -> None:
    await conn.execute("UPDATE workers SET stopped_at = now() WHERE id = %s", (worker_id,))


_RECOVER = f"""
WITH stale AS (
    -- What each becomes: cancelled if someone asked for that, failed once it has
    -- used up its attempts, else pending for another worker.
    SELECT e.id, e.worker_id,
           CASE WHEN e.cancel_requested THEN 'cancelled'
                WHEN e.attempt >= %(max_attempts)s THEN 'failed'
                ELSE 'pending' END AS outcome
    FROM executions e
    LEFT JOIN workers w ON w.id = e.worker_id
    WHERE e.status IN ('queued', 'running')
      AND (w.id IS NULL
           OR w.stopped_at IS NOT NULL
           OR w.heartbeat_at < now() - make_interval(secs => %(lease)s))
    FOR UPDATE OF e SKIP LOCKED
), recovered AS (
    UPDATE executions e
    SET status = stale.outcome,
        worker_id = CASE WHEN stale.outcome <> 'pending' THEN e.worker_id END,
        queued_at = CASE WHEN stale.outcome <> 'pending' THEN e.queued_at END,
        started_at = CASE WHEN stale.outcome <> 'pending' THEN e.started_at END,
        completed_at = CASE WHEN stale.outcome <> 'pending' THEN now() END,
        error = CASE WHEN stale.outcome = 'failed'
                     THEN 'worker lost: ' || stale.worker_id
                          || ' stopped heartbeating; gave up after ' || e.attempt || ' attempt(s)'
                END
    FROM stale
    -- Re-checked here: only what is still held by that same stale worker is touched.
    WHERE e.id = stale.id AND e.worker_id = stale.worker_id
      AND e.status IN ('queued', 'running')
    RETURNING e.id, e.status, e.attempt, stale.worker_id AS lost_worker
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, CASE status WHEN 'pending' THEN 'requeued' ELSE status END,
           jsonb_build_object('reason', 'worker lost', 'worker_id', lost_worker, 'attempt', attempt)
    FROM recovered
)
SELECT id, status, lost_worker,
       CASE WHEN status = 'pending' THEN pg_notify('{EXECUTIONS_CHANNEL}', 'requeued') END AS n
FROM recovered
"""


async def recover_stale(
    conn: AsyncConn, *, lease_timeout: float, max_attempts: int
) -> Sequence[dict[str, Any]]:
    """Requeue executions held by workers that stopped heartbeating.

    One that was asked to cancel ends `cancelled`; one that has used up
    `max_attempts` ends `failed`.
    """
    cur = await conn.execute(_RECOVER, {"lease": lease_timeout, "max_attempts": max_attempts})
    return await cur.fetchall()


async def live_workers(conn: AsyncConn, lease_timeout: float) -> list[dict[str, Any]]:
    """Workers that have not stopped and heartbeat within the lease, with heartbeat age (s)."""
    cur = await conn.execute(
        """
        SELECT id, host, pid, started_at, heartbeat_at,
               extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s
        FROM workers
        WHERE stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => %s)
        ORDER BY started_at
        """,
        (lease_timeout,),
    )
    return list(await cur.fetchall())


async def prune_finished(conn: AsyncConn, *, older_than_seconds: float, batch: int = 5000) -> int:
    """Delete finished executions (and, by cascade, their events) older than the cut-off.

    Active executions are never touched. Works in batches so a big prune never
    holds long locks or builds one huge transaction.
    """
    total = 0
    while True:
        cur = await conn.execute(
            """
            WITH doomed AS (
                SELECT id FROM executions
                WHERE status IN ('completed', 'failed', 'cancelled')
                  AND completed_at < now() - make_interval(secs => %(age)s)
                  -- Implied by the line above (nothing completes before it is
                  -- created); it lets the scan use idx_executions_created.
                  AND created_at < now() - make_interval(secs => %(age)s)
                LIMIT %(batch)s
                FOR UPDATE SKIP LOCKED
            )
            DELETE FROM executions e USING doomed WHERE e.id = doomed.id
            """,
            {"age": older_than_seconds, "batch": batch},
        )
        total += cur.rowcount
        if cur.rowcount < batch:
            return total


async def prune_workers(conn: AsyncConn, *, older_than_seconds: float, lease_timeout: float) -> int:
    """Delete the rows of workers gone longer than the cut-off (stopped, or silent).

    Never a row younger than the lease: a live worker heartbeats well within
    it. A row still named by an active execution stays: recovery reads it.
    """
    cur = await conn.execute(
        """
        DELETE FROM workers w
        WHERE COALESCE(w.stopped_at, w.heartbeat_at)
              < now() - make_interval(secs => greatest(%(age)s, %(lease)s))
          AND NOT EXISTS (
              SELECT 1 FROM executions e
              WHERE e.worker_id = w.id AND e.status IN ('queued', 'running')
          )
        """,
        {"age": older_than_seconds, "lease": lease_timeout},
    )
    return cur.rowcount
