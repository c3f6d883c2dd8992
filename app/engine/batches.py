"""Batched leases: claim several executions at once and record their ends together.

A worker draining a deep queue of quick executions would otherwise pay one
statement (and one commit) per execution. Here it pays one per batch:

- `record(..., claim=n)` takes up to `n` pending executions in claim order
  and makes them `queued`, held by the worker (each with its `queued` event):
  visibly the worker's, not yet started. It is the only statement that
  claims.
- The worker then runs them one by one. A quick one's start is not written
  when it starts: `record` writes it with its end, each with the time it
  happened (measured by the worker, placed on the database clock as
  `now()` minus its age when sent). A slow one's start is written while it
  runs (a `record` row whose status is `running`).
- `record` writes a batch's ends (and starts) with every execution's events
  in one statement, and claims the next batch in the same statement. A
  failure to retry is one of those ends (back to pending, to wait out its
  backoff), so an end, whether batched or written alone
  (`app.engine.leases.finish`), is written by this one statement.

Every row is still guarded by "still held by me", so a worker that lost its
claim writes nothing, and a start is written once. A worker killed between a
quick execution's end and the batch's `record` leaves it `queued`, like the
ones it had not started: recovery cannot tell them apart, so it counts an
attempt for each (app.engine.workers), and none runs more often than its
max_attempts allows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, cast

import msgspec

from app.db import AsyncConn
from app.engine.executions import COLUMNS, HELD_SQL, to_execution
from app.engine.models import Execution

__all__ = ["Record", "record"]


class Record(msgspec.Struct, frozen=True):
    """One held execution's change for `record`.

    `started`: when it started, to write its start now (None when its start is
    already written, or it never started); `status` is `running` to write the
    start alone, else how it ended, at `ended`. Both are `time.monotonic()`
    readings of this process: `record` sends their ages.
    """

    id: str
    status: Literal["running", "completed", "failed", "cancelled"]
    started: float | None
    ended: float
    error: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    retry_max_backoff: float | None = None
    """On a failure: retry it (back to pending) while attempts are left, waiting at
    most this many seconds (see app.engine.models.End)."""


class _Row(msgspec.Struct):
    """A Record as `record` sends it: ages instead of moments."""

    id: str
    status: str
    started_ago: float | None
    ended_ago: float
    error: str | None
    payload: dict[str, Any]
    retry_cap: float | None


_encode = msgspec.json.Encoder().encode

_CLAIM_CTES = f"""
next AS MATERIALIZED (
    SELECT id FROM executions
    WHERE status = 'pending' AND available_at <= now()
    ORDER BY priority, available_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE executions e
    SET status = 'queued', worker_id = %(worker)s, queued_at = now()
    FROM next
    WHERE e.id = next.id
    RETURNING e.{COLUMNS.replace(", ", ", e.")}, e.priority AS claim_priority, e.seq AS claim_seq
), claim_logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'queued', jsonb_build_object('worker_id', worker_id, 'attempt', attempt + 1)
    FROM claimed ORDER BY claim_priority, available_at, claim_seq
)"""

# The ends (and starts) of held executions, then the next batch. A start sets
# `running` and counts the attempt; its time never precedes the claim, and an
# end's never precedes the start. A failure sent with a retry cap while
# attempts are left goes back to pending instead, until now() + base *
# 2^(attempt-1), plus up to 10% jitter, capped: the wait is computed here, on
# the database clock, from the row's own policy; the jitter only adds, so a
# retry never starts before the nominal wait. Events go in per execution:
# started, then the end (or `retry_scheduled`), each stamped with when it
# happened.
_RECORD = f"""
WITH v AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(%(records)s::jsonb) AS (
        id text, status text, started_ago float8, ended_ago float8, error text, payload jsonb,
        retry_cap float8
    )) WITH ORDINALITY AS v (id, status, started_ago, ended_ago, error, payload, retry_cap, n)
), locked AS MATERIALIZED (
    -- A start is written once: only over `queued` (a record sent again after its
    -- answer was lost finds the execution running, and starts nothing).
    SELECT e.id, v.started_ago IS NOT NULL AND e.status = 'queued' AS starts,
           e.queued_at, e.started_at, e.attempt, e.max_attempts
    FROM executions e JOIN v ON v.id = e.id
    WHERE e.worker_id = %(worker)s AND e.status IN {HELD_SQL}
    FOR UPDATE OF e
), held AS (
    SELECT locked.id, locked.starts, locked.attempt + locked.starts::int AS attempt,
           v.status = 'failed' AND v.retry_cap IS NOT NULL
               AND locked.attempt + locked.starts::int < locked.max_attempts AS retries,
           CASE WHEN locked.starts
                THEN greatest(locked.queued_at, now() - make_interval(secs => v.started_ago))
                ELSE locked.started_at END AS started_at,
           locked.queued_at
    FROM locked JOIN v ON v.id = locked.id
), timed AS (
    SELECT held.*,
           greatest(held.queued_at, held.started_at,
                    now() - make_interval(secs => v.ended_ago)) AS ended_at
    FROM held JOIN v ON v.id = held.id
), f AS (
    UPDATE executions e
    SET status = CASE WHEN timed.retries THEN 'pending' ELSE v.status END,
        error = CASE WHEN v.status = 'running' THEN e.error ELSE v.error END,
        attempt = timed.attempt,
        worker_id = CASE WHEN timed.retries THEN NULL ELSE e.worker_id END,
        queued_at = CASE WHEN timed.retries THEN NULL ELSE e.queued_at END,
        started_at = CASE WHEN timed.retries THEN NULL ELSE timed.started_at END,
        completed_at = CASE WHEN timed.retries OR v.status = 'running' THEN NULL
                            ELSE timed.ended_at END,
        available_at = CASE WHEN NOT timed.retries THEN e.available_at
                            ELSE now() + make_interval(secs => least(v.retry_cap,
                                e.retry_backoff_seconds * 2 ^ (timed.attempt - 1)
                                * (1 + random() / 10))) END
    FROM v JOIN timed ON timed.id = v.id
    WHERE e.id = v.id AND e.worker_id = %(worker)s AND e.status IN {HELD_SQL}
    RETURNING e.id, e.status, e.attempt, e.available_at, timed.started_at, timed.ended_at,
              v.payload, v.n, timed.starts AS started_here, timed.retries
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, timestamp, payload)
    SELECT f.id, step.event_type,
           CASE WHEN step.k = 1 THEN f.started_at ELSE f.ended_at END,
           CASE WHEN step.k = 1
                THEN jsonb_build_object('worker_id', %(worker)s::text, 'attempt', f.attempt)
                WHEN f.retries
                THEN f.payload || jsonb_build_object('attempt', f.attempt,
                                                     'retry_at', f.available_at)
                ELSE f.payload END
    FROM f CROSS JOIN LATERAL (VALUES
        (1, 'started'), (2, CASE WHEN f.retries THEN 'retry_scheduled' ELSE f.status END)
    ) AS step (k, event_type)
    WHERE (step.k = 1 AND f.started_here) OR (step.k = 2 AND f.status <> 'running')
    ORDER BY f.n, step.k
), {_CLAIM_CTES}
SELECT (SELECT COALESCE(array_agg(id), '{{}}') FROM f) AS recorded, claimed.*
FROM (SELECT) AS one LEFT JOIN claimed ON true
ORDER BY claimed.claim_priority, claimed.available_at, claimed.claim_seq
"""


async def record(
    conn: AsyncConn, worker_id: str, records: Sequence[Record], *, claim: int = 0
) -> tuple[set[str], list[Execution]]:
    """Write `records` and claim up to `claim` more, in one statement.

    Returns the ids recorded (one missing was no longer held by this worker:
    nothing of it was written) and the executions claimed, in claim order.
    """
    now = time.monotonic()
    rows_in = [
        _Row(
            r.id,
            r.status,
            None if r.started is None else now - r.started,
            now - r.ended,
            r.error,
            r.payload,
            r.retry_max_backoff,
        )
        for r in records
    ]
    # One JSON document for the whole batch: encoded at once, not value by value.
    args = {"worker": worker_id, "limit": claim, "records": _encode(rows_in).decode()}
    rows = await (await conn.execute(_RECORD, args)).fetchall()
    recorded = set(cast("list[str]", rows[0]["recorded"])) if rows else set()
    claimed = [to_execution(row) for row in rows if row["id"] is not None]
    return recorded, claimed
