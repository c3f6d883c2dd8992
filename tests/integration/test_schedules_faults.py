"""Firing when something is off: grace 0, a held logical_key, a broken row, a gone pipeline,
a manual run racing a pool, and the backend seam.

Each test here failed before the review fixes of issue 15.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.db import AsyncConn
from app.engine import scheduling
from app.engine.backends import LocalBackend
from app.engine.models import Execution
from app.engine.schedules import ScheduleInput, logical_key, next_after
from app.errors import Conflict
from tests.support import fire_due, run_now, wait_until

Conn = psycopg.Connection[dict[str, object]]
START = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def make(conn: db.AsyncConn, name: str, **kw: Any) -> tuple[int, datetime]:
    """An every-minute schedule whose next slot is the first after START; returns (id, slot)."""
    kw.setdefault("interval_seconds", 60)  # None with a cron
    schedule = await scheduling.create(
        conn, default_registry(), get_settings(), ScheduleInput(name=name, pipeline="noop", **kw)
    )
    slot = next_after(schedule.spec, START)
    await conn.execute("UPDATE schedules SET next_fire_at = %s WHERE id = %s", (slot, schedule.id))
    return schedule.id, slot


async def fire(conn: db.AsyncConn, at: datetime, **kw: Any) -> scheduling.FireReport:
    return await fire_due(conn, now=at, **kw)


def skips(conn: Conn, schedule_id: int) -> list[tuple[datetime, int, str]]:
    rows = conn.execute(
        "SELECT first_slot, slots, reason FROM schedule_skips WHERE schedule_id = %s ORDER BY id",
        (schedule_id,),
    ).fetchall()
    return [(r["first_slot"], r["slots"], r["reason"]) for r in rows]  # type: ignore[misc]


async def test_grace_zero_fires_a_slot_the_tick_finds_milliseconds_late(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        sid, slot = await make(aconn, "strict", misfire_grace_seconds=0)
        report = await fire(aconn, slot + timedelta(milliseconds=7))
    assert [e.logical_key for e in report.fired] == [logical_key("strict", slot)]
    assert skips(conn, sid) == []


async def test_a_held_logical_key_leaves_no_fire_row_without_its_execution(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        sid, slot = await make(aconn, "held")
        key = logical_key("held", slot)
        await aconn.execute(
            "INSERT INTO executions (id, pipeline, params, lane, trigger_source, logical_key) "
            "VALUES ('holder', 'noop', '{}', 'normal', 'api', %s)",
            (key,),
        )
        report = await fire(aconn, slot + timedelta(seconds=1))
    assert report.fired == []
    orphans = conn.execute(
        "SELECT f.id FROM schedule_fires f LEFT JOIN executions e ON e.id = f.execution_id "
        "WHERE e.id IS NULL"
    ).fetchall()
    assert orphans == [] and not conn.execute("SELECT 1 FROM schedule_fires").fetchall()
    [(first, count, reason)] = skips(conn, sid)
    assert (first, count) == (slot, 1) and key in reason
    row = conn.execute("SELECT next_fire_at, last_fired_at FROM schedules").fetchone()
    assert row == {"next_fire_at": slot + timedelta(minutes=1), "last_fired_at": None}


async def test_a_schedule_that_cannot_be_planned_is_disabled_and_the_others_fire(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        bad, slot = await make(aconn, "bad", cron="* * * * *", interval_seconds=None)
        await make(aconn, "good")
        # A row the API would refuse (a time zone this host does not know), as after an upgrade.
        await aconn.execute("UPDATE schedules SET timezone = 'Gone/Zone' WHERE id = %s", (bad,))
        report = await fire(aconn, slot + timedelta(seconds=1))
    assert [e.logical_key for e in report.fired] == [logical_key("good", slot)]
    [(first, count, reason)] = skips(conn, bad)
    assert (first, count) == (slot, 1)
    assert reason.startswith("disabled: cannot compute its slots") and "Gone/Zone" in reason
    enabled = conn.execute("SELECT name, enabled FROM schedules ORDER BY name").fetchall()
    assert enabled == [{"name": "bad", "enabled": False}, {"name": "good", "enabled": True}]


class Recording(LocalBackend):
    """The local backend, remembering what it was handed."""

    def __init__(self) -> None:
        super().__init__(get_settings())
        self.submitted: list[Execution] = []

    async def submit(self, conn: AsyncConn, execution: Execution) -> str | None:
        self.submitted.append(execution)
        return await super().submit(conn, execution)

    async def submit_many(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        return [await self.submit(conn, execution) for execution in batch]


async def test_fires_go_through_the_backend_and_a_gone_pipeline_is_skipped(
    database_url: str, conn: Conn
) -> None:
    backend = Recording()
    async with await db.aconnect(database_url) as aconn:
        gone, slot = await make(aconn, "gone")
        await make(aconn, "kept")
        await aconn.execute("UPDATE schedules SET pipeline = 'retired' WHERE id = %s", (gone,))
        report = await fire(aconn, slot + timedelta(seconds=1), backend=backend)
        again = await fire(aconn, slot + timedelta(minutes=1, seconds=1), backend=backend)
    assert [e.id for e in backend.submitted] == [e.id for e in report.fired + again.fired]
    assert {e.logical_key for e in backend.submitted} == {
        logical_key("kept", slot),
        logical_key("kept", slot + timedelta(minutes=1)),
    }
    assert [(f, n, r) for f, n, r in skips(conn, gone)] == [
        (slot, 1, "unknown pipeline 'retired'"),
        (slot + timedelta(minutes=1), 1, "unknown pipeline 'retired'"),
    ]
    failed = conn.execute("SELECT count(*) AS n FROM executions WHERE pipeline = 'retired'")
    assert failed.fetchone() == {"n": 0}


async def test_run_now_racing_a_pool_keeps_the_slot_the_pool_moved(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        sid, slot = await make(aconn, "raced")
    moved = slot + timedelta(minutes=1)
    async with await db.aconnect(database_url) as pool, await db.aconnect(database_url) as manual:
        async with pool.transaction():
            # A pool holds the schedule row while it fires the slot ...
            await pool.execute("SELECT 1 FROM schedules WHERE id = %s FOR UPDATE", (sid,))
            pid = manual.info.backend_pid
            run = asyncio.create_task(run_now(manual, "raced"))

            def blocked() -> bool:
                row = conn.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                return row is not None and row["wait_event_type"] == "Lock"

            await asyncio.to_thread(wait_until, blocked)
            # ... and moves it on, after run_now read the old slot.
            await pool.execute("UPDATE schedules SET next_fire_at = %s WHERE id = %s", (moved, sid))
        execution = await run
    assert execution.trigger_source == "manual"
    row = conn.execute("SELECT next_fire_at, last_fired_at FROM schedules").fetchone()
    assert row is not None and row["next_fire_at"] == moved and row["last_fired_at"] is not None


async def test_run_now_on_a_held_key_is_a_conflict_that_writes_nothing(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        await make(aconn, "twice")
        # Inside one transaction now() stands still: the second run-now gets the first's key.
        async with aconn.transaction():
            first = await run_now(aconn, "twice")
            with pytest.raises(Conflict, match="logical_key"):
                await run_now(aconn, "twice")
    rows = conn.execute(
        "SELECT f.execution_id, e.id AS found FROM schedule_fires f "
        "LEFT JOIN executions e ON e.id = f.execution_id"
    ).fetchall()
    assert rows == [{"execution_id": first.id, "found": first.id}]
