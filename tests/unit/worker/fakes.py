"""Stand-ins for the worker parts' tests: executions, a pool and a writer, no server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from app.engine.batches import Record
from app.engine.models import Execution

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def execution(
    execution_id: str, *, timeout: float | None = None, cancel_requested: bool = False
) -> Execution:
    return Execution(
        id=execution_id,
        pipeline="noop",
        params={},
        lane="normal",
        status="queued",
        trigger_source="test",
        logical_key=None,
        attempt=0,
        worker_id="w",
        cancel_requested=cancel_requested,
        created_at=NOW,
        queued_at=NOW,
        started_at=None,
        completed_at=None,
        error=None,
        max_attempts=3,
        retry_backoff_seconds=1.0,
        available_at=NOW,
        timeout_seconds=timeout,
    )


class Pool:
    """Hands out a None connection: the fakes below never look at it."""

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        yield None


class Writer:
    """A fake `record_batch`: records what is held, hands out `queue` to claims."""

    def __init__(self, queue: Sequence[Execution] = (), *, lost: set[str] | None = None) -> None:
        self.queue = list(queue)
        self.lost = lost or set()
        self.calls: list[tuple[list[Record], int]] = []
        self.unsure = False

    async def __call__(
        self, pool: Any, worker_id: str, records: Sequence[Record], *, claim: int
    ) -> tuple[set[str], list[Execution], bool]:
        self.calls.append((list(records), claim))
        claimed, self.queue = self.queue[:claim], self.queue[claim:]
        recorded = {r.id for r in records} - self.lost
        return recorded, claimed, self.unsure
