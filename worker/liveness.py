"""Liveness: the worker's heartbeat, and the sweep that recovers what lost workers held.

A thread with its own event loop and connection, so a pipeline that hogs the
worker's event loop cannot starve the heartbeat. Every lease/3 it heartbeats;
once its own heartbeats have run without a gap for a lease (an outage is not
a death: see app.engine.workers.SweepGate), it also requeues the executions
of workers whose heartbeat went stale. No single failure ends the thread: it
reconnects at its next beat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg

from app import db
from app.engine import workers
from app.errors import first_line
from worker import metrics
from worker.threads import LoopThread

__all__ = ["Liveness"]

log = logging.getLogger("spine.worker")


async def _heartbeat(conn: db.AsyncConn, worker_id: str) -> None:
    await workers.heartbeat(conn, worker_id, socket.gethostname(), os.getpid())


async def _recover(conn: db.AsyncConn, lease_timeout: float) -> Sequence[dict[str, Any]]:
    return await workers.recover_stale(conn, lease_timeout=lease_timeout)


class Liveness:
    def __init__(
        self,
        worker_id: str,
        lease_timeout: float,
        connect: Callable[[], Awaitable[db.AsyncConn]],
        *,
        heartbeat: Callable[[db.AsyncConn, str], Awaitable[None]] = _heartbeat,
        recover: Callable[[db.AsyncConn, float], Awaitable[Sequence[dict[str, Any]]]] = _recover,
    ) -> None:
        self.worker_id = worker_id
        self.lease_timeout = lease_timeout
        self._connect = connect
        self._heartbeat = heartbeat
        self._recover = recover
        self._thread = LoopThread("heartbeat", self.run)
        self._stop = self._thread.stopping

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)

    async def run(self) -> None:
        """Heartbeat and sweep every lease/3 until stopped."""
        interval = self.lease_timeout / 3
        gate = workers.SweepGate(self.lease_timeout)
        conn: db.AsyncConn | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await self._connect()
                await self._heartbeat(conn, self.worker_id)
                if gate.beat():
                    await self._sweep(conn)
            except Exception as exc:  # the heartbeat must outlive any single failure
                log.warning("heartbeat failed (%s); will retry", first_line(exc))
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                conn = None
            self._stop.wait(interval)  # this thread's loop serves the heartbeat alone
        if conn is not None:
            await conn.close()

    async def _sweep(self, conn: db.AsyncConn) -> None:
        for row in await self._recover(conn, self.lease_timeout):
            metrics.lease_recovered(str(row["status"]))
            log.warning(
                "recovered execution %s from lost worker %s: now %s",
                row["id"],
                row["lost_worker"],
                row["status"],
            )
