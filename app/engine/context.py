"""What a running pipeline gets: its execution id, the database, a logger, progress.

Of the settings it gets only what pipelines read (`PipelineSettings`), never
the whole `Settings`: the API token and the database URL stay out of reach.

`progress()` is also the pipeline's cancellation point: it raises
`CancelRequested` once an operator asked to cancel, `TimedOut` once the
attempt ran past its timeout, and `ClaimLost` if this worker no longer holds
the execution (it was recovered elsewhere). `attempt` is the execution's own
count (1 for the first), so it is the same whichever worker runs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db import AsyncConn
from app.engine import leases
from app.engine.models import ClaimState
from app.errors import CancelRequested, ClaimLost, TimedOut, first_line

__all__ = ["PipelineContext", "PipelineSettings"]

PROGRESS_INTERVAL = 1.0  # seconds: at most about one progress event a second


class PipelineSettings(msgspec.Struct, frozen=True):
    """The settings a pipeline may read: where its input files live, the market's calendar."""

    data_dir: Path
    """SPINE_DATA_DIR: input files must live in it."""
    market_tz: str
    """SPINE_MARKET_TZ: the time zone whose calendar date is a trade's trade date."""

    @classmethod
    def of(cls, settings: Settings) -> PipelineSettings:
        return cls(data_dir=settings.data_dir, market_tz=settings.market_tz)


@dataclass
class PipelineContext:
    execution_id: str
    worker_id: str
    pool: AsyncConnectionPool[AsyncConn]
    settings: PipelineSettings
    log: logging.LoggerAdapter[logging.Logger]
    # Set by the worker's listener when a cancel NOTIFY for this execution arrives.
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    attempt: int = 1
    timed_out: str | None = None
    """Set (with cancel_event) when the attempt's timeout passes: the error to report."""
    before_write: Callable[[], Awaitable[None]] | None = None
    """Awaited before each progress event: a batching worker records the start there first,
    so the execution's events stay in order."""
    _last_progress: float = field(default=float("-inf"), repr=False)
    _last_phase: str | None = field(default=None, repr=False)

    async def progress(
        self, done: int, total: int | None = None, message: str = "", *, phase: str | None = None
    ) -> None:
        """Record progress (throttled) and stop here if cancellation was requested.

        `phase` names a step of the work (e.g. copy, normalize, metrics); the
        first report of a new phase is never throttled, so each phase shows.
        """
        self._raise_if_cancel_signalled()
        now = time.monotonic()
        same_phase = phase == self._last_phase
        if (
            same_phase
            and now - self._last_progress < PROGRESS_INTERVAL
            and (total is None or done < total)
        ):
            return
        self._last_progress, self._last_phase = now, phase
        try:
            if self.before_write is not None:
                await self.before_write()
            async with self.pool.connection() as conn:
                state = await leases.record_progress(
                    conn,
                    self.execution_id,
                    self.worker_id,
                    done=done,
                    total=total,
                    message=message,
                    phase=phase,
                )
        except psycopg.OperationalError as exc:
            # Progress is best effort: a database blip must not fail the work itself.
            self.log.warning("progress not recorded (%s)", first_line(exc))
            return
        self._raise_for(state)

    async def check_cancelled(self) -> None:
        """A cancellation point without a progress event (asks the database)."""
        self._raise_if_cancel_signalled()
        async with self.pool.connection() as conn:
            state = await leases.claim_state(conn, self.execution_id, self.worker_id)
        self._raise_for(state)

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) when a cancel request arrives."""
        try:
            await asyncio.wait_for(self.cancel_event.wait(), timeout=seconds)
        except TimeoutError:
            return
        self._raise_if_cancel_signalled()

    def time_out(self, message: str) -> None:
        """The attempt's deadline passed: stop at the next cancellation point."""
        self.timed_out = message
        self.cancel_event.set()

    def _raise_if_cancel_signalled(self) -> None:
        if self.timed_out is not None:
            raise TimedOut(self.timed_out)
        if self.cancel_event.is_set():
            raise CancelRequested(f"execution {self.execution_id} was cancelled")

    def _raise_for(self, state: ClaimState) -> None:
        if not state.held:
            raise ClaimLost(f"execution {self.execution_id} is no longer held by {self.worker_id}")
        if state.cancel_requested:
            self.cancel_event.set()
            raise CancelRequested(f"execution {self.execution_id} was cancelled")
