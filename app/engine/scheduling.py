"""What the API, the CLI and the worker pools do with schedules.

Changes (create, replace, patch, pause, resume, remove) validate first, take
the next slot from the database clock, store, and NOTIFY the pools. A fire
(`fire_due`, `run_now`) is one transaction: the slot's row in
`schedule_fires` (unique per slot), the execution and its `created` event
(through `executions.insert_many`, as every execution, with its pipeline's
retry budget), and the schedule's next slot commit together or not at all.
The NOTIFY that wakes the workers, and the backend's `submit`, follow the
commit (see `app.engine.executions.insert_many` for why it is not sent
inside it).

One bad schedule never blocks the others: a schedule whose timing cannot be
planned is disabled (with a skip saying why), and a slot of a pipeline this
pool does not know is skipped, not turned into a failed execution.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import msgspec
import psycopg

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions
from app.engine import schedules_sql as sql
from app.engine.backends import OrchestratorBackend
from app.engine.executions import NewExecution
from app.engine.models import Execution
from app.engine.registry import Registry
from app.engine.retry import budget
from app.engine.schedules import Schedule, ScheduleInput, logical_key, next_after, plan, validate
from app.errors import Conflict, InvalidField, NotFound, first_line

__all__ = [
    "FireReport",
    "create",
    "fire_due",
    "patch",
    "pause",
    "remove",
    "replace",
    "resume",
    "run_now",
]

log = logging.getLogger("spine.scheduler")

DUE_BATCH = 100
LATE_TOLERANCE = timedelta(seconds=1)
"""On top of SPINE_SCHEDULER_TICK: how late a tick may find a schedule's own
next slot and still fire it, whatever its misfire grace (a tick runs a little
after its slot)."""
_FIELDS = {f.name for f in msgspec.structs.fields(ScheduleInput)}


async def create(
    conn: AsyncConn, registry: Registry, settings: Settings, inp: ScheduleInput
) -> Schedule:
    """A new schedule (Conflict when the name is taken)."""
    inp = validate(inp, registry, settings)
    schedule = await sql.insert(conn, inp, next_after(inp.spec, await sql.db_now(conn)))
    await sql.notify_changed(conn, schedule.name)
    return schedule


async def replace(
    conn: AsyncConn, registry: Registry, settings: Settings, inp: ScheduleInput
) -> tuple[Schedule, bool]:
    """Create or replace by name (PUT); returns (schedule, created)."""
    inp = validate(inp, registry, settings)
    schedule, created = await sql.upsert(conn, inp, next_after(inp.spec, await sql.db_now(conn)))
    await sql.notify_changed(conn, schedule.name)
    return schedule, created


async def patch(
    conn: AsyncConn, registry: Registry, settings: Settings, name: str, changes: dict[str, Any]
) -> Schedule:
    """Change some fields. Setting `cron` clears the interval and the other way round.

    The next slot is recomputed when the timing or `enabled` changes, so a
    changed schedule never fires a slot of its old timing.
    """
    unknown = set(changes) - _FIELDS
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidField(field, f"unknown field {field!r}")
    async with conn.transaction():
        current = await sql.get(conn, name, lock=True)
        if current is None:
            raise NotFound(f"no schedule named {name!r}")
        merged: dict[str, Any] = {f: getattr(current, f) for f in _FIELDS}
        if changes.get("cron") is not None:
            merged["interval_seconds"] = None
        if changes.get("interval_seconds") is not None:
            merged["cron"] = None
        merged.update(changes)
        inp = validate(msgspec.convert(merged, ScheduleInput), registry, settings)
        timing = ("cron", "interval_seconds", "timezone", "enabled")
        if any(getattr(inp, f) != getattr(current, f) for f in timing):
            next_fire_at = next_after(inp.spec, await sql.db_now(conn))
        else:
            next_fire_at = current.next_fire_at
        try:
            updated = await sql.update(conn, current.id, inp, next_fire_at)
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"a schedule named {inp.name!r} exists already") from None
        assert updated is not None  # locked above
    await sql.notify_changed(conn, updated.name)
    return updated


async def pause(conn: AsyncConn, name: str) -> Schedule:
    """A paused schedule fires nothing until resumed."""
    schedule = await sql.set_enabled(conn, name, False, None)
    if schedule is None:
        raise NotFound(f"no schedule named {name!r}")
    await sql.notify_changed(conn, name)
    return schedule


async def resume(conn: AsyncConn, name: str) -> Schedule:
    """Resume from the first slot after now: slots that passed while paused never fire."""
    async with conn.transaction():
        current = await sql.get(conn, name, lock=True)
        if current is None:
            raise NotFound(f"no schedule named {name!r}")
        following = (
            current.next_fire_at
            if current.enabled
            else next_after(current.spec, await sql.db_now(conn))
        )
        schedule = await sql.set_enabled(conn, name, True, following)
        assert schedule is not None
    await sql.notify_changed(conn, name)
    return schedule


async def remove(conn: AsyncConn, name: str) -> Schedule:
    """Delete the schedule and its fire history; returns what was removed."""
    schedule = await sql.delete(conn, name)
    if schedule is None:
        raise NotFound(f"no schedule named {name!r}")
    await sql.notify_changed(conn, name)
    return schedule


async def run_now(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    name: str,
    *,
    backend: OrchestratorBackend,
) -> Execution:
    """Fire once now, as a manual trigger (`trigger_source = 'manual'`); the slots are untouched.

    Works on a paused schedule too: pausing stops the clock, not the operator.
    Only `last_fired_at` is written, so a pool's concurrent fire keeps its slot.
    """
    async with conn.transaction():
        schedule = await sql.get(conn, name)
        if schedule is None:
            raise NotFound(f"no schedule named {name!r}")
        now = await sql.db_now(conn)
        key = f"{logical_key(name, now)}:manual"
        new = _execution(
            registry, settings, schedule, fire_at=now, key=key, source="manual", backend=backend
        )
        created = await executions.insert_many(conn, [new], notify=False)
        if not created:
            raise Conflict(f"an active execution holds logical_key {key!r}; try again")
        await sql.record_fires(conn, [(schedule.id, now, True, new.id)])
        await sql.mark_fired(conn, schedule.id, now)
    await _wake_workers(conn, created)
    await backend.submit(conn, created[0])
    return created[0]


def _execution(
    registry: Registry,
    settings: Settings,
    schedule: Schedule,
    *,
    fire_at: datetime,
    key: str,
    source: str,
    backend: OrchestratorBackend,
) -> NewExecution:
    """The execution a fire of `schedule` creates, with its pipeline's retry budget."""
    resolved = budget(registry.retry_policy(schedule.pipeline), settings.max_attempts)
    return NewExecution(
        id=executions.new_id(),
        pipeline=schedule.pipeline,
        params=schedule.params,
        lane=schedule.lane,
        trigger_source=source,
        logical_key=key,
        max_attempts=resolved.max_attempts,
        retry_backoff_seconds=resolved.retry_backoff_seconds,
        timeout_seconds=resolved.timeout_seconds,
        event={"schedule": schedule.name, "fire_at": fire_at.isoformat()},
        backend=backend.name,
    )


class FireReport(msgspec.Struct, frozen=True):
    """What one pass of `fire_due` did."""

    fired: list[Execution]
    skipped_slots: int
    clock: datetime
    """The clock the last transaction used (the database's `now()` unless one was passed)."""
    next_due: datetime | None
    """The earliest next slot of any enabled schedule (the scheduler sleeps until then)."""


async def fire_due(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    *,
    backend: OrchestratorBackend,
    now: datetime | None = None,
    batch: int = DUE_BATCH,
) -> FireReport:
    """Fire every due schedule this pool can lock, `batch` schedules per transaction.

    `now` defaults to the database's clock; tests pass one in. Schedules
    another pool holds are skipped (SKIP LOCKED): that pool fires them. Each
    execution created goes to `backend.submit` after its commit.
    """
    tolerance = timedelta(seconds=settings.scheduler_tick) + LATE_TOLERANCE
    fired: list[Execution] = []
    skipped = 0
    clock = now
    while True:
        async with conn.transaction():
            clock = now or await sql.db_now(conn)
            due = await sql.claim_due(conn, clock, batch)
            created, slots = await _fire_batch(
                conn, registry, settings, due, now=clock, tolerance=tolerance, backend=backend
            )
        fired += created
        skipped += slots
        await _wake_workers(conn, created)
        if created:
            await backend.submit_many(conn, created)
        if len(due) < batch:
            break
    next_due = await sql.next_due(conn)
    assert clock is not None  # set by the first pass
    return FireReport(fired=fired, skipped_slots=skipped, clock=clock, next_due=next_due)


async def _fire_batch(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    due: list[Schedule],
    *,
    now: datetime,
    tolerance: timedelta,
    backend: OrchestratorBackend,
) -> tuple[list[Execution], int]:
    fires: list[tuple[int, datetime, NewExecution]] = []
    moves: list[tuple[int, datetime, datetime | None]] = []
    skips: list[tuple[int, datetime, datetime, int, str]] = []
    broken: list[int] = []
    for schedule in due:
        try:
            step = plan(
                schedule.spec,
                schedule.next_fire_at,
                now,
                schedule.misfire_grace_seconds,
                tolerance,
            )
        except Exception as exc:  # a bad row (cron, time zone) must not block the batch
            reason = f"disabled: cannot compute its slots ({first_line(exc)})"
            log.exception("schedule %s: %s", schedule.name, reason)
            broken.append(schedule.id)
            skips.append((schedule.id, schedule.next_fire_at, schedule.next_fire_at, 1, reason))
            continue
        fire_at = step.fire_at
        if fire_at is not None and schedule.pipeline not in registry:
            reason = f"unknown pipeline {schedule.pipeline!r}"
            log.warning("schedule %s: slot %s skipped (%s)", schedule.name, fire_at, reason)
            skips.append((schedule.id, fire_at, fire_at, 1, reason))
            fire_at = None
        if fire_at is not None:
            key = logical_key(schedule.name, fire_at)
            new = _execution(
                registry,
                settings,
                schedule,
                fire_at=fire_at,
                key=key,
                source="schedule",
                backend=backend,
            )
            fires.append((schedule.id, fire_at, new))
        moves.append((schedule.id, step.next_fire_at, None))
        if step.skipped_first is not None and step.skipped_last is not None:
            reason = (
                "a later slot was due: only the most recent missed slot fires"
                if step.fire_at is not None
                else f"more than misfire_grace_seconds ({schedule.misfire_grace_seconds}) late"
            )
            skips.append((schedule.id, step.skipped_first, step.skipped_last, step.skipped, reason))
            log.warning(
                "schedule %s: skipped %d slot(s) from %s to %s (%s)",
                schedule.name,
                step.skipped,
                step.skipped_first.isoformat(),
                step.skipped_last.isoformat(),
                reason,
            )
    # A slot fired already (committed) creates nothing; nor does a logical_key an
    # active execution holds.
    taken = await sql.fired_already(conn, [(i, at) for i, at, _ in fires])
    fresh = [new for i, at, new in fires if (i, at) not in taken]
    created = await executions.insert_many(conn, fresh, notify=False)
    made = {e.id for e in created}
    await sql.record_fires(conn, [(i, at, False, new.id) for i, at, new in fires if new.id in made])
    fired_at = {i: at for i, at, new in fires if new.id in made}
    for schedule_id, fire_at, new in fires:
        if new.id not in made:
            reason = f"not created: fired already, or an active execution holds {new.logical_key!r}"
            log.warning("schedule %d: slot %s skipped (%s)", schedule_id, fire_at, reason)
            skips.append((schedule_id, fire_at, fire_at, 1, reason))
    await sql.advance(conn, [(i, nxt, fired_at.get(i)) for i, nxt, _ in moves])
    await sql.disable(conn, broken)
    await sql.record_skips(conn, skips)
    return created, sum(s[3] for s in skips)


async def _wake_workers(conn: AsyncConn, created: list[Execution]) -> None:
    """After the commit: one NOTIFY per lane that got work (the workers' poll covers a loss)."""
    for lane in sorted({e.lane for e in created}):
        try:
            await sql.notify_executions(conn, lane)
        except psycopg.Error as exc:
            log.warning("fired; NOTIFY failed (%s)", first_line(exc))
