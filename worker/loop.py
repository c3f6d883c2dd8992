"""One worker process: a claim loop, a listener and a heartbeat.

- Claim: one short statement that takes the next pending execution and
  starts it (see app.engine.leases.claim); the pipeline then runs
  outside any transaction. While there is work, the statement that records
  an execution's end also claims the next, so a busy worker commits once per
  execution. A claim whose answer was lost to a broken connection is given
  back before the next claim.
- Wake-up: LISTEN on a dedicated connection; a poll every `poll_interval`
  covers a lost notification or a broken listener.
- Liveness: a heartbeat thread with its own connection, so a pipeline that
  hogs the event loop cannot starve it; the same thread sweeps executions held
  by workers whose heartbeat went stale and requeues them, but only once its
  own heartbeats have run without a gap for a lease (an outage is not a death:
  see app.engine.workers).
- Stop: SIGTERM or SIGINT (any number of them) stops claiming; the current
  execution finishes (one its end claimed is given back), then the process
  exits 0. The supervisor's SIGKILL is the immediate stop.
- Timeouts: run_pipeline asks an attempt to stop at its deadline; a watchdog
  thread gives up one still running SPINE_TIMEOUT_GRACE later (it records the
  timeout and the process exits with EXIT_ABANDONED, to be replaced).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Mapping

import psycopg

from app import db
from app.catalog import default_registry
from app.config import Settings
from app.engine import leases, workers
from app.engine.models import CANCEL_CHANNEL, EXECUTIONS_CHANNEL, Execution
from app.engine.registry import Registry
from app.engine.retry import Backoff
from app.engine.run import Ran, abandoned_end, run_pipeline
from app.errors import first_line
from app.logs import bind_process
from worker import metrics

__all__ = ["CLIENT_CHECK_SECONDS", "EXIT_ABANDONED", "Worker", "new_worker_id", "open_pool"]

log = logging.getLogger("spine.worker")

EXIT_ABANDONED = 75
"""Exit status of a worker process that gave up a timed-out attempt (it is replaced)."""

# How often the server checks, while a worker's statement runs, that the worker
# still exists. Without it a worker killed mid-statement (kill -9, OOM) leaves
# its backend running to the statement's end, holding locks that the execution's
# next attempt then waits for (9 s measured for an ingest; 60 s for a long one).
CLIENT_CHECK_SECONDS = 1.0


async def open_pool(url: str, settings: Settings) -> db.AsyncPool:
    """The pool a worker process runs its pipelines on."""
    return await db.open_async_pool(
        url, settings, name=f"worker-{os.getpid()}", client_check_interval=CLIENT_CHECK_SECONDS
    )


def new_worker_id() -> str:
    """Unique per process start: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self, settings: Settings, url: str | None = None, registry: Registry | None = None
    ) -> None:
        self.settings = settings
        self.url = url or db.database_url(settings)
        self.registry = registry or default_registry()
        self.id = new_worker_id()
        self.processed = 0
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._current: str | None = None
        self._cancel = asyncio.Event()
        # Cancel notices seen lately: one can arrive between a claim's commit
        # and the moment its execution becomes `_current`.
        self._recent_cancels: collections.deque[str] = collections.deque(maxlen=256)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop = threading.Event()

    # ------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Graceful stop: finish the current execution, claim nothing more."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._loop.call_soon_threadsafe(self._wake.set)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: graceful stop (repeats are harmless; the supervisor escalates)."""
        assert self._loop is not None

        def on_signal(signum: int) -> None:
            if not self._stopping.is_set():
                log.info("%s: stopping after the current execution", signal.Signals(signum).name)
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, on_signal, sig)

    # ------------------------------------------------------------ main

    async def run(self, *, handle_signals: bool = True) -> int:
        self._loop = asyncio.get_running_loop()
        bind_process(worker_id=self.id)
        if handle_signals:
            self.install_signal_handlers()
        async with await db.aconnect(self.url) as conn:
            await workers.heartbeat(conn, self.id, socket.gethostname(), os.getpid())
        heartbeat = threading.Thread(target=self._heartbeat_thread, name="heartbeat", daemon=True)
        heartbeat.start()
        pool = await open_pool(self.url, self.settings)
        listener = asyncio.create_task(self._listen())
        log.info("worker %s started", self.id)
        try:
            await self._claim_loop(pool)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            self._thread_stop.set()
            heartbeat.join(timeout=5)
            await pool.close()
            with contextlib.suppress(psycopg.Error):
                async with await db.aconnect(self.url) as conn:
                    await workers.mark_stopped(conn, self.id)
            log.info("worker %s stopped after %d execution(s)", self.id, self.processed)
        return 0

    async def _claim_loop(self, pool: db.AsyncPool) -> None:
        poll = self.settings.poll_interval
        execution: Execution | None = None
        unsure = False  # a claim may have committed without us seeing its answer
        while True:
            if self._stopping.is_set():
                if execution is not None:  # claimed by the last finish: give it back
                    await self._release(pool, leases.GIVEN_BACK_ON_STOP)
                elif unsure:
                    await self._release(pool, leases.CLAIM_ANSWER_LOST)
                return
            if execution is None:
                self._wake.clear()
                try:
                    async with pool.connection() as conn:
                        if unsure:
                            await self._release_on(conn, leases.CLAIM_ANSWER_LOST)
                            unsure = False
                        execution = await leases.claim(conn, self.id)
                except psycopg.OperationalError as exc:
                    log.warning("claim failed (%s); retrying after %.1fs", first_line(exc), poll)
                    unsure = True
                if execution is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=poll)
                    continue
            self._current = execution.id
            self._cancel = asyncio.Event()
            if execution.id in self._recent_cancels:
                self._cancel.set()
            metrics.execution_started(execution)
            began = time.perf_counter()
            watchdog = self._watchdog(execution)
            try:
                ran = await run_pipeline(
                    pool,
                    execution,
                    self.id,
                    settings=self.settings,
                    registry=self.registry,
                    cancel_event=self._cancel,
                    claim_next=lambda: not self._stopping.is_set(),
                )
            except Exception:
                # Could not even record the outcome: exit, so the lease hands it to another.
                log.exception("worker %s cannot record %s; exiting", self.id, execution.id)
                raise
            finally:
                self._current = None
                if watchdog is not None:
                    watchdog.cancel()
            self.processed += 1
            metrics.execution_finished(
                execution.pipeline,
                ran.outcome,
                time.perf_counter() - began,
                self._rows(execution, ran),
            )
            execution, unsure = ran.next, ran.claim_unsure

    def _rows(self, execution: Execution, ran: Ran) -> Mapping[str, int] | None:
        """A completed run's rows by outcome, when its pipeline counts them."""
        if ran.outcome != "completed" or execution.pipeline not in self.registry:
            return None
        count = self.registry.get(execution.pipeline).rows
        return count(ran.result) if count is not None and ran.result is not None else None

    def _watchdog(self, execution: Execution) -> threading.Timer | None:
        """For an attempt with a timeout: give it up SPINE_TIMEOUT_GRACE after the deadline.

        A thread, because a pipeline that ignores its cancel may also be
        blocking the event loop. run_pipeline asks it to stop at the deadline.
        """
        if execution.timeout_seconds is None:
            return None
        delay = execution.timeout_seconds + self.settings.timeout_grace
        timer = threading.Timer(delay, self._abandon, (execution,))
        timer.daemon = True
        timer.start()
        return timer

    def _abandon(self, execution: Execution) -> None:
        """Record the timed-out attempt (a retry while attempts are left), then exit.

        Only while this worker still holds it: an attempt that ended meanwhile
        is left alone. The stuck pipeline cannot be unwound from another
        thread, so the process ends and the supervisor starts a fresh one.
        """
        end = abandoned_end(execution, self.registry, self.settings)

        async def give_up() -> bool:
            async with await db.aconnect(self.url) as conn:
                if not await leases.finish(conn, execution.id, self.id, end):
                    return False
                await workers.mark_stopped(conn, self.id)
                return True

        try:
            gave_up = asyncio.run(give_up())
        except psycopg.Error as exc:
            # Exit all the same: the lease recovers the execution.
            log.error("could not record the timeout of %s (%s)", execution.id, first_line(exc))
            gave_up = True
        if gave_up:
            log.error("abandoned %s: %s; worker %s exits", execution.id, end.error, self.id)
            logging.shutdown()
            os._exit(EXIT_ABANDONED)

    async def _release(self, pool: db.AsyncPool, reason: str) -> None:
        try:
            async with pool.connection() as conn:
                await self._release_on(conn, reason)
        except psycopg.OperationalError as exc:
            log.warning("could not give back claims (%s); the lease will", first_line(exc))

    async def _release_on(self, conn: db.AsyncConn, reason: str) -> None:
        for execution_id in await leases.release_held(conn, self.id, reason=reason):
            log.info("gave back %s (%s)", execution_id, reason)

    async def _listen(self) -> None:
        """Wake the claim loop on NOTIFY; route cancel notices to the running execution."""
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                async with await db.aconnect(self.url) as conn:
                    await conn.execute(f"LISTEN {EXECUTIONS_CHANNEL}")
                    await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                    backoff.reset()
                    self._wake.set()  # anything enqueued while we were not listening
                    async for note in conn.notifies():
                        if note.channel == CANCEL_CHANNEL:
                            self._recent_cancels.append(note.payload)
                            if note.payload == self._current:
                                self._cancel.set()
                        else:
                            self._wake.set()
            except psycopg.OperationalError as exc:
                log.warning("listener lost its connection (%s); reconnecting", first_line(exc))
                await asyncio.sleep(backoff.next())

    def _heartbeat_thread(self) -> None:
        """Heartbeat and recovery sweep, every lease_timeout/3, on a thread of its own."""
        asyncio.run(self._heartbeat())

    async def _heartbeat(self) -> None:
        interval = self.settings.lease_timeout / 3
        gate = workers.SweepGate(self.settings.lease_timeout)
        conn: db.AsyncConn | None = None
        while not self._thread_stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await db.aconnect(self.url)
                await workers.heartbeat(conn, self.id, socket.gethostname(), os.getpid())
                if gate.beat():
                    await self._sweep(conn)
            except Exception as exc:  # the heartbeat must outlive any single failure
                log.warning("heartbeat failed (%s); will retry", first_line(exc))
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                conn = None
            self._thread_stop.wait(interval)  # this loop serves the heartbeat alone
        if conn is not None:
            await conn.close()

    async def _sweep(self, conn: db.AsyncConn) -> None:
        recovered = await workers.recover_stale(conn, lease_timeout=self.settings.lease_timeout)
        for row in recovered:
            metrics.lease_recovered(str(row["status"]))
            log.warning(
                "recovered execution %s from lost worker %s: now %s",
                row["id"],
                row["lost_worker"],
                row["status"],
            )


def main(settings: Settings, url: str | None = None) -> int:
    """Entry point of one worker process."""
    return asyncio.run(Worker(settings, url).run())
