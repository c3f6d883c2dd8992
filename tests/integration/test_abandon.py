"""The abandon transaction: all of a timed-out attempt's last writes, or none of them."""

from __future__ import annotations

import time

from app import db
from app.engine import batches, history, workers
from app.engine.abandon import abandon
from app.engine.models import End, Execution
from tests.support import submit


async def held_batch(conn: db.AsyncConn, count: int) -> list[Execution]:
    """`count` noop executions claimed by worker `w` (held `queued`, not started)."""
    for _ in range(count):
        await submit(conn, "noop")
    await workers.heartbeat(conn, "w", "host", 1)
    claimed = (await batches.record(conn, "w", [], claim=count))[1]
    assert len(claimed) == count
    return claimed


async def status_of(conn: db.AsyncConn, execution: Execution) -> tuple[str, str | None]:
    row = await history.get(conn, execution.id)
    assert row is not None
    return row.status, row.worker_id


async def stopped(conn: db.AsyncConn) -> bool:
    row = await (await conn.execute("SELECT stopped_at FROM workers WHERE id = 'w'")).fetchone()
    assert row is not None
    return row["stopped_at"] is not None


TIMED_OUT = End("failed", "timed out after 1 s; abandoned 1 s later", {"error_type": "TimedOut"})


async def test_it_writes_the_start_the_timeout_the_give_back_and_the_stop_together(
    database_url: str,
) -> None:
    async with await db.aconnect(database_url) as conn:
        stuck, behind = await held_batch(conn, 2)
        began = time.monotonic()
        start = batches.Record(stuck.id, "running", began, began)
        assert await abandon(conn, "w", stuck.id, TIMED_OUT, records=[start], held=[behind.id])
        assert await status_of(conn, stuck) == ("failed", "w")
        assert (await status_of(conn, behind))[0] == "pending"  # given back, not failed
        assert await stopped(conn)
        events = [e.event_type for e in await history.list_events(conn, stuck.id)]
        assert events[-2:] == ["started", "failed"]


async def test_an_attempt_no_longer_held_leaves_everything_as_it_was(database_url: str) -> None:
    async with await db.aconnect(database_url) as conn:
        stuck, behind = await held_batch(conn, 2)
        # Taken from this worker meanwhile (say, recovered by another's sweep).
        await conn.execute("UPDATE executions SET worker_id = 'other' WHERE id = %s", (stuck.id,))
        began = time.monotonic()
        start = batches.Record(stuck.id, "running", began, began)
        assert not await abandon(conn, "w", stuck.id, TIMED_OUT, records=[start], held=[behind.id])
        assert await status_of(conn, stuck) == ("queued", "other")
        assert await status_of(conn, behind) == ("queued", "w")  # the give-back rolled back
        assert not await stopped(conn)
