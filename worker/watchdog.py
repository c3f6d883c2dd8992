"""The timeout watchdog: gives up an attempt still running SPINE_TIMEOUT_GRACE past its deadline.

The runner asks an attempt to stop at its deadline (app.engine.attempts); a
pipeline that ignores the ask may also be blocking the event loop, so the
watchdog is a timer thread. When it fires and `give_up` wrote the timeout
(it returns the end), the stuck pipeline cannot be unwound from another
thread: the process exits with EXIT_ABANDONED and the supervisor starts a
fresh one. If the database refused, it exits all the same: the lease
recovers the execution.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import psycopg

from app.engine.models import End, Execution
from app.errors import first_line

__all__ = ["EXIT_ABANDONED", "Armed", "Watchdog"]

log = logging.getLogger("spine.worker")

EXIT_ABANDONED = 75
"""Exit status of a worker process that gave up a timed-out attempt (it is replaced)."""


class Armed:
    """One attempt's watch; `disarm()` when it ends (harmless when there was none)."""

    def __init__(self, timer: threading.Timer | None) -> None:
        self.timer = timer

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class Watchdog:
    def __init__(
        self,
        grace: float,
        give_up: Callable[[Execution], End | None],
        *,
        exit_process: Callable[[int], object] = os._exit,
    ) -> None:
        self.grace = grace
        self._give_up = give_up
        self._exit = exit_process

    def arm(self, execution: Execution) -> Armed:
        """Watch an attempt that has a timeout (the others are never given up)."""
        if execution.timeout_seconds is None:
            return Armed(None)
        timer = threading.Timer(execution.timeout_seconds + self.grace, self._fire, (execution,))
        timer.name = f"watchdog-{execution.id}"
        timer.daemon = True
        timer.start()
        return Armed(timer)

    def _fire(self, execution: Execution) -> None:
        try:
            end = self._give_up(execution)
            if end is None:
                return  # it ended meanwhile: its own end stands
            log.error("abandoned %s: %s; the worker exits", execution.id, end.error)
        except psycopg.Error as exc:
            log.error("could not record the timeout of %s (%s)", execution.id, first_line(exc))
        logging.shutdown()
        self._exit(EXIT_ABANDONED)
