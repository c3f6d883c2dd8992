"""Schedules SQL (sql/schedules.sql): rows in and out, and the statements a fire is made of.

`app.engine.scheduling` puts these together (validation, the clock, one
transaction per fire); nothing here decides anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from app.db import AsyncConn
from app.engine.models import Status
from app.engine.queries import load
from app.engine.schedules import Schedule, ScheduleInput
from app.errors import Conflict

__all__ = [
    "FireRow",
    "SkipRow",
    "advance",
    "claim_due",
    "db_now",
    "delete",
    "disable",
    "fired_already",
    "get",
    "insert",
    "list_page",
    "mark_fired",
    "next_due",
    "notify_changed",
    "notify_executions",
    "recent_fires",
    "recent_skips",
    "record_fires",
    "record_skips",
    "set_enabled",
    "to_schedule",
    "update",
    "upsert",
]

_SQL = load("schedules")


def to_schedule(row: dict[str, Any]) -> Schedule:
    return msgspec.convert(row, Schedule, from_attributes=False)


async def db_now(conn: AsyncConn) -> datetime:
    """The database's clock: every pool on every host agrees on it."""
    row = await (await conn.execute(_SQL["db_now"])).fetchone()
    assert row is not None
    now: datetime = row["now"]  # type: ignore[assignment]
    return now


async def notify_changed(conn: AsyncConn, name: str) -> None:
    """Wake every pool's scheduler: a schedule's next slot may now be sooner."""
    await conn.execute(_SQL["notify_changed"], (name,))


def _args(inp: ScheduleInput, next_fire_at: datetime) -> dict[str, Any]:
    return {
        "name": inp.name,
        "pipeline": inp.pipeline,
        "params": Jsonb(inp.params),
        "lane": inp.lane,
        "cron": inp.cron,
        "interval_seconds": inp.interval_seconds,
        "timezone": inp.timezone,
        "enabled": inp.enabled,
        "grace": inp.misfire_grace_seconds,
        "next_fire_at": next_fire_at,
    }


async def insert(conn: AsyncConn, inp: ScheduleInput, next_fire_at: datetime) -> Schedule:
    """A new schedule; Conflict when the name is taken."""
    try:
        cur = await conn.execute(_SQL["insert"], _args(inp, next_fire_at))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"a schedule named {inp.name!r} exists already") from None
    row = await cur.fetchone()
    assert row is not None
    return to_schedule(row)


async def upsert(
    conn: AsyncConn, inp: ScheduleInput, next_fire_at: datetime
) -> tuple[Schedule, bool]:
    """Create or replace the schedule by name; returns (schedule, created).

    `next_fire_at` applies to a new schedule or a changed timing; a replace
    that keeps cron, interval, time zone and enabled keeps the current slot.
    """
    cur = await conn.execute(
        _SQL["upsert"],
        _args(inp, next_fire_at),
    )
    row = await cur.fetchone()
    assert row is not None
    created = bool(row.pop("created"))
    return to_schedule(row), created


async def update(
    conn: AsyncConn, schedule_id: int, inp: ScheduleInput, next_fire_at: datetime
) -> Schedule | None:
    """Rewrite every field of an existing schedule (PATCH merges before calling this)."""
    cur = await conn.execute(
        _SQL["update"],
        {**_args(inp, next_fire_at), "id": schedule_id},
    )
    row = await cur.fetchone()
    return to_schedule(row) if row else None


async def set_enabled(
    conn: AsyncConn, name: str, enabled: bool, next_fire_at: datetime | None
) -> Schedule | None:
    """Pause or resume; a resume also sets the next slot (slots while paused never fire)."""
    cur = await conn.execute(
        _SQL["set_enabled"],
        {"enabled": enabled, "next": next_fire_at, "name": name},
    )
    row = await cur.fetchone()
    return to_schedule(row) if row else None


async def get(conn: AsyncConn, name: str, *, lock: bool = False) -> Schedule | None:
    cur = await conn.execute(_SQL["get_for_update" if lock else "get"], (name,))
    row = await cur.fetchone()
    return to_schedule(row) if row else None


async def list_page(conn: AsyncConn, *, limit: int, after: str | None = None) -> list[Schedule]:
    """By name; `after` is the last name of the previous page (keyset)."""
    cur = await conn.execute(
        _SQL["list_page"],
        {"after": after, "limit": limit},
    )
    return [to_schedule(r) for r in await cur.fetchall()]


async def delete(conn: AsyncConn, name: str) -> Schedule | None:
    """Remove the schedule with its fires and skips (its executions stay); returns it."""
    cur = await conn.execute(_SQL["delete"], (name,))
    row = await cur.fetchone()
    return to_schedule(row) if row else None


class FireRow(msgspec.Struct, frozen=True):
    """One fire of a schedule, with its execution's status (None once pruned)."""

    fire_at: datetime
    manual: bool
    fired_at: datetime
    execution_id: str | None
    status: Status | None


class SkipRow(msgspec.Struct, frozen=True):
    """A run of slots that were not fired, and why."""

    first_slot: datetime
    last_slot: datetime
    slots: int
    reason: str
    recorded_at: datetime


async def recent_fires(conn: AsyncConn, schedule_id: int, limit: int) -> list[FireRow]:
    cur = await conn.execute(
        _SQL["recent_fires"],
        (schedule_id, limit),
    )
    return [msgspec.convert(r, FireRow) for r in await cur.fetchall()]


async def recent_skips(conn: AsyncConn, schedule_id: int, limit: int) -> list[SkipRow]:
    cur = await conn.execute(
        _SQL["recent_skips"],
        (schedule_id, limit),
    )
    return [msgspec.convert(r, SkipRow) for r in await cur.fetchall()]


# ------------------------------------------------------------------ firing


async def claim_due(conn: AsyncConn, now: datetime, batch: int) -> list[Schedule]:
    """Lock the due schedules no other pool holds (inside the caller's transaction)."""
    cur = await conn.execute(_SQL["claim_due"], {"now": now, "batch": batch})
    return [to_schedule(r) for r in await cur.fetchall()]


async def fired_already(
    conn: AsyncConn, slots: list[tuple[int, datetime]]
) -> set[tuple[int, datetime]]:
    """The slots, of (schedule_id, fire_at), that a committed fire took already."""
    if not slots:
        return set()
    ids, fire_ats = (list(c) for c in zip(*slots, strict=True))
    rows = await (await conn.execute(_SQL["fired_already"], (ids, fire_ats))).fetchall()
    return {(cast(int, r["schedule_id"]), cast(datetime, r["fire_at"])) for r in rows}


async def record_fires(conn: AsyncConn, fires: list[tuple[int, datetime, bool, str]]) -> None:
    """Record fires whose executions were created: (schedule_id, fire_at, manual, execution_id).

    In the transaction that created the executions: the unique slot index
    makes a slot fire once, and a fire row is written only for an execution
    created, so every schedule_fires row has its execution.
    """
    if fires:
        await conn.execute(_SQL["record_fires"], [list(c) for c in zip(*fires, strict=True)])


async def advance(conn: AsyncConn, moves: list[tuple[int, datetime, datetime | None]]) -> None:
    """Set each schedule's next slot (and its last fire): (schedule_id, next_fire_at, fired_at)."""
    if not moves:
        return
    ids, nexts, fired = (list(c) for c in zip(*moves, strict=True))
    await conn.execute(
        _SQL["advance"],
        (ids, nexts, fired),
    )


async def next_due(conn: AsyncConn) -> datetime | None:
    """The earliest next slot of any enabled schedule (the scheduler sleeps until then)."""
    row = await (await conn.execute(_SQL["next_due"])).fetchone()
    return None if row is None else cast("datetime | None", row["at"])


async def notify_executions(conn: AsyncConn, lane: str) -> None:
    """Wake the workers of `lane` (after a fire's commit)."""
    await conn.execute(_SQL["notify_executions"], (lane,))


async def mark_fired(conn: AsyncConn, schedule_id: int, fired_at: datetime) -> None:
    """A manual fire: only `last_fired_at` moves; the slots belong to the pools."""
    await conn.execute(_SQL["mark_fired"], (fired_at, schedule_id))


async def disable(conn: AsyncConn, schedule_ids: list[int]) -> None:
    """Pause schedules the scheduler cannot plan (a resume or fix re-enables them)."""
    if schedule_ids:
        await conn.execute(_SQL["disable"], (schedule_ids,))


async def record_skips(
    conn: AsyncConn, skips: list[tuple[int, datetime, datetime, int, str]]
) -> None:
    """Record runs of skipped slots: (schedule_id, first_slot, last_slot, slots, reason)."""
    if not skips:
        return
    ids, firsts, lasts, counts, reasons = (list(c) for c in zip(*skips, strict=True))
    await conn.execute(
        _SQL["record_skips"],
        (ids, firsts, lasts, counts, reasons),
    )
