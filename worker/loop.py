"""One worker process: a claim loop, a listener and a heartbeat, composed of parts.

The parts, each in its own module: worker.claimer (claims, batch size,
give-backs), worker.executor (runs one execution), worker.completer (the
batched ends), worker.liveness (heartbeat and sweep) and worker.watchdog
(timeouts), wired together by worker.parts. This module runs the claim loop.

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
- Wake-up: LISTEN on a dedicated connection (app.engine.listen, which
  reconnects with backoff; each reconnect looks at the queue); a poll every
  `poll_interval` covers a lost notification or a broken listener. Before each start the
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
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable

import psycopg

from app import db
from app.config import Settings
from app.engine import workers
from app.engine.listen import Listener
from app.engine.models import CANCEL_CHANNEL, EXECUTIONS_CHANNEL, End, Execution
from app.engine.registry import Registry
from app.logs import bind_process
from worker.batch_size import BatchSize
from worker.executor import START_RECORD_DELAY
from worker.parts import assemble
from worker.watchdog import EXIT_ABANDONED

__all__ = [
    "CLIENT_CHECK_SECONDS",
    "EXIT_ABANDONED",
    "START_RECORD_DELAY",
    "Worker",
    "new_worker_id",
    "open_pool",
]

log = logging.getLogger("spine.worker")

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
    def __init__(self, settings: Settings, url: str, registry: Registry) -> None:
        self.settings = settings
        self.url = url
        self.registry = registry
        self.id = new_worker_id()
        self._stop_asked = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listener = Listener(
            url,
            (EXECUTIONS_CHANNEL, CANCEL_CHANNEL),
            name="listener",
            on_connect=self._listening,
        )
        parts = assemble(
            self.id,
            settings,
            registry,
            url,
            batch_size=BatchSize(settings.claim_batch),
            give_up=self._give_up,
            take_notices=self.listener.take_waiting,
        )
        self.completer = parts.completer
        self.claimer = parts.claimer
        self.executor = parts.executor
        self.liveness = parts.liveness

    @property
    def processed(self) -> int:
        """Executions ended (recorded or lost) since the start."""
        return self.completer.processed

    # ------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Graceful stop: finish the current execution, claim nothing more (any thread)."""
        self._stop_asked = True  # seen between two executions of a batch at once
        self._call_soon(self._wake.set)

    def _call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run `callback` on the worker's loop, from any thread or a signal handler; nothing
        once the loop is closed. A stop signal can come after the claim loop ended (the
        supervisor's broadcast of a SIGTERM the process already had): raising then, in
        whatever the process was doing, made it exit with a traceback and skip its
        scheduler's and history keeper's stop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(callback, *args)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: graceful stop (repeats are harmless; the supervisor escalates).

        A plain signal handler rather than the event loop's: a batch of quick
        executions can run without yielding to the loop, and the stop must be
        seen before the next one starts.
        """
        assert self._loop is not None

        def say(signum: int) -> None:
            log.info("%s: stopping after the current execution", signal.Signals(signum).name)

        def on_signal(signum: int, _frame: object) -> None:
            if not self._stop_asked:
                self._call_soon(say, signum)
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
        self.liveness.start()
        pool = await open_pool(self.url, self.settings)
        listener = asyncio.create_task(self._listen())
        log.info("worker %s started", self.id)
        try:
            await self._claim_loop(pool)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.listener.close()
            self.liveness.stop()
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
                await self.claimer.stop(pool)
                return
            execution = self.claimer.next()
            if execution is None:
                self._wake.clear()
                if not await self.claimer.claim(pool):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=poll)
                continue
            await self.executor.run(pool, execution)

    def _give_up(self, execution: Execution) -> End | None:
        """The watchdog fired: write the abandoned attempt (then the watchdog exits)."""
        return self.executor.give_up(execution, self.url)

    async def _listen(self) -> None:
        """Wake the claim loop on NOTIFY; route cancel notices to the running execution."""
        async for note in self.listener.notifies():
            if note.channel == CANCEL_CHANNEL:
                self.executor.cancel_seen(note.payload)
            else:
                self._wake.set()

    async def _listening(self, _conn: db.AsyncConn) -> None:
        """(Re)connected: look at the queue, for what was enqueued while no one listened."""
        self._wake.set()


def main(settings: Settings, url: str, registry: Registry) -> int:
    """Entry point of one worker process."""
    return asyncio.run(Worker(settings, url, registry).run())
