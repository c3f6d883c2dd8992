"""The completer: ends wait in a buffer and are written together, with the next claim.

A quick execution's end is not written when it ends: it joins the batch's
buffer, and the worker's next statement (the next claim, or a slow
execution's start) writes all of them at once (app.engine.batches). Each end
is then logged and counted here, recorded or "lost" when the worker no longer
held it. Rare ends (a retry, a requeue) are written on their own by the
executor and reported here too, so every end is counted in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import NamedTuple, Protocol

from app import db
from app.engine.batches import Record
from app.engine.models import End, Execution
from app.engine.outcomes import Attempted, Ran, log_outcome, outcome_of
from app.engine.recording import record_batch
from app.engine.registry import Registry
from worker import metrics
from worker.buffer import Buffer

__all__ = ["Completer", "Ended", "Written"]


class Ended(NamedTuple):
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
            self.execution.id,
            end.status,
            self.started,
            self.ended,
            end.error,
            end.payload,
            end.retry_max_backoff,
            end.retry_at,
        )


class Written(NamedTuple):
    """What a write claimed, and whether a claim may have committed unseen."""

    claimed: list[Execution]
    unsure: bool


class RecordBatch(Protocol):
    def __call__(
        self, pool: db.AsyncPool, worker_id: str, records: Sequence[Record], *, claim: int
    ) -> Awaitable[tuple[set[str], list[Execution], bool]]: ...


class Completer:
    """Buffers ends, writes them with a claim or a start, and reports each end once."""

    def __init__(
        self,
        worker_id: str,
        registry: Registry,
        *,
        write: RecordBatch = record_batch,
    ) -> None:
        self.worker_id = worker_id
        self.registry = registry
        self.ended: Buffer[Ended] = Buffer()
        self.processed = 0
        self._write = write

    def add(self, ended: Ended) -> None:
        self.ended.add(ended)

    def pending(self) -> list[Record]:
        """The records waiting, left in place (for the watchdog's last transaction)."""
        return [e.record() for e in self.ended.peek()]

    async def write(
        self, pool: db.AsyncPool, *, claim: int = 0, extra: Record | None = None
    ) -> Written:
        """Write the buffered ends (plus `extra`) and claim up to `claim` more, in one statement."""
        ended = self.ended.take()
        if not ended and extra is None and claim == 0:
            return Written([], False)
        records = [e.record() for e in ended] + ([extra] if extra is not None else [])
        recorded, claimed, unsure = await self._write(pool, self.worker_id, records, claim=claim)
        for e in ended:
            outcome = outcome_of(e.end) if e.execution.id in recorded else "lost"
            ran = log_outcome(e.execution, self.worker_id, outcome, e.attempted)
            self.finished(e.execution, ran, e.attempted)
        return Written(claimed, unsure)

    def finished(self, execution: Execution, ran: Ran, attempted: Attempted) -> None:
        """Count an end that is on record (or lost) and feed the metrics."""
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
