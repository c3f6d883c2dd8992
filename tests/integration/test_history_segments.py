"""Segment DDL in the life of a running system (issue 32's acceptance).

- A concurrent detach interrupted between its two transactions leaves its
  segment "detach pending"; the next pass finishes it (FINALIZE) and drops it.
- Segments created (attached) and dropped (detached concurrently) while a real
  pool drains do not hold the drain up: every execution completes exactly once,
  and the DDL's own timestamps show it ran during the drain.

Finished executions are made set-based with backdated times, then the real
pass (`archive.maintain`) moves them, as in test_history.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import errors, sql

from app import db
from app.engine import segments
from tests.integration.test_history import at, counts, maintain, make_finished, today
from tests.support import run_sync, submit_many, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, object]]

# The history's moves wait an hour at least: backdate the ends so a pass moves them.
_AGED = "UPDATE executions SET completed_at = now() - interval '2 hours' WHERE status = 'completed'"


def _pending(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhdetachpending"
    ).fetchall()
    return sorted(str(r["name"]) for r in rows)


def test_a_detach_left_pending_is_finished_by_the_next_pass(conn: Conn, database_url: str) -> None:
    day = today(conn) - timedelta(days=3)
    make_finished(conn, at(day), count=5)
    conn.execute(_AGED)
    assert maintain(database_url).moved == 5
    name = segments.segment_name("executions_history", day)

    async def interrupted_detach() -> None:
        """The detach's second transaction waits for a reader of the history, and is
        cancelled while it waits: the first one (detach pending) stays committed."""
        async with (
            await db.aconnect(database_url) as reader,
            await db.aconnect(database_url) as ddl,
            await db.aconnect(database_url) as watch,
        ):
            await reader.execute("BEGIN")
            await reader.execute("SELECT count(*) FROM executions_history")  # holds its lock
            pid = ddl.info.backend_pid
            detach = asyncio.ensure_future(
                ddl.execute(
                    sql.SQL(
                        "ALTER TABLE executions_history DETACH PARTITION {} CONCURRENTLY"
                    ).format(sql.Identifier(name))
                )
            )
            while True:  # the detach is waiting for the reader (a lock wait, not a sleep)
                row = await (
                    await watch.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                    )
                ).fetchone()
                if row and row["wait_event_type"] == "Lock":
                    break
                assert not detach.done(), "the detach did not wait for the reader"
            await watch.execute("SELECT pg_cancel_backend(%s)", (pid,))
            try:
                await detach
            except errors.QueryCanceled:
                pass
            else:
                raise AssertionError("the detach was not cancelled")
            await reader.execute("COMMIT")

    run_sync(interrupted_detach())
    assert _pending(conn) == [name]
    # A segment left detach pending is no longer read (its rows left with it).
    assert counts(conn)["history"] == 0

    done = maintain(database_url)
    assert name in done.dropped
    assert _pending(conn) == []
    assert conn.execute("SELECT to_regclass(%s) AS t", (name,)).fetchone() == {"t": None}
    # The day's events segment was not touched: it is still attached, with its rows.
    assert counts(conn)["history_events"] == 15


def test_segment_ddl_does_not_hold_up_a_draining_pool(
    conn: Conn, database_url: str, tmp_path: Path
) -> None:
    n = 3000
    now = today(conn)
    # Segments to drop while the pool drains: a week of days with a moved execution each.
    for back in range(10, 3, -1):
        make_finished(conn, at(now - timedelta(days=back)), count=3)
    conn.execute(_AGED)
    assert maintain(database_url).moved == 21
    conn.execute("CREATE TABLE ddl_log (kind text, name text, at timestamptz)")
    submit_many(conn, "noop", n)

    def drained() -> bool:
        row = conn.execute(
            "SELECT count(*) AS n FROM executions WHERE status IN ('pending', 'queued', 'running')"
        ).fetchone()
        return row is not None and row["n"] == 0

    async def ddl_while_draining() -> None:
        """Alternately attach a new segment and drop an old day's two (detached
        concurrently), logging the database's clock after each."""
        async with await db.aconnect(database_url) as ddl:
            k = 0
            while not drained() or k < 2:
                if k % 2 == 0:
                    made = await segments.ensure_segments(ddl, [now + timedelta(days=20 + k)])
                    kind = "attach"
                else:
                    old = [s for s in await segments.list_segments(ddl) if s.day < now]
                    doomed = [s for s in old if s.day == old[0].day] if old else []
                    for segment in doomed:  # as the pass drops them
                        await segments.drop_segment(ddl, segment)
                    made, kind = [s.name for s in doomed], "detach"
                for name in made:
                    await ddl.execute(
                        "INSERT INTO ddl_log VALUES (%s, %s, clock_timestamp())", (kind, name)
                    )
                k += 1

    # The pool's own passes would take the history lock now and then: out of the way.
    with worker_pool(
        database_url,
        2,
        tmp_path / "pool.log",
        SPINE_CLAIM_BATCH="8",
        SPINE_POLL_INTERVAL="0.1",
        SPINE_HISTORY_INTERVAL="3600",
    ):
        wait_until(
            lambda: conn.execute("SELECT 1 FROM executions WHERE started_at IS NOT NULL").fetchone()
        )
        run_sync(ddl_while_draining())
        wait_until(drained, timeout=120)

    finished = conn.execute(
        """
        SELECT count(*) AS n, count(*) FILTER (WHERE status = 'completed') AS completed,
               min(started_at) AS first, max(completed_at) AS last
        FROM executions WHERE pipeline = 'noop' AND trigger_source = 'test'
          AND created_at > now() - interval '1 hour'
        """
    ).fetchone()
    assert finished is not None
    assert finished["n"] == finished["completed"] == n
    once = conn.execute(
        """
        SELECT count(*) AS n FROM (
            SELECT execution_id FROM execution_events
            WHERE event_type IN ('started', 'completed') GROUP BY execution_id
            HAVING count(*) FILTER (WHERE event_type = 'started') <> 1
                OR count(*) FILTER (WHERE event_type = 'completed') <> 1
        ) twice
        """
    ).fetchone()
    assert once == {"n": 0}
    during = conn.execute(
        "SELECT kind, count(*) AS n FROM ddl_log WHERE at BETWEEN %s AND %s GROUP BY kind",
        (finished["first"], finished["last"]),
    ).fetchall()
    kinds = {str(r["kind"]): int(r["n"]) for r in during}  # type: ignore[call-overload]
    assert kinds.get("attach", 0) >= 1 and kinds.get("detach", 0) >= 2, kinds
