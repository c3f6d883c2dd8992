"""The queue's numbers read at each metrics scrape, each from an index or a catalog.

A scrape must stay cheap when executions holds millions of finished rows, so
nothing here counts the whole table:

- active executions (pending, queued, running) by status and lane are counted
  exactly, through the partial indexes on pending and held rows: the cost is
  the size of the queue, not of the history;
- the oldest pending execution per lane is the first entry of the claim's
  index (queue order) for that lane;
- finished executions by status are the planner's estimate (the table's row
  estimate times each status's share from the last ANALYZE): autovacuum
  analyzes executions every 2% of changes, so it drifts by about that much;
- live workers come from the workers table (a few rows per process start).

Measured in docs/benchmarks.md ("Metrics scrape").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.db import AsyncConn
from app.engine.executions import ACTIVE_SQL, TERMINAL_SQL
from app.engine.models import LANES

__all__ = ["QueueGauges", "read_gauges"]

_ACTIVE = f"""
SELECT status, lane, count(*) AS n FROM executions
WHERE status IN {ACTIVE_SQL}
GROUP BY status, lane
"""

# Per lane, the first pending row in claim order (the pending index is (priority, seq)).
_OLDEST_PENDING = """
SELECT l.lane,
       extract(epoch FROM now() - (
           SELECT e.created_at FROM executions e
           WHERE e.status = 'pending' AND e.lane = l.lane
           ORDER BY e.priority, e.seq LIMIT 1
       ))::float8 AS age_s
FROM unnest(%s::text[]) AS l(lane)
"""

_FINISHED_ESTIMATE = f"""
SELECT f.status, round(greatest(c.reltuples, 0) * f.share)::bigint AS n
FROM pg_class c
JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = 'executions'
               AND s.attname = 'status'
CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs)
    AS f(status, share)
WHERE c.oid = 'executions'::regclass AND f.status IN {TERMINAL_SQL}
"""

_LIVE_WORKERS = """
SELECT count(*) AS n FROM workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => %s)
"""


@dataclass(frozen=True)
class QueueGauges:
    active: dict[tuple[str, str], int]  # (status, lane) -> executions
    oldest_pending_s: dict[str, float | None]  # lane -> age in seconds (None: nothing pending)
    finished_estimate: dict[str, int]  # terminal status -> estimated executions
    live_workers: int


async def read_gauges(conn: AsyncConn, *, lease_timeout: float) -> QueueGauges:
    """Four short reads; none scans finished executions."""
    active: list[dict[str, Any]] = await (await conn.execute(_ACTIVE)).fetchall()
    oldest: list[dict[str, Any]] = await (
        await conn.execute(_OLDEST_PENDING, (list(LANES),))
    ).fetchall()
    finished: list[dict[str, Any]] = await (await conn.execute(_FINISHED_ESTIMATE)).fetchall()
    live: dict[str, Any] | None = await (
        await conn.execute(_LIVE_WORKERS, (lease_timeout,))
    ).fetchone()
    return QueueGauges(
        active={(r["status"], r["lane"]): r["n"] for r in active},
        oldest_pending_s={r["lane"]: r["age_s"] for r in oldest},
        finished_estimate={r["status"]: r["n"] for r in finished},
        live_workers=live["n"] if live else 0,
    )
