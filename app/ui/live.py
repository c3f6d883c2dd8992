"""The live feed: one database reader per API process, fanned out to every open browser tab.

One task per process holds one connection that LISTENs on the engine's
channels (a submit or a cancel wakes it at once) and otherwise reads the
events table once a second: the engine NOTIFYs only on insert and requeue,
and a NOTIFY on every status change would add work to the claim and finish,
the queue's hot path. The read is by primary key (`activity.changes_since`),
so its cost does not grow with the table, and it runs once per process
however many tabs are open; while none is, the task sleeps.

Event ids are assigned before commit, so a transaction can commit an id
below one already read: each read looks `LOOKBACK` ids back and skips what
it has sent. Every message carries its event id, so a browser's EventSource
reconnects with `Last-Event-ID` and gets what it missed from `recent`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import msgspec
import psycopg
from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.engine import activity
from app.engine.activity import Change
from app.engine.listen import Listener
from app.engine.models import CANCEL_CHANNEL, EXECUTIONS_CHANNEL
from app.engine.retry import Backoff
from app.ui.streams import StreamSlots

__all__ = ["LiveFeed", "events"]

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0
LOOKBACK: Final = 200
"""Ids looked back on each read: ample for transactions in flight a second apart."""
RECENT: Final = 2000
"""Changes kept for reconnecting browsers."""
QUEUE_SIZE: Final = 2000
"""A subscriber further behind than this is dropped; its browser reconnects."""
RECONNECT_SECONDS: Final = 2.0
STREAM_SECONDS: Final = 20.0
PING_SECONDS: Final = 15.0
RETRY_MS: Final = 500


class LiveFeed:
    """The process's one reader of changes; `subscribe()` gives a tab its own queue."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._recent: deque[Change] = deque(maxlen=RECENT)
        self._sent: set[int] = set()
        self._last = -1  # highest event id read; -1: not started
        self._start_hint: int | None = None  # the lowest `after` asked for before the start
        self._floor = 0  # never read at or below this id: where the feed last started
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ui-live-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for queue in self._subscribers:
            queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def subscribe(self, after: int) -> AsyncIterator[asyncio.Queue[Change | None]]:
        """A queue of changes after event `after`; None in it means "reconnect"."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE + 1)
        for change in self._recent:
            if change.event_id > after:
                queue.put_nowait(change)
        if not self._subscribers:  # the feed (re)starts: this tab says from where (see _run)
            self._start_hint = after if self._start_hint is None else min(self._start_hint, after)
        self._subscribers.add(queue)
        self._wanted.set()
        self.start()
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers:
                self._wanted.clear()

    async def _run(self) -> None:
        listener = Listener(
            self._url,
            (EXECUTIONS_CHANNEL, CANCEL_CHANNEL),
            name="live feed",
            on_connect=self._resume,
            backoff=Backoff(RECONNECT_SECONDS, RECONNECT_SECONDS),
        )
        try:
            while True:
                await self._wanted.wait()
                try:
                    while self._wanted.is_set():
                        conn = await listener.connect()
                        while await self._read(conn) >= QUEUE_SIZE:
                            pass  # a burst: read on until caught up
                        await listener.wait(POLL_SECONDS)
                    await listener.close()  # no tab is open: hold no connection
                except (psycopg.Error, OSError) as exc:
                    await listener.lost(exc)
                except Exception:  # a bug must not end live updates for good: log, go on
                    log.exception("live feed: unexpected error; retrying")
                    await listener.close()
                    await asyncio.sleep(RECONNECT_SECONDS)
        finally:
            await listener.close()

    async def _resume(self, conn: psycopg.AsyncConnection[dict[str, object]]) -> None:
        """Listening (again): where reading starts.

        From the first tab's position (or where the feed stopped), but never
        further back than LOOKBACK, nor ahead of the table: an idle hour is not
        replayed, and no `after` a client sends is trusted.
        """
        latest = await activity.latest_event_id(conn)
        hint = self._start_hint if self._start_hint is not None else self._last
        self._start_hint = None
        self._last = max(min(hint if hint >= 0 else latest, latest), latest - LOOKBACK)
        self._floor = self._last

    async def _read(self, conn: psycopg.AsyncConnection[dict[str, object]]) -> int:
        """Publish what is new; returns how many rows the read returned."""
        floor = max(self._last - LOOKBACK, self._floor)
        changes = await activity.changes_since(conn, floor, limit=QUEUE_SIZE)
        fresh = [c for c in changes if c.event_id not in self._sent]
        self._sent.update(c.event_id for c in fresh)
        if changes:
            self._last = max(self._last, changes[-1].event_id)
        self._sent = {i for i in self._sent if i > self._last - LOOKBACK}
        self._recent.extend(fresh)
        for queue in list(self._subscribers):
            for change in fresh:
                if queue.qsize() >= QUEUE_SIZE:
                    self._subscribers.discard(queue)
                    queue.put_nowait(None)
                    break
                queue.put_nowait(change)
        return len(changes)


def _message(change: Change) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=_encode(change).decode(), id=change.event_id, event="change")


_encode = msgspec.json.Encoder().encode


@get("/events", name="ui_events")
async def events(
    request: Request[Any, Any, Any],
    state: State,
    after: Annotated[int, QueryParameter(ge=0, le=2**63 - 1)] = 0,
) -> ServerSentEvent | Response[str]:
    """Server-Sent Events: every change after event `after` (or the browser's Last-Event-ID).

    A stream ends after `STREAM_SECONDS` and the browser reconnects where it
    left off: uvicorn's graceful shutdown waits for open responses, so an open
    tab delays a stop by at most that long. Past the process's cap on streams
    (`app.ui.streams`) the answer is 503 with Retry-After, and the page polls.
    """
    slots: StreamSlots = state.ui_stream_slots
    release = slots.take()
    if release is None:
        return Response(
            f"{slots.cap} live streams are open, the most this process serves; "
            "poll the page instead, or try again later",
            status_code=503,
            media_type=MediaType.TEXT,
            headers={"Retry-After": str(int(STREAM_SECONDS)), "Cache-Control": "no-store"},
        )
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() and len(last) < 19 else after
    feed: LiveFeed = state.ui_feed

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        deadline = time.monotonic() + STREAM_SECONDS
        try:
            async with feed.subscribe(start) as queue:
                yield ServerSentEventMessage(data=None, comment="connected", retry=RETRY_MS)
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        change = await asyncio.wait_for(
                            queue.get(), timeout=min(left, PING_SECONDS)
                        )
                    except TimeoutError:
                        yield ServerSentEventMessage(data=None, comment="ping")
                        continue
                    if change is None:
                        return
                    yield _message(change)
        finally:
            release()

    messages = stream()
    weakref.finalize(messages, release)  # a stream never started frees its slot too
    return ServerSentEvent(messages, headers={"Cache-Control": "no-store"})
