"""The pool's history keeper: runs the history pass (app.engine.archive.maintain).

Where it runs: a thread of the pool's first worker process (slot 0), beside
the scheduler, with a connection of its own (autocommit: a segment's detach
runs outside a transaction block). Every pool runs one; the pass's advisory
lock lets one pass run at a time across pools and hosts, and a pool that
finds it held skips its turn.

How often: every SPINE_HISTORY_INTERVAL seconds, and again at once while a
pass stops with work left (a full last batch), so a backlog (the executions
stored before the history existed) drains steadily without one long pass.
"""

from __future__ import annotations

import logging

import psycopg

from app import db
from app.config import Settings
from app.engine import archive
from app.engine.retry import Backoff
from app.errors import first_line
from worker.threads import LoopThread

__all__ = ["HistoryKeeper"]

log = logging.getLogger("spine.history")


class HistoryKeeper:
    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self._thread = LoopThread("history", self.run)
        self._stop = self._thread.stopping

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)

    async def run(self) -> None:
        backoff = Backoff(1.0, 60.0)
        while not self._stop.is_set():
            try:
                async with await db.aconnect(self.url) as conn:
                    backoff.reset()
                    while not self._stop.is_set():
                        done = await archive.maintain(
                            conn,
                            retention_days=self.settings.history_retention_days,
                            move_after=self.settings.history_move_after,
                        )
                        if done.created or done.dropped or done.moved or done.discarded:
                            log.info(
                                "history: %d moved, %d past retention deleted, "
                                "segments created %s, dropped %s",
                                done.moved,
                                done.discarded,
                                done.created,
                                done.dropped,
                            )
                        more = done.ran and done.stopped is None and done.moved >= archive.BATCH
                        self._stop.wait(0 if more else self.settings.history_interval)
            except psycopg.Error as exc:
                log.warning("history keeper: %s; reconnecting", first_line(exc))
                self._stop.wait(backoff.next())
            except Exception:  # a bug must not end this pool's history upkeep for good
                log.exception("history keeper failed; restarting it")
                self._stop.wait(backoff.next())
