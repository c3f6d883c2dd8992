"""Firing against the real database: DST days, weekdays, the downtime rule, racing pools.

`fire_due(now=...)` injects the clock to walk across 2026's DST changes; the
instants it fires are checked against PostgreSQL's own time zone database,
and one test runs on the database clock itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import scheduling
from app.engine.schedules import ScheduleInput, Spec, next_after
from tests.support import fire_due

Conn = psycopg.Connection[dict[str, object]]


async def make(conn: db.AsyncConn, name: str, *, start: datetime | None = None, **kw: Any) -> int:
    """A schedule whose first slot is the first after `start` (default: now)."""
    schedule = await scheduling.create(
        conn, default_registry(), get_settings(), ScheduleInput(name=name, pipeline="noop", **kw)
    )
    if start is not None:
        await conn.execute(
            "UPDATE schedules SET next_fire_at = %s WHERE id = %s",
            (next_after(schedule.spec, start), schedule.id),
        )
    return schedule.id


def fires(conn: Conn, schedule_id: int) -> list[datetime]:
    rows = conn.execute(
        "SELECT fire_at FROM schedule_fires WHERE schedule_id = %s AND NOT manual ORDER BY fire_at",
        (schedule_id,),
    ).fetchall()
    return [r["fire_at"] for r in rows]  # type: ignore[misc]


def pg_local(conn: Conn, local: str, tz: str) -> datetime:
    """A local wall time as PostgreSQL's tz database places it."""
    row = conn.execute("SELECT %s::timestamp AT TIME ZONE %s AS at", (local, tz)).fetchone()
    assert row is not None
    return row["at"]  # type: ignore[return-value]


async def walk(url: str, start: datetime, end: datetime, step: timedelta) -> None:
    """Tick every `step` from start to end, twice per instant (a second tick must fire nothing)."""
    async with await db.aconnect(url) as conn:
        at = start
        while at <= end:
            await fire_due(conn, now=at)
            again = await fire_due(conn, now=at)
            assert again.fired == []
            at += step


async def test_nightly_0230_across_both_dst_days_fires_once_a_day(
    database_url: str, conn: Conn
) -> None:
    tz = "America/New_York"
    spring, autumn = datetime(2026, 3, 6, 12, tzinfo=UTC), datetime(2026, 10, 30, 12, tzinfo=UTC)
    async with await db.aconnect(database_url) as aconn:
        nightly = await make(aconn, "n1", cron="30 2 * * *", timezone=tz, start=spring)
        repeated = await make(aconn, "n2", cron="30 1 * * *", timezone=tz, start=autumn)
    await walk(database_url, spring, spring + timedelta(days=4), timedelta(minutes=10))
    assert fires(conn, nightly) == [
        pg_local(conn, "2026-03-07 02:30", tz),
        pg_local(conn, "2026-03-08 03:00", tz),  # 02:30 does not exist: the instant after the gap
        pg_local(conn, "2026-03-09 02:30", tz),
        pg_local(conn, "2026-03-10 02:30", tz),
    ]
    conn.execute(
        "UPDATE schedules SET next_fire_at = %s WHERE id = %s",
        (next_after(Spec("30 2 * * *", None, tz), autumn), nightly),
    )
    await walk(database_url, autumn, autumn + timedelta(days=3), timedelta(minutes=10))
    autumn_fires = [f for f in fires(conn, nightly) if f.month >= 10]
    assert autumn_fires == [
        pg_local(conn, "2026-10-31 02:30", tz),
        pg_local(conn, "2026-11-01 02:30", tz),  # EST: 02:30 is not repeated
        pg_local(conn, "2026-11-02 02:30", tz),
    ]
    # 01:30 happens twice on 2026-11-01: it fires once, at the first (EDT, 05:30 UTC).
    assert fires(conn, repeated) == [
        datetime(2026, 10, 31, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
    ]
    row = conn.execute(
        "SELECT count(*) AS n, count(DISTINCT logical_key) AS keys FROM executions "
        "WHERE trigger_source = 'schedule'"
    ).fetchone()
    assert row == {"n": 10, "keys": 10}
    assert not conn.execute("SELECT 1 FROM schedule_skips").fetchall()


async def test_weekday_evenings_fire_monday_to_friday_only(database_url: str, conn: Conn) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    async with await db.aconnect(database_url) as aconn:
        evenings = await make(aconn, "eod", cron="0 18 * * 1-5", start=start)
    await walk(database_url, start, start + timedelta(days=14), timedelta(hours=1))
    fired = fires(conn, evenings)
    assert len(fired) == 10
    local = conn.execute(
        """
        SELECT DISTINCT extract(isodow FROM fire_at AT TIME ZONE 'America/New_York')::int AS dow,
               (fire_at AT TIME ZONE 'America/New_York')::time AS at
        FROM schedule_fires WHERE schedule_id = %s
        """,
        (evenings,),
    ).fetchall()
    assert {r["dow"] for r in local} == {1, 2, 3, 4, 5}
    assert {str(r["at"]) for r in local} == {"18:00:00"}


async def test_on_the_database_clock_each_slot_fires_once_soon_after_it_comes(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        every = await make(aconn, "tick", interval_seconds=1)

        async def tick_until(count: int) -> None:
            while len(fires(conn, every)) < count:
                report = await fire_due(aconn)  # now() of the database
                assert report.next_due is not None and report.next_due > report.clock
                await asyncio.sleep(0.05)

        await asyncio.wait_for(tick_until(3), timeout=30)
    rows = conn.execute(
        "SELECT fire_at, fired_at FROM schedule_fires WHERE schedule_id = %s ORDER BY fire_at",
        (every,),
    ).fetchall()
    for row in rows:
        late = row["fired_at"] - row["fire_at"]  # type: ignore[operator]
        assert timedelta(0) <= late < timedelta(seconds=5)
    slots: list[datetime] = [r["fire_at"] for r in rows]  # type: ignore[misc]
    assert slots == sorted(set(slots))


async def test_downtime_fires_the_latest_missed_slot_within_grace_and_records_the_rest(
    database_url: str, conn: Conn
) -> None:
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    async with await db.aconnect(database_url) as aconn:
        within = await make(
            aconn, "within", interval_seconds=1, start=start, misfire_grace_seconds=5
        )
        beyond = await make(
            aconn, "beyond", interval_seconds=60, start=start, misfire_grace_seconds=5
        )
        # The pools come back 10.4 s after the first missed slot.
        report = await fire_due(aconn, now=start + timedelta(seconds=11.4))
    first = start + timedelta(seconds=1)
    assert fires(conn, within) == [start + timedelta(seconds=11)]
    assert fires(conn, beyond) == []
    skips = conn.execute(
        "SELECT schedule_id, first_slot, last_slot, slots FROM schedule_skips ORDER BY id"
    ).fetchall()
    assert [(s["schedule_id"], s["first_slot"], s["last_slot"], s["slots"]) for s in skips] == [
        (within, first, start + timedelta(seconds=10), 10),
    ]
    assert report.skipped_slots == 10
    # `beyond`'s first slot (12:01) is not due yet at 12:00:11.4: nothing skipped there.
    nexts = conn.execute("SELECT name, next_fire_at FROM schedules ORDER BY name").fetchall()
    assert [r["next_fire_at"] for r in nexts] == [
        start + timedelta(minutes=1),
        start + timedelta(seconds=12),
    ]
    async with await db.aconnect(database_url) as aconn:
        await fire_due(aconn, now=start + timedelta(minutes=5, seconds=10))
    skipped = conn.execute(
        "SELECT slots, reason FROM schedule_skips WHERE schedule_id = %s", (beyond,)
    ).fetchall()
    assert skipped == [{"slots": 5, "reason": "more than misfire_grace_seconds (5) late"}]
    assert fires(conn, beyond) == []


async def test_racing_pools_fire_each_slot_exactly_once(database_url: str, conn: Conn) -> None:
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    async with await db.aconnect(database_url) as aconn:
        for i in range(40):
            await make(aconn, f"s{i}", interval_seconds=1, start=start, misfire_grace_seconds=60)

    # Six pools tick at each second, concurrently, each on its own connection.
    conns = [await db.aconnect(database_url) for _ in range(6)]
    counts = []
    try:
        for second in range(1, 11):
            at = start + timedelta(seconds=second)
            reports = await asyncio.gather(
                *(
                    fire_due(
                        c,
                        now=at + timedelta(milliseconds=i),
                        batch=7,
                    )
                    for i, c in enumerate(conns)
                )
            )
            counts.append(sum(len(r.fired) for r in reports))
    finally:
        for c in conns:
            await c.close()
    assert counts == [40] * 10
    assert sum(counts) == 400
    row = conn.execute(
        """
        SELECT count(*) AS n, count(DISTINCT (schedule_id, fire_at)) AS slots,
               count(DISTINCT execution_id) AS executions
        FROM schedule_fires
        """
    ).fetchone()
    assert row == {"n": 400, "slots": 400, "executions": 400}
    created = conn.execute(
        "SELECT count(*) AS n FROM execution_events e JOIN schedule_fires f "
        "ON f.execution_id = e.execution_id WHERE e.event_type = 'created' "
        "AND e.payload ->> 'trigger_source' = 'schedule'"
    ).fetchone()
    assert created == {"n": 400}
