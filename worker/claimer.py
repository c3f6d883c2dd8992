"""The claimer: takes batches of pending executions and holds them until they run.

A claim is the completer's write with a `claim` size (BatchSize judges it),
so the batch's ends and the next claim commit together. What is held and not
started goes back to the queue (without counting an attempt) when the worker
stops, when one execution of the batch runs long, and before the next claim
when a claim's answer was lost to a broken connection: a live worker's rows
are never recovered by the lease, so until that give-back succeeds this
worker claims nothing more.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol

import psycopg

from app import db
from app.engine import leases
from app.engine.models import Execution
from app.errors import first_line
from worker.batch_size import BatchSize
from worker.completer import Completer

__all__ = ["RECENT_CANCELS", "Claimer"]

log = logging.getLogger("spine.worker")

RECENT_CANCELS = 256
"""Cancel notices remembered: one can arrive between a claim's commit and its row's start."""


class Release(Protocol):
    def __call__(
        self, conn: db.AsyncConn, worker_id: str, *, reason: str, ids: Sequence[str] | None = None
    ) -> Awaitable[list[str]]: ...


class Claimer:
    """What this worker holds unstarted, how much it claims next, and its give-backs."""

    def __init__(
        self,
        worker_id: str,
        completer: Completer,
        size: BatchSize,
        *,
        release: Release = leases.release_held,
    ) -> None:
        self.worker_id = worker_id
        self.completer = completer
        self.size = size
        self.held: collections.deque[Execution] = collections.deque()
        self.give_back: str | None = None
        """Give back everything held before the next claim, for this reason (None: no need)."""
        self.cancels: collections.deque[str] = collections.deque(maxlen=RECENT_CANCELS)
        self._release = release

    def next(self) -> Execution | None:
        return self.held.popleft() if self.held else None

    def held_ids(self) -> list[str]:
        return [e.id for e in list(self.held)]

    def cancel_seen(self, execution_id: str) -> None:
        """A cancel notice: the execution may be held already, or in a claim's answer soon."""
        self.cancels.append(execution_id)

    def cancelled(self, execution: Execution) -> bool:
        """Cancelled before its start: by its row, or by a notice that came since the claim."""
        return execution.cancel_requested or execution.id in self.cancels

    async def claim(self, pool: db.AsyncPool) -> int:
        """Write the batch's ends and claim the next batch; returns how many were claimed."""
        asked = self.size.next()
        if self.give_back is not None and not await self.release(pool, self.give_back):
            asked = 0
        written = await self.completer.write(pool, claim=asked)
        if written.unsure:
            self.give_back = leases.CLAIM_ANSWER_LOST
        if asked:
            self.size.claimed(len(written.claimed), asked)
            self.held.extend(written.claimed)
            if self.cancels:  # a cancel seen before this claim is in its rows
                claimed = {e.id for e in written.claimed}
                kept = [i for i in self.cancels if i not in claimed]
                self.cancels.clear()
                self.cancels.extend(kept)
        return len(written.claimed)

    async def give_back_held(self, pool: db.AsyncPool, reason: str) -> None:
        """Give back what is held unstarted (the rest of a batch behind a slow execution)."""
        if self.held:
            ids = self.held_ids()
            self.held.clear()
            await self.release(pool, reason, ids)

    async def stop(self, pool: db.AsyncPool) -> None:
        """The worker stops: write the ends, give back all it holds unstarted (or unseen)."""
        await self.completer.write(pool)
        reason = leases.GIVEN_BACK_ON_STOP if self.held else self.give_back
        if reason is not None:
            self.held.clear()
            await self.release(pool, reason)

    async def release(
        self, pool: db.AsyncPool, reason: str, ids: Sequence[str] | None = None
    ) -> bool:
        """Give back held executions (all of them, or `ids`); False if the database refused.

        A failure is remembered: everything held is given back before the next claim.
        """
        try:
            async with pool.connection() as conn:
                for execution_id in await self._release(
                    conn, self.worker_id, reason=reason, ids=ids
                ):
                    log.info("gave back %s (%s)", execution_id, reason)
        except psycopg.OperationalError as exc:
            log.warning("could not give back claims (%s); will retry", first_line(exc))
            self.give_back = reason
            return False
        if ids is None:
            self.give_back = None
        return True
