"""Finished executions and their events, loaded set-based for the scale benchmark.

One function, `load_finished`, is all the scale scenario knows of where history
lives: the day segments of `executions_history` and `execution_events_history`
(migration 150), where the pools' history passes put every execution that
finished more than `SPINE_HISTORY_MOVE_AFTER` ago. Loading them there directly
is what a database that has run for `days` days holds; loading them into the
hot tables instead would measure a backlog the pools then spend minutes moving.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from app import db
from app.engine import segments
from bench.harness import connect

__all__ = ["load_finished"]

# Executions created from 1 hour + `days` days ago to 1 hour ago (the hot table keeps
# the last hour), 5% failed; three events each: created, queued, their end. Events
# take their ids from the hot events' sequence, as a moved event keeps its own.
_LOAD = """
WITH made AS (
    INSERT INTO executions_history (
        id, pipeline, params, lane, trigger_source, logical_key, status, backend,
        backend_run_id, attempt, worker_id, cancel_requested, created_at, queued_at,
        started_at, completed_at, error, max_attempts, retry_backoff_seconds, available_at,
        timeout_seconds, overrides)
    SELECT md5(%(tag)s || g)::uuid::text, 'noop', '{}'::jsonb, 'normal', 'history', NULL,
           CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'completed' END, 'local', NULL, 1, 'w0',
           false, at, at, at, at + interval '5 ms',
           CASE WHEN g %% 20 = 0 THEN 'boom' END, 3, 2, at, NULL, '{}'::jsonb
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


def load_finished(url: str, n: int, *, tag: str, days: int = 30, chunk: int = 1_000_000) -> None:
    """Add `n` finished executions (5% failed) spread over the `days` days before the last
    hour, with three events each, into the history's segments (created first), a million
    executions per statement, then `VACUUM ANALYZE` both history tables.

    `tag` keeps the ids of one call apart from another's."""
    with connect(url) as conn:
        _load(conn, url, n, tag=tag, days=days, chunk=chunk)


def _load(conn: Any, url: str, n: int, *, tag: str, days: int, chunk: int) -> None:
    row = conn.execute("SELECT now() - interval '1 hour' AS newest").fetchone()
    assert row is not None
    newest: datetime = row["newest"]
    first = (newest - timedelta(days=days)).astimezone(UTC).date()
    span = (newest.astimezone(UTC).date() - first).days
    asyncio.run(_ensure_segments(url, [first + timedelta(days=d) for d in range(span + 1)]))
    for done in range(0, n, chunk):
        size = min(chunk, n - done)
        conn.execute(_LOAD, {"tag": f"{tag}-{done}-", "n": size, "days": days, "newest": newest})
    for table in segments.TABLES:
        conn.execute(f"VACUUM ANALYZE {table}")


async def _ensure_segments(url: str, days: list[Any]) -> None:
    async with await db.aconnect(url) as conn:
        await conn.set_autocommit(True)
        await segments.ensure_segments(conn, days)
