"""Finished executions and their events, loaded set-based for the scale benchmark.

One function, `load_finished`, is all the scale scenario knows of where history
lives: the history tables (migration 150), in their day segments, where the
pools' pass puts every execution finished more than SPINE_HISTORY_MOVE_AFTER
(an hour at least) ago. Loading there directly, rather than into the hot
tables, measures the steady state: a pass moving a million rows in the
background while the reads are timed would measure the move instead.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app import db
from app.engine import segments

__all__ = ["load_finished"]

_LOAD = """
WITH made AS (
    INSERT INTO executions_history (id, pipeline, params, lane, status, trigger_source, backend,
                                    attempt, cancel_requested, created_at, queued_at, started_at,
                                    completed_at, error, max_attempts, retry_backoff_seconds,
                                    available_at, overrides)
    SELECT md5(%(tag)s || g)::uuid::text, 'noop', '{}'::jsonb, 'normal',
           CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'completed' END, 'history', 'local', 1,
           false, at, at, at, at + interval '5 ms',
           CASE WHEN g %% 20 = 0 THEN 'boom' END, 3, 2, at, '{}'::jsonb
    FROM generate_series(1, %(n)s) AS g,
         LATERAL (SELECT %(newest)s::timestamptz
                       - make_interval(secs => (%(days)s * 86400.0) * g / %(n)s) AS at) AS t
    ORDER BY g DESC  -- oldest first, as the pass moves them
    RETURNING id, created_at, status
)
INSERT INTO execution_events_history (execution_created_at, id, execution_id, event_type,
                                      timestamp, payload)
SELECT made.created_at, nextval(pg_get_serial_sequence('execution_events', 'id')), made.id,
       CASE WHEN k.n = 3 THEN made.status ELSE k.type END, made.created_at, '{}'::jsonb
FROM made, (VALUES (1, 'created'), (2, 'queued'), (3, 'ended')) AS k (n, type)
"""


async def _segments(url: str, first: datetime, last: datetime) -> None:
    async with await db.aconnect(url) as conn:
        day, end = first.date(), last.date()
        await segments.ensure_segments(
            conn, [day + timedelta(days=n) for n in range((end - day).days + 1)]
        )


def load_finished(
    conn: psycopg.Connection[Any], n: int, *, tag: str, days: int = 30, chunk: int = 1_000_000
) -> None:
    """Add `n` finished executions (5% failed) spread over the `days` days before an hour
    ago, with three events each (created, queued, their end), into the history's segments
    (created first), a million executions per statement, then analyze them.

    `tag` keeps the ids of one call apart from another's. `conn` is in autocommit."""
    row = conn.execute("SELECT now() - interval '1 hour' AS at").fetchone()
    assert row is not None
    newest: datetime = row["at"].astimezone(UTC)
    asyncio.run(_segments(conn.info.dsn, newest - timedelta(days=days), newest))
    for done in range(0, n, chunk):
        size = min(chunk, n - done)
        conn.execute(_LOAD, {"tag": f"{tag}-{done}-", "n": size, "days": days, "newest": newest})
    for table in segments.TABLES:
        conn.execute(f"VACUUM ANALYZE {table}")
