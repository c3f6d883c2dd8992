"""The history tier's upkeep: move finished executions to it, keep its segments, prune.

A pass (`maintain`) is what the pools run every SPINE_HISTORY_INTERVAL
(worker/history_keeper.py), one pool at a time (a session advisory lock;
another pool's pass skips instead of waiting):

1. finish what an earlier pass left half done (a detach left pending);
2. create the day segments every row it may move needs, from the oldest
   execution in the hot table (or the retention horizon) to AHEAD_DAYS ahead;
3. drop the segments wholly past retention (detached concurrently);
4. move finished executions, with their events, in batches of one statement
   each (sql/history.sql "move"), until a batch comes back short or the pass
   has used its time.

The executions a database held before the history existed move the same way,
from the first pass on, oldest first: the migration only made the tables.

Segment DDL runs under `lock_timeout`; when it times out the pass stops and
the next one tries again (`segments` explains why no step blocks a drain).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, cast

from psycopg import errors

from app.db import AsyncConn
from app.engine import segments
from app.engine.queries import load

__all__ = [
    "BATCH",
    "HISTORY_LOCK",
    "Pass",
    "maintain",
    "move_batch",
    "prune",
]

log = logging.getLogger(__name__)

BATCH: Final = 5000
"""Executions one move statement takes (with their events: about four times as many rows)."""
PASS_SECONDS: Final = 10.0
"""Most time one pass spends moving before it yields to the next."""
HISTORY_LOCK: Final = 0x5350494E4548  # "SPINEH"
"""The session advisory lock one pass (or one prune) holds: one at a time per database."""

_SQL = load("history")


@dataclass
class Pass:
    """What one pass did."""

    ran: bool = True  # False: another pool's pass held the lock
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved: int = 0  # executions now in the history tables
    discarded: int = 0  # executions deleted instead: created before the retention horizon
    stopped: str | None = None  # why the pass stopped early (a lock timeout)


async def _clock(conn: AsyncConn, back_seconds: float = 0.0) -> datetime:
    """The database's now(), less `back_seconds`."""
    row = await (await conn.execute(_SQL["clock"], (back_seconds,))).fetchone()
    assert row is not None
    return cast(datetime, row["at"])


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


async def move_batch(
    conn: AsyncConn,
    *,
    after_seconds: float,
    covered_until: datetime,
    horizon: datetime | None,
    batch: int = BATCH,
) -> tuple[int, int]:
    """One move statement: (taken from the hot table, kept in the history)."""
    row = await (
        await conn.execute(
            _SQL["move"],
            {
                "after": after_seconds,
                "covered_until": covered_until,
                "horizon": horizon or datetime.min.replace(tzinfo=UTC),
                "batch": batch,
            },
        )
    ).fetchone()
    assert row is not None
    return cast(int, row["taken"]), cast(int, row["kept"])


async def _try_lock(conn: AsyncConn) -> bool:
    row = await (await conn.execute(_SQL["try_lock"], (HISTORY_LOCK,))).fetchone()
    return bool(row and row["ok"])


async def _unlock(conn: AsyncConn) -> None:
    await conn.execute(_SQL["unlock"], (HISTORY_LOCK,))


async def maintain(
    conn: AsyncConn,
    *,
    retention_days: int,
    move_after: float,
    batch: int = BATCH,
    budget_seconds: float = PASS_SECONDS,
) -> Pass:
    """One pass (see the module's docstring). `conn` must be in autocommit and
    otherwise unused: the lock is its session's, and DETACH ... CONCURRENTLY
    refuses a transaction block."""
    if not await _try_lock(conn):
        return Pass(ran=False)
    try:
        return await _pass(conn, retention_days, move_after, batch, budget_seconds)
    finally:
        await _unlock(conn)


async def _pass(
    conn: AsyncConn, retention_days: int, move_after: float, batch: int, budget_seconds: float
) -> Pass:
    done = Pass()
    started = time.monotonic()
    now = await _clock(conn)
    today = _day(now)
    horizon_day = today - timedelta(days=retention_days) if retention_days else None
    horizon = segments.day_start(horizon_day) if horizon_day else None
    try:
        done.dropped += await segments.finish_detaches(conn)
        row = await (await conn.execute(_SQL["oldest_hot"])).fetchone()
        oldest = _day(cast(datetime, row["at"])) if row and row["at"] else today
        first = max(oldest, horizon_day) if horizon_day else oldest
        first = min(first, today)
        last = today + timedelta(days=segments.AHEAD_DAYS)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        done.created += await segments.ensure_segments(conn, days)
        if horizon_day is not None:
            for segment in await segments.list_segments(conn):
                if segment.day < horizon_day:
                    await segments.drop_segment(conn, segment)
                    done.dropped.append(segment.name)
    except errors.LockNotAvailable as exc:
        done.stopped = f"segment DDL waited past lock_timeout: {exc}"
        log.info("history pass stopped: %s", done.stopped)
        return done
    covered_until = segments.day_start(last + timedelta(days=1))
    while True:
        taken, kept = await move_batch(
            conn,
            after_seconds=move_after,
            covered_until=covered_until,
            horizon=horizon,
            batch=batch,
        )
        done.moved += kept
        done.discarded += taken - kept
        if taken < batch or time.monotonic() - started > budget_seconds:
            return done


async def prune(conn: AsyncConn, *, older_than_seconds: float, batch: int = BATCH) -> int:
    """Delete finished executions, with their events, older than the cut-off; how many.

    History segments wholly before the cut-off are dropped (their rows are
    counted first); the segment the cut-off falls in and the hot table are
    deleted from in batches. A segment goes by the day its executions were
    created, so an execution created before the cut-off that finished after
    it goes with its day. Active executions are never touched (the history
    holds only finished ones). Waits for a running pass to end (the lock).
    """
    await conn.execute(_SQL["lock"], (HISTORY_LOCK,))
    try:
        cutoff = await _clock(conn, older_than_seconds)
        total = 0
        boundary: date | None = None
        for segment in await segments.list_segments(conn):
            end = segments.day_start(segment.day + timedelta(days=1))
            if end <= cutoff:
                if segment.table == "executions_history":
                    total += await segments.count_rows(conn, segment)
                await segments.drop_segment(conn, segment)
            elif segments.day_start(segment.day) < cutoff:
                boundary = segment.day
        if boundary is not None:
            args: dict[str, Any] = {
                "segment_start": segments.day_start(boundary),
                "cutoff": cutoff,
                "batch": batch,
            }
            total += await _in_batches(conn, _SQL["prune_history"], args, batch)
        hot = {"cutoff": cutoff, "batch": batch}
        total += await _in_batches(conn, _SQL["prune_hot"], hot, batch)
        return total
    finally:
        await _unlock(conn)


async def _in_batches(conn: AsyncConn, statement: str, args: dict[str, Any], batch: int) -> int:
    total = 0
    while True:
        cur = await conn.execute(statement, args)
        total += cur.rowcount
        if cur.rowcount < batch:
            return total
