"""CeleryBackend: executions run on Celery worker nodes over RabbitMQ.

PostgreSQL stays the one truth (app.engine.outbox): a submit commits the row,
records the run id of its task and the publication time, then publishes the
task, which carries only the id. A batch (a backfill, a scan, a schedule's
fires) is recorded in one statement and published through one producer. A
publish that fails (broker down) is unrecorded, logged and left to the relay;
for a few seconds after one, submits do not try the broker at all, so an
outage costs a submit nothing. Cancel is the database's, as in the pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions, outbox, workers
from app.engine.backends.celery_app import broker_reachable, make_app, new_task_id, publish_many
from app.engine.executions import CancelOutcome
from app.engine.models import Execution

__all__ = ["CeleryBackend"]

log = logging.getLogger("spine.celery")

QUIET_AFTER_FAILURE = 5.0
"""Seconds submits leave the broker alone after a failed publish (the relay publishes)."""


class CeleryBackend:
    name = "celery"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app = make_app(settings)
        self._quiet_until = 0.0

    async def submit(self, conn: AsyncConn, execution: Execution) -> str | None:
        return (await self.submit_many(conn, [execution]))[0]

    async def submit_many(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        return await self._publish(conn, batch)

    async def retry(self, conn: AsyncConn, execution: Execution) -> None:
        await self._publish(conn, [execution])

    async def cancel(
        self, conn: AsyncConn, execution_id: str
    ) -> tuple[Execution | None, CancelOutcome]:
        # A pending one ends cancelled here (its task then claims nothing); a running
        # one's worker hears the NOTIFY, as in the pool.
        return await executions.request_cancel(conn, execution_id)

    async def health(self, conn: AsyncConn) -> dict[str, Any]:
        live = await workers.live_workers(conn, self._settings.lease_timeout)
        problem = await asyncio.to_thread(broker_reachable, self._app)
        return {
            "backend": self.name,
            "broker": "reachable" if problem is None else "unreachable",
            "broker_error": problem,
            "live_workers": len(live),
            "workers": live,
        }

    async def _publish(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        """Record the publications in one statement, then publish them through one producer;
        what the broker refuses is unrecorded and left to the relay.

        The record commits first, as the relay's does: the task's claim skips a
        locked row, so a message delivered while this statement still held the
        row would claim nothing.
        """
        # Not this backend's: the pool's (created by a local-backend process).
        mine = [e for e in batch if e.backend == self.name]
        if not mine or time.monotonic() < self._quiet_until:
            return [None] * len(batch)
        sent = [outbox.Sent(e.id, new_task_id(), e.attempt) for e in mine]
        await outbox.mark_published(conn, sent)
        tasks = [(e.id, e.lane, s.run_id) for e, s in zip(mine, sent, strict=True)]
        prefix = self._settings.celery_queue_prefix
        count = await asyncio.to_thread(publish_many, self._app, tasks, prefix)
        if count < len(sent):
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
            log.warning(
                "%d execution(s) unpublished; the relay will publish them", len(sent) - count
            )
            await outbox.mark_unpublished(conn, sent[count:])
        run_ids = {s.id: s.run_id for s in sent[:count]}
        return [run_ids.get(e.id) for e in batch]
