"""History apart from the queue: segments, the move, reads across the seam, retry back.

Finished executions are made set-based with backdated times (as a database
that ran for days holds them), then the real pass (`archive.maintain`) moves
them. Every time compared is the database's.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.engine import archive, executions, history, ids, segments
from app.engine.queries import load
from app.migrations import apply_pending, migrations_dir
from tests.api_support import api_client
from tests.support import run_sync

Conn = psycopg.Connection[dict[str, object]]

# Finished executions created at `start` + n * `step` (n < count), each with its three
# events (created, started, and its end), one statement for each table.
MAKE_FINISHED = """
WITH made AS (
    INSERT INTO executions (id, pipeline, params, lane, trigger_source, logical_key, status,
                            attempt, worker_id, created_at, queued_at, started_at,
                            completed_at, available_at, error, overrides)
    SELECT COALESCE(%(id)s::text, gen_random_uuid()::text), 'noop', '{}', 'normal', 'test',
           NULL, %(status)s, 1, 'w0',
           t, t, t, t + interval '1 second', t,
           CASE WHEN %(status)s = 'failed' THEN 'boom' END, '{}'
    FROM generate_series(0, %(count)s - 1) n,
         LATERAL (SELECT %(start)s::timestamptz + n * %(step)s::interval AS t) x
    RETURNING id, created_at, status
)
INSERT INTO execution_events (execution_id, event_type, timestamp)
SELECT id, e.type, created_at FROM made,
       LATERAL (VALUES (1, 'created'), (2, 'started'), (3, made.status)) e (n, type)
ORDER BY made.created_at, e.n
"""


def make_finished(
    conn: Conn,
    start: datetime,
    count: int = 1,
    step: str = "1 minute",
    status: str = "completed",
    execution_id: str | None = None,
) -> None:
    """`count` finished executions from `start`; `execution_id` names the one made."""
    assert execution_id is None or count == 1
    args = {"start": start, "count": count, "step": step, "status": status, "id": execution_id}
    conn.execute(MAKE_FINISHED, args)


def today(conn: Conn) -> date:
    row = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date AS d").fetchone()
    assert row is not None
    return row["d"]  # type: ignore[return-value]


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def maintain(url: str, **options: Any) -> archive.Pass:
    options.setdefault("retention_days", 0)
    options.setdefault("move_after", 3600)

    async def go() -> archive.Pass:
        async with await db.aconnect(url) as conn:
            return await archive.maintain(conn, **options)

    return run_sync(go())  # type: ignore[no-any-return]


def segment_days(url: str) -> dict[str, list[date]]:
    async def go() -> list[segments.Segment]:
        async with await db.aconnect(url) as conn:
            return await segments.list_segments(conn)

    found: dict[str, list[date]] = {}
    for s in run_sync(go()):
        found.setdefault(s.table, []).append(s.day)
    return found


def counts(conn: Conn) -> dict[str, int]:
    row = conn.execute(
        """
        SELECT (SELECT count(*) FROM executions) AS hot,
               (SELECT count(*) FROM execution_events) AS hot_events,
               (SELECT count(*) FROM executions_history) AS history,
               (SELECT count(*) FROM execution_events_history) AS history_events
        """
    ).fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}  # type: ignore[call-overload]


def test_segments_ahead_drops_behind_and_never_an_active_execution(
    conn: Conn, database_url: str
) -> None:
    now = today(conn)
    for back in range(6):  # one finished execution per day, 5 days ago to today (early)
        make_finished(conn, at(now - timedelta(days=back), hour=0))
    # Active executions created long ago: a delayed run pending, one running on a worker.
    conn.execute(
        """
        INSERT INTO executions (id, pipeline, trigger_source, status, worker_id, created_at,
                                started_at, available_at)
        VALUES ('old-pending', 'noop', 'test', 'pending', NULL, now() - interval '10 days',
                NULL, now() + interval '1 day'),
               ('old-running', 'noop', 'test', 'running', 'w1', now() - interval '4 days',
                now() - interval '4 days', now() - interval '4 days')
        """
    )
    done = maintain(database_url, retention_days=3)
    days = segment_days(database_url)
    # Ahead: today and AHEAD_DAYS after; behind: from the horizon only (3 days back).
    expected = [now + timedelta(days=n) for n in range(-3, segments.AHEAD_DAYS + 1)]
    assert days["executions_history"] == expected
    assert days["execution_events_history"] == expected
    # Today's execution finished less than an hour ago (00:00:01 UTC may be within the hour:
    # then it waits); the ones 4 and 5 days back were past retention: deleted, not moved.
    moved_today = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE status = 'completed'"
    ).fetchone()
    assert moved_today is not None
    assert done.discarded == 2
    assert done.moved + int(moved_today["n"]) == 4  # type: ignore[call-overload]
    assert {
        r["id"] for r in conn.execute("SELECT id FROM executions WHERE status <> 'completed'")
    } == {
        "old-pending",
        "old-running",
    }

    # A segment that falls behind the horizon later is dropped whole by a pass; the active
    # executions created that day are in the hot table and stay there.
    conn.execute(
        "UPDATE executions SET created_at = %s WHERE id = 'old-running'",
        (at(now - timedelta(days=2)),),
    )
    make_finished(conn, at(now - timedelta(days=2)), count=3)
    conn.execute(
        "UPDATE executions SET completed_at = now() - interval '2 hours' WHERE status = 'completed'"
    )
    maintain(database_url, retention_days=3)
    assert counts(conn)["history"] == 3 + 4
    again = maintain(database_url, retention_days=1)
    assert segments.segment_name("executions_history", now - timedelta(days=2)) in again.dropped
    assert min(segment_days(database_url)["executions_history"]) == now - timedelta(days=1)
    row = conn.execute("SELECT status FROM executions WHERE id = 'old-running'").fetchone()
    assert row == {"status": "running"}
    assert conn.execute("SELECT 1 FROM executions WHERE id = 'old-pending'").fetchone()


def test_one_pass_at_a_time(conn: Conn, database_url: str) -> None:
    """A pool finding another's pass running skips its turn instead of waiting."""
    with db.connect(database_url) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (archive.HISTORY_LOCK,))
        assert maintain(database_url).ran is False
        other.execute("SELECT pg_advisory_unlock(%s)", (archive.HISTORY_LOCK,))
    assert maintain(database_url).ran is True


def test_reads_across_the_seam(conn: Conn, database_url: str) -> None:
    """An execution that finished in yesterday's segment pages with today's, in one order."""
    yesterday = today(conn) - timedelta(days=1)
    make_finished(conn, at(yesterday), count=3, status="failed")
    done = maintain(database_url)
    assert done.moved == 3
    make_finished(conn, datetime.now(UTC) - timedelta(minutes=5), count=3)  # still hot
    assert counts(conn) == {"hot": 3, "hot_events": 9, "history": 3, "history_events": 9}
    expected = [
        str(r["id"])
        for r in conn.execute("SELECT id FROM executions_all ORDER BY created_at DESC, id DESC")
    ]

    async def go() -> tuple[list[str], dict[str, Any], Any]:
        async with api_client() as client:
            seen: list[str] = []
            url: str | None = "/api/v1/executions?limit=2"
            while url:
                response = await client.get(url)
                assert response.status_code == 200, response.text
                seen += [e["id"] for e in response.json()]
                url = response.links.get("next", {}).get("url")
            one = (await client.get(f"/api/v1/executions/{seen[-1]}")).json()
            events = (await client.get(f"/api/v1/executions/{seen[-1]}/events")).json()
            return seen, one, events

    seen, one, events = run_sync(go())
    assert seen == expected and len(seen) == 6
    assert one["status"] == "failed" and one["created_at"].startswith(yesterday.isoformat())
    assert [e["event_type"] for e in events] == ["created", "started", "failed"]

    async def filtered() -> list[str]:
        async with await db.aconnect(database_url) as aconn:
            return [e.id for e in await history.list_page(aconn, limit=10, status="failed")]

    assert run_sync(filtered()) == expected[3:]


def test_pages_reach_past_their_first_windows(conn: Conn, database_url: str) -> None:
    """A page looks a day back first, then a week, then everywhere (history.WINDOWS): pages
    whose rows lie weeks apart, filtered or not, still come whole and in one order."""
    now = today(conn)
    for back, status in ((30, "failed"), (12, "completed"), (3, "failed"), (1, "completed")):
        make_finished(conn, at(now - timedelta(days=back)), count=2, step="1 second", status=status)
    conn.execute(_AGED_TWO_HOURS)
    assert maintain(database_url).moved == 8
    make_finished(conn, datetime.now(UTC) - timedelta(minutes=5), count=1, status="failed")

    def expected(where: str = "true") -> list[str]:
        query = f"SELECT id FROM executions_all WHERE {where} ORDER BY created_at DESC, id DESC"
        return [str(r["id"]) for r in conn.execute(query)]

    async def pages(**filters: Any) -> list[list[str]]:
        found: list[list[str]] = []
        before = None
        async with await db.aconnect(database_url) as aconn:
            while True:
                page = await history.list_page(aconn, limit=3, before=before, **filters)
                found.append([e.id for e in page])
                if len(page) < 3:
                    return found
                before = (page[-1].created_at, page[-1].id)

    everything = run_sync(pages())
    assert [i for p in everything for i in p] == expected() and len(expected()) == 9
    assert [len(p) for p in everything] == [3, 3, 3, 0]
    failed = run_sync(pages(status="failed"))
    assert [i for p in failed for i in p] == expected("status = 'failed'")
    assert [len(p) for p in failed] == [3, 2]  # the second reaches 30 days back
    since = datetime.now(UTC) - timedelta(days=13)
    bounded = run_sync(pages(since=since))
    assert [i for p in bounded for i in p] == expected(f"created_at >= '{since.isoformat()}'")


_AGED_TWO_HOURS = (
    "UPDATE executions SET completed_at = now() - interval '2 hours' WHERE status <> 'pending'"
)


def test_a_look_up_by_id_reads_the_days_its_id_carries(conn: Conn, database_url: str) -> None:
    """Ids are time-ordered (app.engine.ids): a look-up plans only the segments of the
    days around its id's time. An id made four days before its row (a clock far off) and
    one that carries no time (version 4) are still found, with their events, in every
    segment."""
    near, far = executions.new_ids(2)
    legacy = "0a0a0a0a-0000-4000-8000-00000000000a"
    now = datetime.now(UTC)
    rows = [(near, now - timedelta(hours=3)), (far, now - timedelta(days=4))]
    rows.append((legacy, now - timedelta(days=8)))
    for execution_id, created in rows:
        make_finished(conn, created, execution_id=execution_id)
    assert maintain(database_url).moved == 3

    async def go() -> dict[str, tuple[str | None, list[str]]]:
        async with await db.aconnect(database_url) as aconn:
            found: dict[str, tuple[str | None, list[str]]] = {}
            for execution_id, _ in rows:
                one = await history.get(aconn, execution_id)
                events = await history.list_events(aconn, execution_id)
                found[execution_id] = (one.id if one else None, [e.event_type for e in events])
            assert await history.get(aconn, executions.new_id()) is None
            assert await history.list_events(aconn, executions.new_id()) == []
            return found

    assert run_sync(go()) == {i: (i, ["created", "started", "completed"]) for i, _ in rows}
    made = ids.made_at(near)
    assert made is not None and abs(made - now) < timedelta(minutes=1)
    window = {"id": near, "since": made - history.ID_WINDOW, "until": made + history.ID_WINDOW}
    plan = "\n".join(
        str(r["QUERY PLAN"]) for r in conn.execute("EXPLAIN " + load("history")["get_near"], window)
    )
    planned = set(re.findall(r"executions_history_(\d{8})", plan))
    days = {(made + timedelta(days=d)).strftime("%Y%m%d") for d in (-1, 0, 1)}
    assert planned and planned <= days  # not the days of `far` and `legacy`


def test_manual_retry_moves_the_same_row_back(conn: Conn, database_url: str) -> None:
    make_finished(conn, at(today(conn) - timedelta(days=1)), status="failed")
    maintain(database_url)
    row = conn.execute("SELECT id FROM executions_history").fetchone()
    assert row is not None
    execution_id = str(row["id"])

    async def go() -> dict[str, Any]:
        async with api_client() as client:
            response = await client.post(f"/api/v1/executions/{execution_id}/retry")
            assert response.status_code == 202, response.text
            return dict(response.json())

    retried = run_sync(go())
    assert retried["id"] == execution_id and retried["status"] == "pending"
    assert counts(conn) == {"hot": 1, "hot_events": 4, "history": 0, "history_events": 0}
    events = [
        r["event_type"]
        for r in conn.execute(
            "SELECT event_type FROM execution_events WHERE execution_id = %s ORDER BY id",
            (execution_id,),
        )
    ]
    assert events == ["created", "started", "failed", "retried"]


def test_no_foreign_key_points_at_executions(conn: Conn) -> None:
    rows = conn.execute(
        """
        SELECT conname FROM pg_constraint
        WHERE contype = 'f' AND confrelid IN ('executions'::regclass,
              'executions_history'::regclass, 'execution_events'::regclass,
              'execution_events_history'::regclass)
        """
    ).fetchall()
    assert rows == []


def test_idempotency_key_is_scoped_to_its_execution(conn: Conn) -> None:
    make_finished(conn, datetime.now(UTC))
    row = conn.execute("SELECT id FROM executions").fetchone()
    assert row is not None
    insert = (
        "INSERT INTO execution_events (execution_id, event_type, idempotency_key) "
        "VALUES (%s, 'progress', %s)"
    )
    conn.execute(insert, (row["id"], f"{row['id']}:step-1"))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(insert, (row["id"], "step-2"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert, (row["id"], f"{row['id']}:step-1"))


def _populated_before_history(bare_url: str, tmp_path: Path, executions: int) -> None:
    """Migrations up to before 150, then `executions` finished ones (3 events each) over
    30 days, set-based; then 150 on top."""
    before = tmp_path / "before"
    before.mkdir()
    for f in migrations_dir().glob("*.sql"):
        if f.name < "150":
            shutil.copy(f, before / f.name)
    with db.connect(bare_url) as c:
        apply_pending(c, before)
        step = f"{30 * 86400 / executions} seconds"
        start = datetime.now(UTC) - timedelta(days=31)
        make_finished(c, start, count=executions, step=step)
        c.execute("ANALYZE executions")
        c.execute("ANALYZE execution_events")
        apply_pending(c)


def _drain_history(url: str) -> int:
    passes = 0
    while True:
        passes += 1
        done = maintain(url)
        if done.moved < archive.BATCH:
            return passes


def test_migration_on_a_populated_database(bare_url: str, tmp_path: Path) -> None:
    _populated_before_history(bare_url, tmp_path, 20_000)
    with db.connect(bare_url) as c:
        assert counts(c)["history"] == 0  # the migration made structure only
        _drain_history(bare_url)
        assert counts(c) == {
            "hot": 0,
            "hot_events": 0,
            "history": 20_000,
            "history_events": 60_000,
        }


@pytest.mark.slow
def test_migration_and_move_of_a_million_executions(bare_url: str, tmp_path: Path) -> None:
    _populated_before_history(bare_url, tmp_path, 1_000_000)
    with db.connect(bare_url) as c:
        assert counts(c)["history"] == 0
        _drain_history(bare_url)
        assert counts(c) == {
            "hot": 0,
            "hot_events": 0,
            "history": 1_000_000,
            "history_events": 3_000_000,
        }
