"""The engine side of one Celery worker process: claim by id, run, record.

A Celery task carries only an execution id. `Runner.run(id)` claims that
execution with the pool's own claim statement (`app.engine.batches.record`,
given `only=id` and this backend: pending, due and Celery's -> held `queued` by
this process), runs it through the pool's executor (the same attempt, start
and end records, timeout watchdog and cancel handling) and writes its end
before returning. A redelivered or duplicate task finds the execution held,
running or ended, claims nothing and returns at once: the database, not the
broker, keeps every execution to one run at a time.

Like a pool's worker process, each Celery process has its own event loop (a
thread here, so Celery's own code keeps the main thread), its own connection
pool opened after the fork, a heartbeat thread that also sweeps lost workers'
executions, and a LISTEN connection for cancels. This module imports no
Celery: worker/celery_node.py wires it to Celery.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import psycopg

from app import db
from app.config import Settings
from app.engine import batches, leases, workers
from app.engine.listen import Listener
from app.engine.models import CANCEL_CHANNEL, End, Execution
from app.engine.registry import Registry
from app.errors import first_line
from app.logs import bind_process
from worker.batch_size import BatchSize
from worker.loop import new_worker_id, open_pool
from worker.parts import assemble

__all__ = ["BACKEND", "Outcome", "Runner"]

log = logging.getLogger("spine.celery")

BACKEND = "celery"
"""The `backend` of the executions this runner claims (CeleryBackend.name)."""

Outcome = Literal["ran", "not claimable", "claim unsure"]

T = TypeVar("T")


class Runner:
    """One Celery process's claim-by-id runner; `run` is called from Celery's thread."""

    def __init__(self, settings: Settings, url: str, registry: Registry) -> None:
        self.settings = settings
        self.url = url
        self.id = new_worker_id()
        self.listener = Listener(url, (CANCEL_CHANNEL,), name="cancel-listener")
        parts = assemble(
            self.id,
            settings,
            registry,
            url,
            batch_size=BatchSize(1),
            give_up=self._give_up,
            take_notices=self.listener.take_waiting,
        )
        self.completer = parts.completer
        self.claimer = parts.claimer
        self.executor = parts.executor
        self.liveness = parts.liveness
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._pool: db.AsyncPool | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []

    # ------------------------------------------------------------ lifecycle

    def also_run(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `job` on this runner's loop from the start (the relay); before `start`."""
        self._background.append(job)

    def start(self) -> None:
        """Register, open the pool, start the heartbeat, the listener and the loop's thread."""
        self._thread = threading.Thread(target=self._loop.run_forever, name="spine", daemon=True)
        self._thread.start()
        self._call(self._open()).result()
        self.liveness.start()
        log.info("celery runner %s started", self.id)

    def stop(self) -> None:
        """Stop after the current execution (Celery's warm shutdown waited for it)."""
        if self._thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._close()).result(timeout=10)
        self.liveness.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None
        log.info("celery runner %s stopped after %d execution(s)", self.id, self.processed)

    @property
    def processed(self) -> int:
        return self.completer.processed

    def run(self, execution_id: str) -> Outcome:
        """Claim `execution_id` by id and run it to its recorded end (blocks)."""
        return self._call(self._run_one(execution_id)).result()

    # ------------------------------------------------------------ on the loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _open(self) -> None:
        bind_process(worker_id=self.id)
        async with await db.aconnect(self.url) as conn:
            await workers.heartbeat(conn, self.id, socket.gethostname(), os.getpid())
        self._pool = await open_pool(self.url, self.settings)
        self._listen_task = asyncio.create_task(self._listen())
        self._jobs = [asyncio.create_task(job()) for job in self._background]

    async def _close(self) -> None:
        for task in [*self._jobs, *([self._listen_task] if self._listen_task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.listener.close()
        if self._pool is not None:
            await self.completer.write(self._pool)
            await self._pool.close()
        with contextlib.suppress(psycopg.Error):
            async with await db.aconnect(self.url) as conn:
                await workers.mark_stopped(conn, self.id)

    async def _run_one(self, execution_id: str) -> Outcome:
        pool = self._pool
        assert pool is not None, "start() first"
        if self.claimer.give_back is not None and not await self.claimer.release(
            pool, self.claimer.give_back
        ):
            return "claim unsure"
        try:
            async with pool.connection() as conn:
                _, claimed = await batches.record(
                    conn, self.id, [], claim=1, backend=BACKEND, only=execution_id
                )
        except psycopg.OperationalError as exc:
            # It may have committed unseen: give back whatever this runner holds
            # before its next claim (the pool's rule; a live worker's rows are
            # never recovered by the lease).
            log.warning("claim of %s failed (%s)", execution_id, first_line(exc))
            await self.claimer.release(pool, leases.CLAIM_ANSWER_LOST)
            return "claim unsure"
        if not claimed:
            return "not claimable"
        await self.executor.run(pool, claimed[0])
        await self.completer.write(pool)
        return "ran"

    def _give_up(self, execution: Execution) -> End | None:
        """The watchdog fired: write the abandoned attempt (then the process exits)."""
        return self.executor.give_up(execution, self.url)

    async def _listen(self) -> None:
        async for note in self.listener.notifies():
            if note.channel == CANCEL_CHANNEL:
                self.executor.cancel_seen(note.payload)
