"""The executor: runs one held execution, outside any transaction, and hands on its end.

The claim left the execution `queued`; its start counts the attempt. A quick
execution's start is written with its end, in the batch's statement (see
worker.completer); one that runs past START_RECORD_DELAY, or reports
progress, has its start written while it runs, with the ends before it, and
the rest of its batch is given back rather than left waiting behind it. A
cancel that arrived before the start ends it cancelled without running it.
Rare ends (a retry, a requeue, a lost claim) are written on their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from app import db
from app.config import Settings
from app.engine import leases
from app.engine.abandon import abandon
from app.engine.attempts import abandoned_end, attempt
from app.engine.batches import Record
from app.engine.models import End, Execution
from app.engine.outcomes import Attempted, Requeue
from app.engine.recording import record_end
from app.engine.registry import Registry
from worker import metrics
from worker.claimer import Claimer
from worker.completer import Completer, Ended
from worker.watchdog import Watchdog

__all__ = ["START_RECORD_DELAY", "Executor"]

log = logging.getLogger("spine.worker")

START_RECORD_DELAY = 0.05
"""Seconds an execution runs before its start is written on its own (see app.engine.batches)."""


@dataclass
class _Start:
    """The running execution's start: when, and whether it is on record yet."""

    execution: Execution
    began: float
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Future[None] | None = None
    recorded: bool = False

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


async def _nothing() -> None:
    return None


class Executor:
    """Runs the claimer's executions one at a time; the running one is `current`."""

    def __init__(
        self,
        worker_id: str,
        settings: Settings,
        registry: Registry,
        *,
        claimer: Claimer,
        completer: Completer,
        watchdog: Watchdog,
        take_notices: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self.worker_id = worker_id
        self.settings = settings
        self.registry = registry
        self.claimer = claimer
        self.completer = completer
        self.watchdog = watchdog
        self.current: str | None = None
        self.cancel = asyncio.Event()
        self._start: _Start | None = None
        self._take_notices = take_notices

    def cancel_seen(self, execution_id: str) -> None:
        """A cancel notice (from the listener): stop the running execution, or a held one."""
        self.claimer.cancel_seen(execution_id)
        if execution_id == self.current:
            self.cancel.set()

    async def run(self, pool: db.AsyncPool, execution: Execution) -> None:
        """Run a held execution; its end joins the batch's records (or is written now)."""
        await self._take_notices()  # a cancel of this one may wait on the listener's socket
        if self.claimer.cancelled(execution):
            cancelled = End("cancelled", None, {"reason": "cancelled before it started"})
            attempted = Attempted(cancelled, None, 0.0)
            self.completer.add(Ended(execution, attempted, cancelled, None, time.monotonic()))
            return
        execution = msgspec.structs.replace(
            execution, status="running", attempt=execution.attempt + 1
        )
        self.current = execution.id
        self.cancel = asyncio.Event()
        start = self._start = _Start(execution, time.monotonic())
        start.timer = asyncio.get_running_loop().call_later(
            START_RECORD_DELAY, self._record_start_soon, pool, start
        )
        metrics.execution_started(execution)
        watch = self.watchdog.arm(execution)
        try:
            try:
                attempted = await attempt(
                    pool,
                    execution,
                    self.worker_id,
                    settings=self.settings,
                    registry=self.registry,
                    cancel_event=self.cancel,
                    before_write=lambda: self._ensure_started(pool, start),
                )
            finally:
                start.cancel_timer()
                if start.task is not None:
                    await start.task  # its statement is this worker's to finish
            await self._ended(pool, execution, start, attempted)
        except Exception:
            # Could not even record the outcome: exit, so the lease hands it to another.
            log.exception("worker %s cannot record %s; exiting", self.worker_id, execution.id)
            raise
        finally:
            self.current = None
            self._start = None
            watch.disarm()

    async def _ended(
        self, pool: db.AsyncPool, execution: Execution, start: _Start, attempted: Attempted
    ) -> None:
        end = attempted.end
        if end is None or isinstance(end, Requeue) or end.rare:
            # Rare ends, written on their own: a retry, a deferral or a requeue writes
            # the start first (a lost claim writes nothing).
            if end is not None:
                await self._ensure_started(pool, start, give_back=False)
            ran = await record_end(pool, execution, self.worker_id, attempted)
            self.completer.finished(execution, ran, attempted)
            self.claimer.size.slow()
            return
        if start.recorded:
            self.claimer.size.slow()
        started = None if start.recorded else start.began
        self.completer.add(Ended(execution, attempted, end, started, time.monotonic()))

    def _record_start_soon(self, pool: db.AsyncPool, start: _Start) -> None:
        """The execution runs long: write its start (and the batch's ends) while it runs."""
        if start.task is None and not start.recorded:
            start.task = asyncio.ensure_future(self._write_start(pool, start, give_back=True))

    async def _ensure_started(
        self, pool: db.AsyncPool, start: _Start, *, give_back: bool = True
    ) -> None:
        """Before the pipeline's first write (or a retry's): its start must be on record."""
        if start.recorded:
            return
        if start.task is None:
            start.cancel_timer()
            start.task = asyncio.ensure_future(self._write_start(pool, start, give_back=give_back))
        await asyncio.shield(start.task)

    async def _write_start(self, pool: db.AsyncPool, start: _Start, *, give_back: bool) -> None:
        """Write the start of the running execution with the ends before it; for one that
        runs long, give back the rest of the batch, which would otherwise wait behind it."""
        own = Record(start.execution.id, "running", start.began, time.monotonic())
        await self.completer.write(pool, extra=own)
        start.recorded = True
        if give_back:
            await self.claimer.give_back_held(pool, leases.GIVEN_BACK_BEHIND_SLOW)

    def give_up(self, execution: Execution, url: str) -> End | None:
        """The watchdog's call, on its thread: record the timed-out attempt as abandoned.

        Returns its end when written (the process must exit now), None when the
        attempt ended meanwhile or this worker no longer holds it (its own end
        stands). The loop, stuck in the pipeline, is only read here. A fresh
        event loop and connection of its own: the worker's may be blocked.
        """
        if self.current != execution.id:
            return None
        end = abandoned_end(execution, self.registry, self.settings)
        records = self.completer.pending()
        start = self._start
        if start is not None and start.execution.id == execution.id and not start.recorded:
            records.append(Record(execution.id, "running", start.began, time.monotonic()))
        held = self.claimer.held_ids()

        async def write() -> bool:
            async with await db.aconnect(url) as conn:
                return await abandon(
                    conn, self.worker_id, execution.id, end, records=records, held=held
                )

        return end if asyncio.run(write()) else None
