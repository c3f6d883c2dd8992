"""Finished executions and their events, loaded set-based for the scale benchmark.

One function, `load_finished`, is all the scale scenario knows of where history
lives: today the `executions` and `execution_events` tables. When history moves
to tables of its own, this is the one function to adapt.
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["load_finished"]

_LOAD = """
WITH made AS (
    INSERT INTO executions (id, pipeline, params, lane, status, trigger_source, attempt,
                            created_at, queued_at, started_at, completed_at, error,
                            max_attempts, retry_backoff_seconds, available_at)
    SELECT md5(%(tag)s || g)::uuid::text, 'noop', '{}'::jsonb, 'normal',
           CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'completed' END, 'history', 1,
           at, at, at, at + interval '5 ms',
           CASE WHEN g %% 20 = 0 THEN 'boom' END, 3, 2, at
    FROM generate_series(1, %(n)s) AS g,
         LATERAL (SELECT now() - interval '1 hour'
                       - make_interval(secs => (%(days)s * 86400.0) * g / %(n)s) AS at) AS t
    RETURNING id, created_at, status
)
INSERT INTO execution_events (execution_id, event_type, timestamp, payload)
SELECT made.id, CASE WHEN k.n = 3 THEN made.status ELSE k.type END, made.created_at,
       '{}'::jsonb
FROM made, (VALUES (1, 'created'), (2, 'queued'), (3, 'ended')) AS k (n, type)
"""


def load_finished(
    conn: psycopg.Connection[Any], n: int, *, tag: str, days: int = 30, chunk: int = 1_000_000
) -> None:
    """Add `n` finished executions (5% failed) spread over the last `days` days, with three
    events each (created, queued, their end), a million executions per statement.

    `tag` keeps the ids of one call apart from another's."""
    for done in range(0, n, chunk):
        size = min(chunk, n - done)
        conn.execute(_LOAD, {"tag": f"{tag}-{done}-", "n": size, "days": days})
