"""run_pipeline(): the one place a pipeline runs.

Called by a worker with the execution it has just claimed (the claim already
set it running): runs the pipeline and records how it ended. Each status
change and its event commit together, and only while this worker still holds
the execution.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db import AsyncConn
from app.engine import leases
from app.engine.context import PipelineContext
from app.engine.models import End, Execution
from app.engine.registry import Registry
from app.engine.retry import Backoff
from app.errors import CancelRequested, ClaimLost, SpineError, first_line

__all__ = ["Outcome", "Ran", "run_pipeline"]

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "cancelled", "requeued", "lost"]


class Ran(NamedTuple):
    """How an execution ended, and the next one if the end claimed it.

    `claim_unsure`: the statement that was to record the end and claim the
    next lost its connection, so a claim may have committed unseen; the worker
    gives back what it holds before it claims again.
    """

    outcome: Outcome
    next: Execution | None = None
    claim_unsure: bool = False
    result: Any = None
    """The pipeline's summary when it completed (for its row counts, see Pipeline.rows)."""


# How long to keep retrying a state change while the database is unreachable.
RETRY_SECONDS = 120.0
T = TypeVar("T")


async def run_pipeline(
    pool: AsyncConnectionPool[AsyncConn],
    execution: Execution,
    worker_id: str,
    *,
    settings: Settings,
    registry: Registry,
    cancel_event: asyncio.Event | None = None,
    claim_next: Callable[[], bool] | None = None,
) -> Ran:
    """Run an execution this worker has claimed (it is `running`) to its end.

    When `claim_next()` says so at the end, the statement that records the end
    also claims the next execution (returned in `Ran.next`): one commit per
    execution for a busy worker instead of two.
    """
    execution_id = execution.id
    # Every line about this execution carries its id, pipeline and worker (JSON logs' fields).
    fields = {"execution_id": execution_id, "pipeline": execution.pipeline, "worker_id": worker_id}
    logger = logging.LoggerAdapter(
        logging.getLogger(f"spine.pipeline.{execution.pipeline}"), fields
    )
    elog = logging.LoggerAdapter(log, fields)
    ctx = PipelineContext(
        execution_id=execution_id,
        worker_id=worker_id,
        pool=pool,
        settings=settings,
        log=logger,
        cancel_event=cancel_event or asyncio.Event(),
    )
    started = time.perf_counter()
    elog.debug("running %s %s (attempt %d)", execution.pipeline, execution_id, execution.attempt)
    status: Literal["completed", "failed", "cancelled"]
    error: str | None = None
    failure: BaseException | None = None  # an unexpected error: its traceback goes to the log
    payload: dict[str, Any]
    try:
        if execution.cancel_requested:
            raise CancelRequested("cancelled before it started")
        pipeline = registry.get(execution.pipeline)
        params = pipeline.validate(execution.params, settings)
        summary = await pipeline.run(ctx, params)
    except CancelRequested as exc:
        status, payload = "cancelled", {"reason": str(exc)}
    except ClaimLost:
        elog.warning("lost the claim on %s while running; its result is discarded", execution_id)
        return Ran("lost")
    except psycopg.OperationalError as exc:
        if execution.attempt >= settings.max_attempts:
            status, error = "failed", f"database unavailable: {_one_line(exc)}"
            payload = {"error": error, "error_type": type(exc).__name__, "traceback": None}
        else:
            # The database went away under the pipeline: not its fault; run it again.
            reason = f"database unavailable: {_one_line(exc)}"
            elog.warning("requeueing %s (%s)", execution_id, reason)
            requeued = await _retrying(
                pool,
                functools.partial(
                    leases.requeue, execution_id=execution_id, worker_id=worker_id, reason=reason
                ),
                f"requeue {execution_id}",
            )
            return Ran("requeued" if requeued else "lost")
    except Exception as exc:
        status = "failed"
        error = _one_line(exc)
        failure = None if isinstance(exc, SpineError) else exc
        payload = {
            "error": error,
            "error_type": type(exc).__name__,
            # A domain error's message says it all; anything else keeps its traceback.
            "traceback": None if isinstance(exc, SpineError) else traceback.format_exc(),
        }
    else:
        try:
            status, payload = "completed", {"result": msgspec.to_builtins(summary)}
        except (TypeError, ValueError) as exc:
            status, error = "failed", f"the pipeline's result is not JSON-able: {exc}"
            payload = {"error": error, "error_type": type(exc).__name__, "traceback": None}
    payload["duration_s"] = round(time.perf_counter() - started, 6)
    return await _record(
        pool,
        execution,
        worker_id,
        End(status, error, payload),
        claim_next=claim_next,
        elog=elog,
        failure=failure,
    )


async def _record(
    pool: AsyncConnectionPool[AsyncConn],
    execution: Execution,
    worker_id: str,
    end: End,
    *,
    claim_next: Callable[[], bool] | None,
    elog: logging.LoggerAdapter[logging.Logger],
    failure: BaseException | None,
) -> Ran:
    """Record how the run ended (claiming the next when asked), and log it in one line.

    A failure's line is a warning; an unexpected error's carries its traceback.
    """
    execution_id = execution.id
    next_execution, unsure = None, False
    if claim_next is not None and claim_next():
        finished, next_execution, unsure = await _finish_and_claim(
            pool, execution_id, worker_id, end
        )
    else:
        finished = await _finish(pool, execution_id, worker_id, end)
    if not finished:
        elog.warning(
            "execution %s was taken from %s before it could finish", execution_id, worker_id
        )
        return Ran("lost", next_execution, unsure)
    line = "%s %s %s in %.3fs"
    args = (execution.pipeline, execution_id, end.status, end.payload["duration_s"])
    if end.status == "failed":
        elog.warning(line + ": %s", *args, end.error, exc_info=failure)
    else:
        elog.info(line, *args)
    return Ran(end.status, next_execution, unsure, end.payload.get("result"))


async def _finish_and_claim(
    pool: AsyncConnectionPool[AsyncConn], execution_id: str, worker_id: str, end: End
) -> tuple[bool, Execution | None, bool]:
    """Record the end and claim the next in one statement; on any error, the end alone.

    Returns (finished, next execution, claim unsure): when the connection
    broke, the combined statement may have committed unseen, claim included.
    """
    try:
        async with pool.connection() as conn:
            finished, next_execution = await leases.finish_and_claim(
                conn, execution_id, worker_id, end
            )
            return finished, next_execution, False
    except psycopg.Error as exc:
        log.warning("recording the end of %s failed (%s); retrying", execution_id, _one_line(exc))
        finished = await _finish(pool, execution_id, worker_id, end)
        return finished, None, isinstance(exc, psycopg.OperationalError)


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
            error = f"recording the result failed: {_one_line(exc)}"
            end = End("failed", error, {"error": error, "recording_error": True})


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
            log.warning("cannot %s yet (%s); retrying", what, _one_line(exc))
            await asyncio.sleep(backoff.next())


def _one_line(exc: BaseException) -> str:
    """A domain error's message as is; anything else prefixed with its type."""
    line = first_line(exc)
    return (line if isinstance(exc, SpineError) else f"{type(exc).__name__}: {line}")[:500]
