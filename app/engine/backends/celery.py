"""CeleryBackend: executions run on Celery worker nodes over RabbitMQ.

PostgreSQL stays the one truth (app.engine.outbox): a submit commits the row,
records the run id of its task and the publication time, then publishes the
task, which carries only the id. A publish that fails (broker down) is
unrecorded, logged and left to the relay; for a few seconds after one, submits
do not try the broker at all, so an outage costs a submit nothing. Cancel is
the database's, as in the pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions, outbox, workers
from app.engine.backends.celery_app import broker_reachable, make_app, new_task_id, publish
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
        return await self._publish(conn, execution)

    async def retry(self, conn: AsyncConn, execution: Execution) -> None:
        await self._publish(conn, execution)

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

    async def _publish(self, conn: AsyncConn, execution: Execution) -> str | None:
        """Record the publication, then publish; on failure the relay publishes it later.

        The record commits first, as the relay's does: the task's claim skips a
        locked row, so a message delivered while this statement still held the
        row would claim nothing.
        """
        if execution.backend != self.name:  # the pool's (created by a local-backend process)
            return None
        if time.monotonic() < self._quiet_until:
            return None
        sent = outbox.Sent(execution.id, new_task_id(), execution.attempt)
        await outbox.mark_published(conn, [sent])
        prefix = self._settings.celery_queue_prefix
        try:
            await asyncio.to_thread(
                publish, self._app, execution.id, execution.lane, prefix, sent.run_id
            )
        except Exception as exc:  # the broker's errors vary by transport
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
            log.warning("publish of %s failed (%s); the relay will publish it", execution.id, exc)
            await outbox.mark_unpublished(conn, [sent])
            return None
        return sent.run_id
