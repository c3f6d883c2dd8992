"""Leases: what a worker does to the executions it holds.

Finish or schedule a retry (through the batch's statement in `batches`,
which also claims), requeue, give back, progress. Every change is guarded by
"still held by me" in its WHERE clause, so a worker that lost its claim can never
overwrite what another did, and every status change writes its event in the
same statement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from psycopg.types.json import Jsonb

from app.db import AsyncConn
from app.engine.batches import Record, record
from app.engine.models import ClaimState, End
from app.engine.queries import load

_SQL = load("leases")

__all__ = [
    "CLAIM_ANSWER_LOST",
    "GIVEN_BACK_BEHIND_SLOW",
    "GIVEN_BACK_ON_STOP",
    "claim_state",
    "finish",
    "record_progress",
    "release_held",
    "requeue",
]


async def finish(conn: AsyncConn, execution_id: str, worker_id: str, end: End) -> bool:
    """End a held execution on its own; False when this worker no longer held it.

    The batch's record statement with one row (app.engine.batches), so an end
    is written the same way batched or alone: a failure with
    `retry_max_backoff` set (app.engine.attempts sets it: retryable, attempts
    left) goes back to pending with a `retry_scheduled` event instead, and a
    `deferred` end (a `TryAgainAt`) with a `deferred` event.
    """
    one = Record(
        execution_id,
        end.status,
        None,
        time.monotonic(),
        end.error,
        end.payload,
        end.retry_max_backoff,
        end.retry_at,
    )
    recorded, _ = await record(conn, worker_id, [one])
    return execution_id in recorded


async def requeue(conn: AsyncConn, execution_id: str, worker_id: str, *, reason: str) -> bool:
    """Give a held execution back to the queue (a transient failure); False if not held."""
    cur = await conn.execute(
        _SQL["requeue"],
        {"id": execution_id, "worker": worker_id, "payload": Jsonb({"reason": reason})},
    )
    return await cur.fetchone() is not None


CLAIM_ANSWER_LOST = "claimed but not run: the claim's answer was lost"
GIVEN_BACK_ON_STOP = "claimed but not run: the worker is stopping"
GIVEN_BACK_BEHIND_SLOW = "claimed but not run: given back while one before it runs long"


async def release_held(
    conn: AsyncConn, worker_id: str, *, reason: str, ids: Sequence[str] | None = None
) -> list[str]:
    """Give back executions held by a worker that is running none of them (or only `ids`).

    Three cases: a worker stopping with a claimed batch it has not started, a
    batch's rest given back while one of it runs long, and a claim whose commit
    succeeded while its connection broke, which leaves executions held by a
    live worker that never learned of them (its heartbeat would keep them from
    recovery forever). The attempt is not counted: they never ran. The
    `requeued` event carries `reason`.
    """
    args = {"worker": worker_id, "reason": reason, "ids": None if ids is None else list(ids)}
    rows = await (await conn.execute(_SQL["release_held"], args)).fetchall()
    return [str(r["id"]) for r in rows]


async def record_progress(
    conn: AsyncConn,
    execution_id: str,
    worker_id: str,
    *,
    done: int,
    total: int | None,
    message: str,
    phase: str | None = None,
) -> ClaimState:
    payload: dict[str, object] = {"done": done, "total": total, "message": message}
    if phase is not None:
        payload["phase"] = phase
    cur = await conn.execute(
        _SQL["progress"], {"id": execution_id, "worker": worker_id, "payload": Jsonb(payload)}
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)


async def claim_state(conn: AsyncConn, execution_id: str, worker_id: str) -> ClaimState:
    cur = await conn.execute(
        _SQL["claim_state"],
        {"id": execution_id, "worker": worker_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return msgspec.convert(row, ClaimState)
