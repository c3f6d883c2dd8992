"""Abandoning a timed-out attempt: the one transaction a worker writes before it exits.

A worker gives up an attempt that ignored its timeout's cancel (see
worker.watchdog). Its event loop may be stuck in the pipeline, so what the
loop had not written yet goes here too: in one transaction, kept only if the
worker still holds the execution, the batch's ends so far, this attempt's
start, the rest of the batch given back, then the timeout itself (a retry
while attempts are left). The worker is then marked stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.db import AsyncConn
from app.engine import batches, leases, workers
from app.engine.models import End

__all__ = ["abandon"]


class _NotHeld(Exception):
    """The attempt ended (or was taken) meanwhile: roll everything back."""


async def abandon(
    conn: AsyncConn,
    worker_id: str,
    execution_id: str,
    end: End,
    *,
    records: Sequence[batches.Record],
    held: Sequence[str],
) -> bool:
    """Record the abandoned attempt's `end`; False (nothing written) if no longer held."""
    try:
        async with conn.transaction():
            if records:
                await batches.record(conn, worker_id, records)
            if held:
                reason = leases.GIVEN_BACK_BEHIND_SLOW
                await leases.release_held(conn, worker_id, reason=reason, ids=held)
            if not await leases.finish(conn, execution_id, worker_id, end):
                raise _NotHeld
    except _NotHeld:
        return False
    await workers.mark_stopped(conn, worker_id)
    return True
