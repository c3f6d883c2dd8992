"""Submit's one statement (row, `created` event and NOTIFY) and the Waker's shared NOTIFYs.

Notifications are counted up to a sentinel NOTIFY sent after everything else
committed: PostgreSQL delivers them in commit order, so what came before the
sentinel is all there is.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app import db
from app.config import get_settings
from app.engine import history
from app.engine.models import EXECUTIONS_CHANNEL
from app.engine.wake import Waker
from tests.api_support import api_client
from tests.support import submit

Conn = psycopg.Connection[dict[str, object]]
SENTINEL = "sentinel"


async def _listener(database_url: str) -> db.AsyncConn:
    listener = await db.aconnect(database_url)
    await listener.execute(f"LISTEN {EXECUTIONS_CHANNEL}")
    return listener


async def _payloads_until_sentinel(listener: db.AsyncConn, database_url: str) -> list[str]:
    async with await db.aconnect(database_url) as other:
        await other.execute("SELECT pg_notify(%s, %s)", (EXECUTIONS_CHANNEL, SENTINEL))
    payloads: list[str] = []
    async for note in listener.notifies(timeout=30):
        if note.payload == SENTINEL:
            return payloads
        payloads.append(note.payload)
    raise AssertionError(f"no sentinel within 30 s; got {payloads}")


async def test_the_returned_execution_is_the_stored_row(database_url: str) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    options: list[dict[str, Any]] = [
        {},
        {
            "lane": "backfill",
            "logical_key": "k-1",
            "max_attempts": 5,
            "retry_backoff_seconds": 3,  # an int: the row has a float
            "timeout_seconds": 7,
            "run_at": later,
        },
    ]
    async with await db.aconnect(database_url) as conn:
        for kwargs in options:
            execution, created = await submit(conn, "sleep", {"seconds": 2}, **kwargs)
            assert created
            assert execution == await history.get(conn, execution.id)


async def test_a_submit_notifies_with_its_commit_and_a_held_key_does_not(
    database_url: str,
) -> None:
    listener = await _listener(database_url)
    async with listener, await db.aconnect(database_url) as conn:
        first, created = await submit(conn, "noop", {}, lane="backfill", logical_key="k")
        assert created
        again, created = await submit(conn, "noop", {}, logical_key="k")
        assert (again.id, created) == (first.id, False)
        assert await _payloads_until_sentinel(listener, database_url) == ["backfill"]


async def test_a_waker_sends_one_notify_for_the_wakes_before_it_runs(database_url: str) -> None:
    listener = await _listener(database_url)
    pool = await db.open_async_pool(database_url, get_settings())
    waker = Waker(pool)
    try:
        async with listener:
            for _ in range(10):
                waker.wake("normal")
            waker.wake("backfill")
            await waker.close()
            assert await _payloads_until_sentinel(listener, database_url) == [
                "backfill",
                "normal",
            ]
            async with await db.aconnect(database_url) as conn:
                _, created = await submit(conn, "noop", {}, waker=waker)
                assert created
            await waker.close()
            # The waker's NOTIFY only: the insert sent none of its own.
            assert await _payloads_until_sentinel(listener, database_url) == ["normal"]
    finally:
        await pool.close()


async def test_concurrent_posts_wake_the_workers_after_their_commits(
    database_url: str, conn: Conn
) -> None:
    listener = await _listener(database_url)
    async with listener:
        async with api_client() as client:
            responses = await asyncio.gather(
                *(client.post("/api/v1/executions", json={"pipeline": "noop"}) for _ in range(8))
            )
            assert [r.status_code for r in responses] == [202] * 8
        # The app has shut down: its waker sent what was due before the pool closed.
        payloads = await _payloads_until_sentinel(listener, database_url)
    assert 1 <= len(payloads) <= 8
    assert set(payloads) == {"normal"}
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 8}
