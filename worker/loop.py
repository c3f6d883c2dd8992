"""One worker process: a claim loop, a listener and a heartbeat.

- Claim: one statement takes a batch of pending executions (1 when the queue
  is shallow, growing to SPINE_CLAIM_BATCH while it is deep and they run
  quickly: worker.batch_size) and holds them `queued`. They run one by one,
  outside any transaction. A quick one's start is written with its end; one
  that runs past START_RECORD_DELAY (or reports progress) has its start
  written while it runs, and the rest of its batch is given back rather than
  left waiting behind it. The batch's ends are written in the statement that
  claims the next batch (app.engine.batches), so a busy worker commits once
  per batch. A claim whose answer was lost to a broken connection is given
  back before the next claim.
- Wake-up: LISTEN on a dedicated connection; a poll every `poll_interval`
  covers a lost notification or a broken listener. Before each start the
  listener takes what waits on its socket, so a cancel of a held execution
  that has not started ends it cancelled instead.
- Liveness: a heartbeat thread with its own connection, so a pipeline that
  hogs the event loop cannot starve it; the same thread sweeps executions held
  by workers whose heartbeat went stale and requeues them, but only once its
  own heartbeats have run without a gap for a lease (an outage is not a death:
  see app.engine.workers).
- Stop: SIGTERM or SIGINT (any number of them) stops claiming; the current
  execution finishes, the batch's ends are written and what it held unstarted
  is given back, then the process exits 0. The supervisor's SIGKILL is the
  immediate stop: what it held goes back through the lease, each counted as an
  attempt (a quick one may have run, its end not yet written).
- Timeouts: the runner asks an attempt to stop at its deadline; a watchdog
  thread gives up one still running SPINE_TIMEOUT_GRACE later (it records the
  timeout and the process exits with EXIT_ABANDONED, to be replaced).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgspec
import psycopg

from app import db
from app.catalog import default_registry
from app.config import Settings
from app.engine import batches, leases, workers
from app.engine.batches import Record
from app.engine.models import CANCEL_CHANNEL, EXECUTIONS_CHANNEL, End, Execution
from app.engine.registry import Registry
from app.engine.retry import Backoff
from app.engine.run import (
    Attempted,
    Ran,
    Requeue,
    abandoned_end,
    attempt,
    log_outcome,
    outcome_of,
    record_batch,
    record_end,
)
from app.errors import first_line
from app.logs import bind_process
from worker import metrics
from worker.batch_size import BatchSize

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


class _Ended(NamedTuple):
    """An ended execution whose record waits for the batch's statement."""

    execution: Execution
    attempted: Attempted
    end: End
    started: float | None
    """When it started, if its start is not on record yet (a monotonic reading)."""
    ended: float

    def record(self) -> Record:
        end = self.end
        return Record(
            self.execution.id, end.status, self.started, self.ended, end.error, end.payload
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
        self._stop_asked = False
        self._wake = asyncio.Event()
        self._current: str | None = None
        self._held: collections.deque[Execution] = collections.deque()  # claimed, not started
        self._ended: list[_Ended] = []
        self._start: _Start | None = None
        self._listener_conn: psycopg.AsyncConnection[object] | None = None
        # Give back everything held before the next claim (a claim whose answer was
        # lost, a give-back that failed): the reason to record, or None.
        self._give_back: str | None = None
        self._size = BatchSize(settings.claim_batch)
        self._cancel = asyncio.Event()
        # Cancel notices seen lately: one can arrive between a claim's commit
        # and the moment its execution becomes `_current`.
        self._recent_cancels: collections.deque[str] = collections.deque(maxlen=256)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop = threading.Event()

    # ------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Graceful stop: finish the current execution, claim nothing more (any thread)."""
        self._stop_asked = True  # seen between two executions of a batch at once
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._wake.set)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: graceful stop (repeats are harmless; the supervisor escalates).

        A plain signal handler rather than the event loop's: a batch of quick
        executions can run without yielding to the loop, and the stop must be
        seen before the next one starts.
        """
        loop = self._loop
        assert loop is not None

        def say(signum: int) -> None:
            log.info("%s: stopping after the current execution", signal.Signals(signum).name)

        def on_signal(signum: int, _frame: object) -> None:
            if not self._stop_asked:
                loop.call_soon_threadsafe(say, signum)
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

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
        while True:
            if self._stop_asked:
                await self._flush(pool)
                reason = leases.GIVEN_BACK_ON_STOP if self._held else self._give_back
                if reason is not None:  # claimed, not started: give them back
                    self._held.clear()
                    await self._release(pool, reason)
                return
            if not self._held:
                self._wake.clear()
                await self._flush(pool, claim=self._size.next())
                if not self._held:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=poll)
                    continue
            await self._run_one(pool, self._held.popleft())

    async def _run_one(self, pool: db.AsyncPool, execution: Execution) -> None:
        """Run the next held execution; its end joins the batch's records (or is written now)."""
        await self._take_notices()
        if execution.cancel_requested or execution.id in self._recent_cancels:
            cancelled = End("cancelled", None, {"reason": "cancelled before it started"})
            ended = _Ended(
                execution, Attempted(cancelled, None, 0.0), cancelled, None, time.monotonic()
            )
            self._ended.append(ended)
            return
        # The attempt it runs as (the claim left it queued; its start counts the attempt).
        execution = msgspec.structs.replace(
            execution, status="running", attempt=execution.attempt + 1
        )
        self._current = execution.id
        self._cancel = asyncio.Event()
        start = self._start = _Start(execution, time.monotonic())
        start.timer = asyncio.get_running_loop().call_later(
            START_RECORD_DELAY, self._record_start_soon, pool, start
        )
        metrics.execution_started(execution)
        watchdog = self._watchdog(execution)
        try:
            try:
                attempted = await attempt(
                    pool,
                    execution,
                    self.id,
                    settings=self.settings,
                    registry=self.registry,
                    cancel_event=self._cancel,
                    before_write=lambda: self._ensure_started(pool, start),
                )
            finally:
                start.cancel_timer()
                if start.task is not None:
                    await start.task  # its statement is this worker's to finish
            end = attempted.end
            if end is None or isinstance(end, Requeue) or end.retry_max_backoff is not None:
                # Rare ends, written on their own: a retry or requeue counts the attempt
                # first (a lost claim writes nothing).
                if end is not None:
                    await self._ensure_started(pool, start, give_back=False)
                ran = await record_end(pool, execution, self.id, attempted)
                self._finished(execution, ran, attempted)
                self._size.slow()
                return
            if start.recorded:
                self._size.slow()
            started = None if start.recorded else start.began
            self._ended.append(_Ended(execution, attempted, end, started, time.monotonic()))
        except Exception:
            # Could not even record the outcome: exit, so the lease hands it to another.
            log.exception("worker %s cannot record %s; exiting", self.id, execution.id)
            raise
        finally:
            self._current = None
            self._start = None
            if watchdog is not None:
                watchdog.cancel()

    async def _take_notices(self) -> None:
        """Let the listener take what waits on its socket: a cancel of the next execution may.

        Costs one poll of the socket when nothing waits (the usual case).
        """
        conn = self._listener_conn
        for _ in range(20):
            if conn is None or conn.closed:
                return
            if not select.select([conn.pgconn.socket], [], [], 0)[0]:
                return
            await asyncio.sleep(0)

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
        await self._flush(pool, extra=own)
        start.recorded = True
        if give_back and self._held:
            ids = [e.id for e in self._held]
            self._held.clear()
            await self._release(pool, leases.GIVEN_BACK_BEHIND_SLOW, ids)

    async def _flush(
        self, pool: db.AsyncPool, *, claim: int = 0, extra: Record | None = None
    ) -> None:
        """Write the batch's ends (plus `extra`) and claim up to `claim` more, in one statement.

        Before a claim, what this worker may hold unseen (a claim whose answer was
        lost, a give-back that failed) is given back; until that succeeds it claims
        nothing more.
        """
        give_back = self._give_back
        if claim and give_back is not None and not await self._release(pool, give_back):
            claim = 0
        ended, self._ended = self._ended, []
        if not ended and extra is None and claim == 0:
            return
        records = [e.record() for e in ended] + ([extra] if extra is not None else [])
        recorded, claimed, unsure = await record_batch(pool, self.id, records, claim=claim)
        if unsure:
            self._give_back = leases.CLAIM_ANSWER_LOST
        for e in ended:
            outcome = outcome_of(e.end) if e.execution.id in recorded else "lost"
            ran = log_outcome(e.execution, self.id, outcome, e.attempted)
            self._finished(e.execution, ran, e.attempted)
        if claim:
            self._size.claimed(len(claimed), claim)
            self._held.extend(claimed)
            if self._recent_cancels:  # a cancel seen before this claim is in its rows
                for execution in claimed:
                    with contextlib.suppress(ValueError):
                        self._recent_cancels.remove(execution.id)

    def _finished(self, execution: Execution, ran: Ran, attempted: Attempted) -> None:
        self.processed += 1
        metrics.execution_finished(
            execution.pipeline, ran.outcome, attempted.seconds, self._rows(execution, ran)
        )

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
        if self._current != execution.id:
            return  # the attempt ended just now: its own end stands
        end = abandoned_end(execution, self.registry, self.settings)
        # In one transaction, kept only if this worker still held the execution:
        # the batch's ends so far, this attempt's start, the rest of the batch
        # given back, then the timeout. The loop's state is only read here; the
        # process exits once it is written.
        records = [e.record() for e in list(self._ended)]
        start = self._start
        if start is not None and start.execution.id == execution.id and not start.recorded:
            records.append(Record(execution.id, "running", start.began, time.monotonic()))
        held = [e.id for e in list(self._held)]

        class _NotHeld(Exception):
            pass

        async def give_up() -> bool:
            async with await db.aconnect(self.url) as conn:
                try:
                    async with conn.transaction():
                        if records:
                            await batches.record(conn, self.id, records)
                        if held:
                            reason = leases.GIVEN_BACK_BEHIND_SLOW
                            await leases.release_held(conn, self.id, reason=reason, ids=held)
                        if not await leases.finish(conn, execution.id, self.id, end):
                            raise _NotHeld
                except _NotHeld:
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

    async def _release(self, pool: db.AsyncPool, reason: str, ids: list[str] | None = None) -> bool:
        """Give back held executions (all of them, or `ids`); False if the database refused.

        A failure is remembered: everything held is given back before the next
        claim (a live worker's rows are never recovered by the lease).
        """
        try:
            async with pool.connection() as conn:
                for execution_id in await leases.release_held(
                    conn, self.id, reason=reason, ids=ids
                ):
                    log.info("gave back %s (%s)", execution_id, reason)
        except psycopg.OperationalError as exc:
            log.warning("could not give back claims (%s); will retry", first_line(exc))
            self._give_back = reason
            return False
        if ids is None:
            self._give_back = None
        return True

    async def _listen(self) -> None:
        """Wake the claim loop on NOTIFY; route cancel notices to the running execution."""
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                async with await db.aconnect(self.url) as conn:
                    await conn.execute(f"LISTEN {EXECUTIONS_CHANNEL}")
                    await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                    self._listener_conn = conn
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
