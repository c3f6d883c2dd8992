"""The LISTEN helper against a real server: notifications, and a reconnect after a kill."""

from __future__ import annotations

import asyncio

import pytest

from app import db
from app.engine.listen import Listener
from app.engine.retry import Backoff

CHANNEL = "spine_test_listen"


async def notify(url: str, payload: str) -> None:
    async with await db.aconnect(url) as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def terminate(url: str, conn: db.AsyncConn) -> None:
    async with await db.aconnect(url) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))


async def test_wait_returns_the_first_notification_or_nothing_after_the_time(
    database_url: str,
) -> None:
    async with Listener(database_url, [CHANNEL], name="test listener") as listener:
        await listener.connect()
        assert await listener.wait(0.01) == []
        await notify(database_url, "one")
        [note] = await listener.wait(10)
        assert (note.channel, note.payload) == (CHANNEL, "one")


async def test_a_terminated_connection_is_replaced_and_on_connect_runs_again(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    connected: list[int] = []

    async def on_connect(conn: db.AsyncConn) -> None:
        connected.append(conn.info.backend_pid)

    async with Listener(
        database_url,
        [CHANNEL],
        name="test listener",
        on_connect=on_connect,
        backoff=Backoff(0.01, 0.1),
    ) as listener:
        first = await listener.connect()
        first_pid = first.info.backend_pid
        await terminate(database_url, first)
        assert await listener.wait(10) == []  # the loss ends the wait (nothing to report)
        assert "test listener lost its connection" in caplog.text
        second = await listener.connect()
        assert second is not first and not second.closed
        assert connected == [first_pid, second.info.backend_pid]
        await notify(database_url, "after")  # it listens again on the new connection
        [note] = await listener.wait(10)
        assert note.payload == "after"
        assert listener.connects == 2
    assert second.closed


async def test_notifies_goes_on_across_a_reconnect(database_url: str) -> None:
    connects: asyncio.Queue[db.AsyncConn] = asyncio.Queue()

    async def on_connect(conn: db.AsyncConn) -> None:
        connects.put_nowait(conn)

    listener = Listener(
        database_url,
        [CHANNEL],
        name="test listener",
        on_connect=on_connect,
        backoff=Backoff(0.01, 0.1),
    )
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def listen() -> None:
        async for note in listener.notifies():
            seen.put_nowait(note.payload)

    task = asyncio.create_task(listen())
    try:
        first = await asyncio.wait_for(connects.get(), 10)
        await notify(database_url, "before")
        assert await asyncio.wait_for(seen.get(), 10) == "before"
        await terminate(database_url, first)
        second = await asyncio.wait_for(connects.get(), 10)  # listening again
        assert second is not first
        await notify(database_url, "after")
        assert await asyncio.wait_for(seen.get(), 10) == "after"
        assert listener.connects == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await listener.close()


async def test_a_server_that_refuses_connections_is_retried_with_backoff(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=1"
    listener = Listener(unreachable, [CHANNEL], name="test listener", backoff=Backoff(0.01, 0.02))
    task = asyncio.create_task(listener.connect())
    try:
        async with asyncio.timeout(30):
            while caplog.text.count("test listener cannot connect") < 3:
                await asyncio.sleep(0.01)  # polls the log; the listener's own waits are 10-20 ms
        assert not task.done()  # still trying: a refused connection is not the end
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
