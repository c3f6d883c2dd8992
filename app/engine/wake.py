"""Waker: the NOTIFY after a submit, sent off the caller's path and shared by overlapping submits.

`executions.insert` alone sends its NOTIFY inside its own statement: one round
trip, the best for submits made one at a time. But a notifying commit holds
PostgreSQL's notify-queue lock across its WAL flush, so many concurrent
notifying submits (the API under load) commit one after another. A process
that submits concurrently inserts without the NOTIFY and hands the lane to
its Waker: one NOTIFY per lane, on a pooled connection of its own, after the
commits it covers. Submits that commit while one is in flight share the next.

A NOTIFY lost (the database went away, the process crashed in between) is
covered by the workers' poll, as with any NOTIFY.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import psycopg
import psycopg_pool

from app.db import AsyncPool
from app.engine.models import EXECUTIONS_CHANNEL
from app.errors import first_line

__all__ = ["Waker"]

log = logging.getLogger(__name__)

_NOTIFY: Final = "SELECT pg_notify(%s, lane) FROM unnest(%s::text[]) AS lane"


class Waker:
    """Coalesces the wake-ups of one process's submits into as few NOTIFYs as keep them all."""

    def __init__(self, pool: AsyncPool, *, timeout: float = 2.0) -> None:
        self._pool = pool
        self._timeout = timeout  # seconds to wait for a pooled connection
        self._due: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def wake(self, lane: str) -> None:
        """Call after the submit's commit: a NOTIFY for `lane` will follow it."""
        self._due.add(lane)
        # done() is already true between the sender's last check of `_due` and its
        # end, so a lane added then starts a new sender instead of being left behind.
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def close(self) -> None:
        """Send what is due (the lifespan's end, before the pool closes)."""
        if self._task is not None:
            await self._task

    async def _send(self) -> None:
        while self._due:
            lanes = sorted(self._due)
            self._due.clear()
            try:
                async with self._pool.connection(timeout=self._timeout) as conn:
                    await conn.execute(_NOTIFY, (EXECUTIONS_CHANNEL, lanes))
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                log.warning(
                    "NOTIFY for %s failed (%s); the workers' poll finds them",
                    lanes,
                    first_line(exc),
                )
