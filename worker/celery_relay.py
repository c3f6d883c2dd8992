"""The relay: publishes what the outbox holds unpublished (app.engine.outbox).

Runs on every Celery node (in its first process, beside the scheduler). Each
pass locks the due, unpublished executions of the Celery backend (SKIP LOCKED:
two relays never publish the same one at once), publishes a task for each and
records the run ids, in one transaction. A broker outage ends the pass: what
was sent is recorded, the rest stays unpublished for the next pass. A crash
after a publish and before the commit sends a duplicate later, which claims
nothing. This is how a retry waits out its backoff: the relay publishes it
once `available_at` has come (no countdown or ETA at the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import psycopg

from app import db
from app.engine import outbox
from app.engine.outbox import Due, Sent
from app.errors import first_line

__all__ = ["Publish", "Relay"]

log = logging.getLogger("spine.celery")

Publish = Callable[[str, str], str]
"""publish(execution id, lane) -> task id; raises when the broker refuses."""


def _publish_all(publish: Publish, due: Sequence[Due]) -> tuple[list[Sent], Exception | None]:
    """Publish in order until the broker fails; returns what was sent and the failure."""
    sent: list[Sent] = []
    for d in due:
        try:
            sent.append(Sent(d.id, publish(d.id, d.lane), d.attempt))
        except Exception as exc:  # the transport's errors vary
            return sent, exc
    return sent, None


class Relay:
    def __init__(
        self,
        url: str,
        publish: Publish,
        *,
        backend: str,
        republish_after: float,
        interval: float,
        batch: int = 500,
    ) -> None:
        self.url = url
        self.publish = publish
        self.backend = backend
        self.republish_after = republish_after
        self.interval = interval
        self.batch = batch
        self.published = 0

    async def run(self) -> None:
        """Pass after pass until cancelled; a full batch is followed at once by the next."""
        conn: db.AsyncConn | None = None
        while True:
            sent = 0
            try:
                if conn is None or conn.closed:
                    conn = await db.aconnect(self.url)
                sent = await self.pass_once(conn)
            except psycopg.Error as exc:
                log.warning("relay pass failed (%s); will retry", first_line(exc))
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                conn = None
            if sent < self.batch:
                await asyncio.sleep(self.interval)

    async def pass_once(self, conn: db.AsyncConn) -> int:
        """One pass; returns how many tasks were published."""
        async with conn.transaction():
            due = await outbox.unpublished(
                conn, self.backend, republish_after=self.republish_after, limit=self.batch
            )
            if not due:
                return 0
            sent, failure = await asyncio.to_thread(_publish_all, self.publish, due)
            await outbox.mark_published(conn, sent)
        self.published += len(sent)
        if failure is not None:
            log.warning(
                "relay: broker refused after %d of %d publish(es) (%s); will retry",
                len(sent),
                len(due),
                first_line(failure),
            )
        elif sent:
            log.info("relay published %d execution(s)", len(sent))
        return len(sent)
