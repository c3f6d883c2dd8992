"""Writing an attempt's end, through a database outage, so a result is never dropped.

Two ways in: `record_batch` writes the batched completer's ends together
with the next claim (app.engine.batches), and `record_end` writes a rare end
on its own (a retry, a requeue). Both keep retrying while the database is
unreachable (a restart, a failover), for up to RETRY_SECONDS; a result the
database refuses to store is written as that failure instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.db import AsyncConn
from app.engine import batches, leases
from app.engine.models import End, Execution
from app.engine.outcomes import Attempted, Outcome, Ran, Requeue, log_outcome, one_line, outcome_of
from app.engine.retry import Backoff

__all__ = ["RETRY_SECONDS", "record_batch", "record_end"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 120.0
"""How long to keep retrying a state change while the database is unreachable."""
T = TypeVar("T")


async def record_end(
    pool: AsyncConnectionPool[AsyncConn], execution: Execution, worker_id: str, attempted: Attempted
) -> Ran:
    """Record an attempt's end on its own (a started execution): finish, retry or requeue."""
    end = attempted.end
    if end is None:
        outcome: Outcome = "lost"
    elif isinstance(end, Requeue):
        requeued = await _retrying(
            pool,
            functools.partial(
                leases.requeue, execution_id=execution.id, worker_id=worker_id, reason=end.reason
            ),
            f"requeue {execution.id}",
        )
        outcome = "requeued" if requeued else "lost"
    else:
        finished = await _finish(pool, execution.id, worker_id, end)
        outcome = outcome_of(end) if finished else "lost"
    return log_outcome(execution, worker_id, outcome, attempted)


async def record_batch(
    pool: AsyncConnectionPool[AsyncConn],
    worker_id: str,
    records: Sequence[batches.Record],
    *,
    claim: int,
) -> tuple[set[str], list[Execution], bool]:
    """Write a batch's records and claim up to `claim` more; returns (recorded ids,
    claimed, claim unsure).

    Through a database outage the records alone are written, retrying, so an end is
    never dropped; the claim may then have committed unseen ("unsure"). A record the
    database refuses (say, a result it cannot store) is written as that failure.
    """
    try:
        async with pool.connection() as conn:
            recorded, claimed = await batches.record(conn, worker_id, records, claim=claim)
            return recorded, claimed, False
    except psycopg.OperationalError as exc:
        log.warning("recording %d end(s) failed (%s); retrying", len(records), one_line(exc))
        unsure = claim > 0
        if not records:
            return set(), [], unsure
        recorded, _ = await _retrying(
            pool,
            functools.partial(batches.record, worker_id=worker_id, records=records),
            f"record {len(records)} end(s)",
        )
        return recorded, [], unsure
    except psycopg.Error:
        log.exception("recording %d end(s) failed; recording them one by one", len(records))
        return await _record_each(pool, worker_id, records), [], False


async def _record_each(
    pool: AsyncConnectionPool[AsyncConn], worker_id: str, records: Sequence[batches.Record]
) -> set[str]:
    recorded: set[str] = set()
    for r in records:
        try:
            async with pool.connection() as conn:
                recorded |= (await batches.record(conn, worker_id, [r]))[0]
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            error, payload = _recording_failed(exc)
            failed = batches.Record(r.id, "failed", r.started, r.ended, error, payload)
            async with pool.connection() as conn:
                recorded |= (await batches.record(conn, worker_id, [failed]))[0]
    return recorded


async def _finish(
    pool: AsyncConnectionPool[AsyncConn], execution_id: str, worker_id: str, end: End
) -> bool:
    """Record the end, retrying through a database outage so a result is never dropped."""
    while True:
        try:
            return await _retrying(
                pool,
                functools.partial(
                    leases.finish, execution_id=execution_id, worker_id=worker_id, end=end
                ),
                f"record the end of {execution_id}",
            )
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            if end.payload.get("recording_error"):
                raise
            # The result itself could not be stored (say, it is not JSON-able): record that.
            log.exception("recording the end of %s failed", execution_id)
            end = End("failed", *_recording_failed(exc))


def _recording_failed(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """The end written instead of a result the database refused (say, not JSON-able)."""
    error = f"recording the result failed: {one_line(exc)}"
    return error, {"error": error, "recording_error": True}


async def _retrying(
    pool: AsyncConnectionPool[AsyncConn],
    statement: Callable[[AsyncConn], Awaitable[T]],
    what: str,
) -> T:
    """Run one statement, retrying through a database outage (restart, failover)."""
    deadline = time.monotonic() + RETRY_SECONDS
    backoff = Backoff(0.1, 2.0)
    while True:
        try:
            async with pool.connection() as conn:
                return await statement(conn)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("cannot %s yet (%s); retrying", what, one_line(exc))
            await asyncio.sleep(backoff.next())
