"""Workers SQL: registration and heartbeats, recovery of lost workers' executions, pruning.

A worker's row is its lease: while its heartbeat is fresh, the executions it
holds are its own; once the heartbeat is older than the lease timeout, any
live worker's sweep hands them back to the queue (see `recover_stale`).

An outage is not a death. No worker can heartbeat while the database is
down, so a heartbeat is judged from the later of its own time and the
server's start (`pg_postmaster_start_time()`): a restart gives every worker a
fresh lease to reconnect in. The sweeper, for its part, sweeps only once it has
itself heartbeated without a gap for a full lease (see worker.liveness), which
covers an outage that was the network's and not a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from app.db import AsyncConn
from app.engine.executions import HELD_SQL
from app.engine.models import EXECUTIONS_CHANNEL

__all__ = [
    "SweepGate",
    "heartbeat",
    "live_workers",
    "mark_stopped",
    "prune_workers",
    "recover_stale",
]


class SweepGate:
    """Whether this process has heartbeated without a gap for a full lease, so it may sweep.

    A sweeper that was itself cut off (an outage, a stalled statement) cannot
    tell a dead worker from one that was cut off too: both show an old
    heartbeat. After a gap it waits a lease, in which every live worker has
    reconnected and heartbeated (they retry every lease/3). The gap allowed
    between two heartbeats is half a lease: an outage shorter than that, which
    the gate would not notice, leaves any live worker's heartbeat younger than
    half a lease plus its own interval of a third, so still within the lease.
    """

    def __init__(self, lease: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self.gap = lease / 2
        self._clock = clock
        self._since: float | None = None  # start of the current run of heartbeats
        self._last: float | None = None

    def beat(self) -> bool:
        """Record a heartbeat that has just succeeded; True when a sweep may run now."""
        now = self._clock()
        if self._since is None or self._last is None or now - self._last > self.gap:
            self._since = now
        self._last = now
        return now - self._since >= self.lease


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
    -- used up its own max_attempts (the lost attempt counts), else pending for
    -- another worker at once (the lease timeout was the wait). A `queued` one
    -- may have run too (a quick execution's start is written with its end, in
    -- its batch's statement), so its attempt counts as well: an execution never
    -- runs more often than its max_attempts.
    SELECT e.id, e.worker_id, e.attempt + (e.status = 'queued')::int AS counted,
           CASE WHEN e.cancel_requested THEN 'cancelled'
                WHEN e.attempt + (e.status = 'queued')::int >= e.max_attempts THEN 'failed'
                ELSE 'pending' END AS outcome
    FROM executions e
    LEFT JOIN workers w ON w.id = e.worker_id
    WHERE e.status IN {HELD_SQL}
      AND (w.id IS NULL
           OR w.stopped_at IS NOT NULL
           OR greatest(w.heartbeat_at, pg_postmaster_start_time())
              < now() - make_interval(secs => %(lease)s))
    FOR UPDATE OF e SKIP LOCKED
), recovered AS (
    UPDATE executions e
    SET status = stale.outcome,
        worker_id = CASE WHEN stale.outcome <> 'pending' THEN e.worker_id END,
        queued_at = CASE WHEN stale.outcome <> 'pending' THEN e.queued_at END,
        started_at = CASE WHEN stale.outcome <> 'pending' THEN e.started_at END,
        completed_at = CASE WHEN stale.outcome <> 'pending' THEN now() END,
        attempt = stale.counted,
        error = CASE stale.outcome
                    WHEN 'failed' THEN 'worker lost: ' || stale.worker_id
                        || ' stopped heartbeating; gave up after ' || stale.counted
                        || ' attempt(s)'
                    WHEN 'pending' THEN 'worker lost: ' || stale.worker_id
                        || ' stopped heartbeating'
                    ELSE e.error
                END
    FROM stale
    -- Re-checked here: only what is still held by that same stale worker is touched.
    WHERE e.id = stale.id AND e.worker_id = stale.worker_id
      AND e.status IN {HELD_SQL}
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


async def recover_stale(conn: AsyncConn, *, lease_timeout: float) -> Sequence[dict[str, Any]]:
    """Requeue executions held by workers that stopped heartbeating.

    A heartbeat counts from the server's start at the earliest: after a restart
    a live worker has a full lease to reconnect and heartbeat again. The caller
    must itself have heartbeated for a lease without a gap (`SweepGate`).
    One that was asked to cancel ends `cancelled`; one that has used up
    `max_attempts` ends `failed`.
    """
    cur = await conn.execute(_RECOVER, {"lease": lease_timeout})
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


async def prune_workers(conn: AsyncConn, *, older_than_seconds: float, lease_timeout: float) -> int:
    """Delete the rows of workers gone longer than the cut-off (stopped, or silent).

    Never a row younger than the lease: a live worker heartbeats well within
    it. A row still named by an active execution stays: recovery reads it.
    """
    cur = await conn.execute(
        f"""
        DELETE FROM workers w
        WHERE COALESCE(w.stopped_at, w.heartbeat_at)
              < now() - make_interval(secs => greatest(%(age)s, %(lease)s))
          AND NOT EXISTS (
              SELECT 1 FROM executions e
              WHERE e.worker_id = w.id AND e.status IN {HELD_SQL}
          )
        """,
        {"age": older_than_seconds, "lease": lease_timeout},
    )
    return cur.rowcount
