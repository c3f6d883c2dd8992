"""`python -m bench.retention`: dropping a day of history vs the batched DELETE prune.

Both sides in one run, on scratch databases of one server, with the same rows:
N finished executions created yesterday, three events each, made set-based
(not submitted).

- segments: the pools' pass moves them into yesterday's segment (its rate is
  reported too), then the day's two segments are dropped
  (`app.engine.segments.drop_segment`: detach concurrently, drop);
- delete: the same rows left in the hot tables, deleted by the batched
  DELETE that `spine executions prune` ran before the history existed
  (sql/history.sql "prune_hot").

Each side reports its time and `pg_total_relation_size` of the tables before
and after; the ratio is delete time / drop time. The history's bytes per
execution (with its events) is docs/operations.md's disk growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from app import db
from app.engine import archive, segments
from app.engine.queries import load
from bench.harness import Scratch, connect, progress

_HOT = ("executions", "execution_events")
_HISTORY = ("executions_history", "execution_events_history")

# N finished executions created yesterday (UTC, spread over the day), three events each.
_MAKE = """
WITH made AS (
    INSERT INTO executions (id, pipeline, params, lane, trigger_source, status, attempt,
                            worker_id, created_at, queued_at, started_at, completed_at,
                            available_at, overrides)
    SELECT gen_random_uuid()::text, 'noop', '{}', 'normal', 'bench', 'completed', 1, 'w0',
           t, t, t, t + interval '1 second', t, '{}'
    FROM generate_series(0, %(n)s - 1) n,
         LATERAL (SELECT %(day)s::timestamptz + n * (interval '86399 seconds' / %(n)s) AS t) x
    RETURNING id, created_at
)
INSERT INTO execution_events (execution_id, event_type, timestamp, payload)
SELECT id, e.type, created_at, e.payload FROM made,
       LATERAL (VALUES (1, 'created', '{"trigger_source": "bench", "lane": "normal"}'::jsonb),
                       (2, 'started', '{}'::jsonb), (3, 'completed', '{}'::jsonb))
               e (n, type, payload)
"""

_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
FROM pg_class c
WHERE c.oid = ANY (%(tables)s::regclass[])
   OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = ANY (%(tables)s::regclass[]))
"""


def _size(url: str, tables: tuple[str, ...]) -> int:
    with connect(url) as conn:
        row = conn.execute(_SIZE, {"tables": list(tables)}).fetchone()
        return int(row["bytes"]) if row else 0


def _populate(url: str, n: int) -> datetime:
    with connect(url) as conn:
        row = conn.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS d").fetchone()
        assert row is not None
        day = row["d"].replace(tzinfo=UTC) - timedelta(days=1)
        conn.execute(_MAKE, {"n": n, "day": day})
        conn.execute("VACUUM ANALYZE executions")
        conn.execute("VACUUM ANALYZE execution_events")
        return day  # type: ignore[no-any-return]


async def _move_all(url: str) -> tuple[int, float]:
    async with await db.aconnect(url) as conn:
        moved, started = 0, time.perf_counter()
        while True:
            done = await archive.maintain(
                conn, retention_days=0, move_after=3600, budget_seconds=3600
            )
            moved += done.moved
            if done.moved < archive.BATCH:
                return moved, time.perf_counter() - started


async def _drop_day(url: str, day: datetime) -> float:
    async with await db.aconnect(url) as conn:
        doomed = [s for s in await segments.list_segments(conn) if s.day == day.date()]
        started = time.perf_counter()
        for segment in doomed:
            await segments.drop_segment(conn, segment)
        return time.perf_counter() - started


def _delete_batched(url: str) -> float:
    statement = load("history")["prune_hot"]
    with connect(url) as conn:
        started = time.perf_counter()
        while True:
            cur = conn.execute(statement, {"cutoff": datetime.now(UTC), "batch": archive.BATCH})
            if cur.rowcount < archive.BATCH:
                return time.perf_counter() - started


def run(server_url: str, n: int) -> dict[str, Any]:
    scratch = Scratch(server_url)
    scratch.create_template()
    try:
        seg_url, del_url = scratch.create("retention_segments"), scratch.create("retention_delete")
        progress(f"making {n} finished executions and {3 * n} events, twice")
        day = _populate(seg_url, n)
        _populate(del_url, n)
        hot_bytes = _size(del_url, _HOT)

        moved, move_s = asyncio.run(_move_all(seg_url))
        with connect(seg_url) as conn:
            for table in _HISTORY:
                conn.execute(f"VACUUM ANALYZE {table}")
        history_before = _size(seg_url, _HISTORY)
        progress(f"moved {moved} in {move_s:.1f}s; dropping the day's segments")
        drop_s = asyncio.run(_drop_day(seg_url, day))
        history_after = _size(seg_url, _HISTORY)

        progress("batched DELETE of the same rows")
        delete_before = _size(del_url, _HOT)
        delete_s = _delete_batched(del_url)
        delete_after = _size(del_url, _HOT)
        return {
            "executions": n,
            "events": 3 * n,
            "move_executions_per_s": round(moved / move_s),
            "drop_day_s": round(drop_s, 4),
            "history_bytes_before": history_before,
            "history_bytes_after": history_after,
            "history_bytes_per_execution": round(history_before / n, 1),
            "hot_bytes_per_execution": round(hot_bytes / n, 1),
            "batched_delete_s": round(delete_s, 2),
            "hot_bytes_before_delete": delete_before,
            "hot_bytes_after_delete": delete_after,
            "delete_over_drop": round(delete_s / drop_s, 1),
        }
    finally:
        scratch.drop_all()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--database-url", required=True, help="Server for scratch databases.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="Executions (events: 3x).")
    args = parser.parse_args()
    print(json.dumps(run(args.database_url, args.rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
