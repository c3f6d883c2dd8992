"""The queue's numbers read at each metrics scrape, each from an index or a catalog.

A scrape must stay cheap when executions holds millions of finished rows, so
nothing here counts the whole table:

- active executions (pending, queued, running) by status and lane are counted
  exactly, through the partial indexes on pending rows (an index-only scan)
  and on held rows: the cost is the size of the queue, not of the history;
- the longest-due pending execution per lane is the first due entry of the
  claim's index (queue order) for that lane's priority; those not yet due (a
  retry's backoff, a delayed run) are counted apart, from the same index;
- finished executions by status are the planner's estimate (each table's row
  estimate times each status's share from its last ANALYZE), summed over the
  hot table and the history's segments: autovacuum analyzes executions every
  2% of changes and a segment every 10%, so it drifts by about that much;
- live workers come from the workers table (a few rows per process start).

Measured in docs/benchmarks.md ("Metrics scrape").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.db import AsyncConn
from app.engine.executions import HELD_SQL, TERMINAL_SQL
from app.engine.models import Lane

__all__ = ["QueueGauges", "read_gauges"]

# A lane's claim priority, as the generated column executions.priority computes it
# (migration 001): the pending index is (priority, seq), so pending rows are
# counted and the oldest found by priority without reading the table.
LANE_PRIORITY: dict[Lane, int] = {"normal": 0, "backfill": 1}

# Due: claimable now (available_at <= now()). The longest-due is the first due entry
# of the claim's index (priority, available_at, seq), its age counted from
# available_at: a retry is due from the end of its backoff, a delayed run from its
# run_at. Executions not yet due are waiting on purpose: counted apart.
_PENDING = """
SELECT l.lane,
       (SELECT count(*) FROM executions e
        WHERE e.status = 'pending' AND e.priority = l.priority) AS n,
       (SELECT count(*) FROM executions w
        WHERE w.status = 'pending' AND w.priority = l.priority
          AND w.available_at > now()) AS not_due,
       extract(epoch FROM now() - (
           SELECT o.available_at FROM executions o
           WHERE o.status = 'pending' AND o.priority = l.priority AND o.available_at <= now()
           ORDER BY o.priority, o.available_at, o.seq LIMIT 1
       ))::float8 AS oldest_s
FROM unnest(%s::text[], %s::smallint[]) AS l(lane, priority)
"""

_HELD = f"""
SELECT status, lane, count(*) AS n FROM executions
WHERE status IN {HELD_SQL}
GROUP BY status, lane
"""

# Over both tiers: the hot table and each history segment (autovacuum analyzes
# each segment; never the partitioned table itself, which has no statistics of its
# own). A segment not analyzed yet (a new day's first minutes) counts as none.
_FINISHED_ESTIMATE = f"""
SELECT f.status, sum(round(greatest(c.reltuples, 0) * f.share))::bigint AS n
FROM (
    SELECT 'executions'::regclass AS oid
    UNION ALL
    SELECT i.inhrelid::regclass FROM pg_inherits i
    WHERE i.inhparent = 'executions_history'::regclass
) t
JOIN pg_class c ON c.oid = t.oid
JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = c.relname
               AND s.attname = 'status'
CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs)
    AS f(status, share)
WHERE f.status IN {TERMINAL_SQL}
GROUP BY f.status
"""

_LIVE_WORKERS = """
SELECT count(*) AS n FROM workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => %s)
"""


@dataclass(frozen=True)
class QueueGauges:
    active: dict[tuple[str, str], int]  # (status, lane) -> executions
    oldest_pending_s: dict[str, float | None]  # lane -> seconds the longest-due one has been due
    not_due: dict[str, int]  # lane -> pending executions waiting for their available_at
    finished_estimate: dict[str, int]  # terminal status -> estimated executions
    live_workers: int


async def read_gauges(conn: AsyncConn, *, lease_timeout: float) -> QueueGauges:
    """Four short reads; none scans finished executions."""
    lanes = (list(LANE_PRIORITY), list(LANE_PRIORITY.values()))
    pending: list[dict[str, Any]] = await (await conn.execute(_PENDING, lanes)).fetchall()
    held: list[dict[str, Any]] = await (await conn.execute(_HELD)).fetchall()
    finished: list[dict[str, Any]] = await (await conn.execute(_FINISHED_ESTIMATE)).fetchall()
    live: dict[str, Any] | None = await (
        await conn.execute(_LIVE_WORKERS, (lease_timeout,))
    ).fetchone()
    active = {("pending", r["lane"]): r["n"] for r in pending}
    active.update({(r["status"], r["lane"]): r["n"] for r in held})
    return QueueGauges(
        active=active,
        oldest_pending_s={r["lane"]: r["oldest_s"] for r in pending},
        not_due={r["lane"]: r["not_due"] for r in pending},
        finished_estimate={r["status"]: r["n"] for r in finished},
        live_workers=live["n"] if live else 0,
    )
