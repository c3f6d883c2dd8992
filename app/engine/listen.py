"""One LISTEN connection that comes back when it breaks: every listener's reconnect, once.

The worker (wake-ups and cancels), the scheduler (schedule changes), the
dashboard's live feed and `spine run --wait` each hold a connection that
LISTENs. A NOTIFY sent while a listener is away is lost for good, so whoever
listens re-reads what it watches after each (re)connect: `on_connect` runs
then, on the new connection, before any notification is taken from it.

A broken connection is noticed where it is used (taking notifications here,
or a caller's own statement: `lost()`), closed, and replaced at the next
`connect()`, after a backoff that grows while reconnecting keeps failing
(the server restarting) and resets once a connection listens again.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType

import psycopg
from psycopg import sql

from app import db
from app.engine.retry import Backoff
from app.errors import first_line

__all__ = ["Listener"]

log = logging.getLogger(__name__)

Notify = psycopg.Notify


class Listener:
    """A connection LISTENing on `channels`, reconnected with backoff whenever it breaks."""

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        *,
        name: str,
        on_connect: Callable[[db.AsyncConn], Awaitable[None]] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.channels = tuple(channels)
        self.name = name
        self.conn: db.AsyncConn | None = None
        """The listening connection while there is one (None before the first connect)."""
        self.connects = 0
        """Connections made so far (a reconnect counts)."""
        self._on_connect = on_connect
        self._backoff = backoff or Backoff(0.1, 5.0)
        self._wait_first = False  # a connection was lost: back off before the next
        self._connecting = asyncio.Lock()  # one connection, however many tasks ask for it

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> db.AsyncConn:
        """The listening connection: the open one, or a new one (retried until it listens)."""
        async with self._connecting:
            return await self._connect()

    async def _connect(self) -> db.AsyncConn:
        while self.conn is None or self.conn.closed:
            if self._wait_first:
                await asyncio.sleep(self._backoff.next())
            self._wait_first = True
            try:
                conn = await db.aconnect(self.url)
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("%s cannot connect (%s); retrying", self.name, first_line(exc))
                continue
            try:
                for channel in self.channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if self._on_connect is not None:
                    await self._on_connect(conn)
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("%s cannot listen (%s); retrying", self.name, first_line(exc))
                await _close(conn)
                continue
            except BaseException:
                await _close(conn)
                raise
            self.conn = conn
            self.connects += 1
            self._wait_first = False
            self._backoff.reset()
        return self.conn

    async def wait(self, seconds: float | None) -> list[Notify]:
        """Wait for the first notification, at most `seconds` (None: no limit).

        Returns it, or [] after that time or a lost connection (the next
        `connect()` or `wait()` makes a new one; `on_connect` re-reads).
        """
        conn = await self.connect()
        try:
            return [n async for n in conn.notifies(timeout=seconds, stop_after=1)]
        except psycopg.Error as exc:
            await self.lost(exc)
            return []

    async def take_waiting(self) -> None:
        """Let the notification reader take what waits on the socket (a cancel of the next
        execution may): it runs on the event loop, so yield to it while bytes wait.

        Costs one poll of the socket when nothing waits (the usual case).
        """
        for _ in range(20):
            conn = self.conn
            if conn is None or conn.closed:
                return
            if not select.select([conn.pgconn.socket], [], [], 0)[0]:
                return
            await asyncio.sleep(0)

    async def notifies(self) -> AsyncIterator[Notify]:
        """Every notification, for ever, reconnecting whenever the connection breaks."""
        while True:
            conn = await self.connect()
            try:
                async for note in conn.notifies():
                    yield note
            except psycopg.Error as exc:
                await self.lost(exc)

    async def lost(self, exc: BaseException | None = None) -> None:
        """The connection is broken (noticed here or by a caller's statement): drop it."""
        if exc is not None:
            log.warning("%s lost its connection (%s); reconnecting", self.name, first_line(exc))
        conn, self.conn = self.conn, None
        if conn is not None:
            await _close(conn)

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        self._wait_first = False
        if conn is not None:
            await _close(conn)


async def _close(conn: db.AsyncConn) -> None:
    try:
        await conn.close()
    except (psycopg.Error, OSError):
        log.debug("closing a broken connection failed", exc_info=True)
