"""The pool's scheduler: fires due schedules, once per pool, inside the worker pool.

Where it runs: a thread of the pool's first worker process (slot 0), started
by that child after the fork. The supervisor itself stays free of database
connections and threads, so every child it forks or re-forks starts from a
clean parent; a dedicated child process would do as well but would change
the pool's process count that operators (and tests) see. If slot 0 dies, the
supervisor restarts it and the scheduler with it; meanwhile other pools (if
any) keep firing, and the downtime rule covers a pool that was alone.

How often: it sleeps until the earliest next slot of any enabled schedule,
at most `SPINE_SCHEDULER_TICK` seconds, and wakes early on a NOTIFY on
`spine_schedules` (a schedule was created, changed or removed). Exactly-once
across pools comes from the database (SKIP LOCKED on the schedule row and a
unique index per slot), not from this loop, so any number of pools may run it.

On start it first stores the datasets' dependency graph (`on_start`,
app.catalog.store_graph), so a release that declares a new dataset or edge
is followed by the pools that run it, not only after `spine db init`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import psycopg

from app import db
from app.config import Settings
from app.engine.backends import make_backend
from app.engine.listen import Listener
from app.engine.models import SCHEDULES_CHANNEL
from app.engine.registry import Registry
from app.engine.retry import Backoff
from app.engine.scheduling import fire_due
from app.errors import first_line
from worker.threads import LoopThread

__all__ = ["Scheduler"]

log = logging.getLogger("spine.scheduler")
MIN_WAIT = 0.02  # seconds
HELD_WAIT = 0.5
"""Most a pool waits for a due schedule another pool holds (it backs off up to this)."""


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        url: str,
        registry: Registry,
        on_start: Callable[[db.AsyncConn], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.url = url
        self.registry = registry
        self._on_start = on_start
        self.backend = make_backend(settings)
        self._thread = LoopThread("scheduler", self.run)
        self._stop = self._thread.stopping

    def start(self) -> None:
        """Run in a daemon thread with an event loop and connections of its own."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)

    async def run(self) -> None:
        backoff = Backoff(0.1, 5.0)
        async with Listener(self.url, (SCHEDULES_CHANNEL,), name="scheduler") as listener:
            while not self._stop.is_set():
                try:
                    await listener.connect()
                    async with await db.aconnect(self.url) as conn:
                        backoff.reset()
                        if self._on_start is not None:
                            await self._on_start(conn)
                            self._on_start = None  # once per start, not per reconnect
                            log.info("dataset graph stored")
                        log.info("scheduler started")
                        await self._loop(listener, conn)
                except psycopg.Error as exc:
                    log.warning("scheduler: %s; reconnecting", first_line(exc))
                    self._stop.wait(backoff.next())
                except Exception:  # a bug must not end this pool's scheduling for good
                    log.exception("scheduler failed; restarting it")
                    self._stop.wait(backoff.next())
        log.info("scheduler stopped")

    async def _loop(self, listener: Listener, conn: db.AsyncConn) -> None:
        tick = self.settings.scheduler_tick
        held = Backoff(MIN_WAIT, max(MIN_WAIT, min(HELD_WAIT, tick)))
        while not self._stop.is_set():
            started = time.monotonic()
            report = await fire_due(conn, self.registry, self.settings, backend=self.backend)
            for execution in report.fired:
                log.info("fired %s (%s)", execution.logical_key, execution.id)
            wait = tick
            if report.next_due is not None:
                until = (report.next_due - report.clock).total_seconds()
                until -= time.monotonic() - started
                if until > 0:
                    held.reset()
                    wait = min(tick, until)
                else:
                    # Still due after our pass: another pool holds it and will fire it.
                    # Back off (MIN_WAIT doubling to HELD_WAIT) rather than re-query 50x/s.
                    wait = held.next()
            # Returns at the first NOTIFY, after `wait` seconds without one, or at once
            # when the listener lost its connection (the next pass re-reads the schedules).
            await listener.wait(wait)
