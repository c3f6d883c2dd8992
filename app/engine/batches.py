"""Batched leases: claim several executions at once and record their ends together.

A worker draining a deep queue of quick executions would otherwise pay one
statement (and one commit) per execution. Here it pays one per batch:

- `record(..., claim=n)` takes up to `n` pending executions in claim order
  and makes them `queued`, held by the worker (each with its `queued` event):
  visibly the worker's, not yet started. It is the only statement that
  claims.
- The worker then runs them one by one. A quick one's start is not written
  when it starts: `record` writes it with its end, each with the time it
  happened (measured by the worker, placed on the database clock as
  `now()` minus its age when sent). A slow one's start is written while it
  runs (a `record` row whose status is `running`).
- `record` writes a batch's ends (and starts) with every execution's events
  in one statement, and claims the next batch in the same statement. A
  failure to retry is one of those ends (back to pending, to wait out its
  backoff), so an end, whether batched or written alone
  (`app.engine.leases.finish`), is written by this one statement.

The statement is `record` in sql/batches.sql. Every row is still guarded by
"still held by me", so a worker that lost its claim writes nothing, and a
start is written once. A worker killed between a
quick execution's end and the batch's `record` leaves it `queued`, like the
ones it had not started: recovery cannot tell them apart, so it counts an
attempt for each (app.engine.workers), and none runs more often than its
max_attempts allows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

import msgspec

from app.db import AsyncConn
from app.engine.executions import to_execution
from app.engine.models import Execution
from app.engine.queries import load

__all__ = ["Record", "record"]


class Record(msgspec.Struct, frozen=True):
    """One held execution's change for `record`.

    `started`: when it started, to write its start now (None when its start is
    already written, or it never started); `status` is `running` to write the
    start alone, else how it ended, at `ended`. Both are `time.monotonic()`
    readings of this process: `record` sends their ages.
    """

    id: str
    status: Literal["running", "completed", "failed", "cancelled", "deferred"]
    started: float | None
    ended: float
    error: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    retry_max_backoff: float | None = None
    """On a failure: retry it (back to pending) while attempts are left, waiting at
    most this many seconds (see app.engine.models.End)."""
    retry_at: datetime | None = None
    """With status `deferred`: back to pending until then, the attempt not counted."""


class _Row(msgspec.Struct):
    """A Record as `record` sends it: ages instead of moments."""

    id: str
    status: str
    started_ago: float | None
    ended_ago: float
    error: str | None
    payload: dict[str, Any]
    retry_cap: float | None
    retry_at: datetime | None


_encode = msgspec.json.Encoder().encode

_SQL = load("batches")


async def record(
    conn: AsyncConn,
    worker_id: str,
    records: Sequence[Record],
    *,
    claim: int = 0,
    backend: str = "local",
    only: str | None = None,
) -> tuple[set[str], list[Execution]]:
    """Write `records` and claim up to `claim` more of `backend`'s, in one statement.

    `only`: claim that execution alone, if it is still pending, due and
    `backend`'s (a Celery task's claim by id).

    Returns the ids recorded (one missing was no longer held by this worker:
    nothing of it was written) and the executions claimed, in claim order.
    """
    now = time.monotonic()
    rows_in = [
        _Row(
            r.id,
            r.status,
            None if r.started is None else now - r.started,
            now - r.ended,
            r.error,
            r.payload,
            r.retry_max_backoff,
            r.retry_at,
        )
        for r in records
    ]
    # One JSON document for the whole batch: encoded at once, not value by value.
    args = {
        "worker": worker_id,
        "limit": claim,
        "records": _encode(rows_in).decode(),
        "backend": backend,
        "only": only,
    }
    # Binary results: neither side formats and parses a claimed row's five timestamps as text.
    rows = await (await conn.execute(_SQL["record"], args, binary=True)).fetchall()
    recorded = set(cast("list[str]", rows[0]["recorded"])) if rows else set()
    claimed = [to_execution(row) for row in rows if row["id"] is not None]
    return recorded, claimed
