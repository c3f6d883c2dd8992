"""The relay: publishes what the outbox holds unpublished (app.engine.outbox).

Runs on every Celery node (in its first process, beside the scheduler). Each
pass takes the due, unpublished executions of the Celery backend (SKIP LOCKED:
two relays never take the same one at once) and records their new run ids as
published, in one short transaction; then it publishes them. The record
commits first because a task's claim skips locked rows: a message delivered
while the relay still held the row would claim nothing. What the broker then
refuses is marked unpublished again for the next pass; a relay killed between
its commit and its publish leaves executions that look published, which the
next pass sends once SPINE_CELERY_REPUBLISH_AFTER has passed. This is also how
a retry waits out its backoff: the relay publishes it once `available_at` has
come (no countdown or ETA at the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import psycopg

from app import db
from app.engine import outbox
from app.engine.outbox import Sent
from app.errors import first_line

__all__ = ["PublishMany", "Relay"]

log = logging.getLogger("spine.celery")

PublishMany = Callable[[Sequence[tuple[str, str, str]]], int]
"""publish_many([(execution id, lane, task id)...]): how many the broker took, in order."""


class Relay:
    def __init__(
        self,
        url: str,
        publish_many: PublishMany,
        *,
        backend: str,
        republish_after: float,
        interval: float,
        new_task_id: Callable[[], str],
        batch: int = 500,
    ) -> None:
        self.url = url
        self.publish_many = publish_many
        self.backend = backend
        self.republish_after = republish_after
        self.interval = interval
        self.batch = batch
        self.new_task_id = new_task_id

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
            sent = [Sent(d.id, self.new_task_id(), d.attempt) for d in due]
            await outbox.mark_published(conn, sent)
        if not due:
            return 0
        tasks = [(d.id, d.lane, s.run_id) for d, s in zip(due, sent, strict=True)]
        count = await asyncio.to_thread(self.publish_many, tasks)
        if count < len(sent):
            await outbox.mark_unpublished(conn, sent[count:])
        if count:
            log.info("relay published %d execution(s)", count)
        return count
