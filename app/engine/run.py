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
from app.engine.retry import Backoff, RetryPolicy
from app.errors import CancelRequested, ClaimLost, SpineError, TimedOut, first_line

__all__ = ["Outcome", "Ran", "abandoned_end", "run_pipeline", "timed_out_message"]

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "cancelled", "retrying", "requeued", "lost"]


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
        attempt=execution.attempt,
    )
    started = time.perf_counter()
    elog.debug("running %s %s (attempt %d)", execution.pipeline, execution_id, execution.attempt)
    deadline = None
    if execution.timeout_seconds is not None:
        # Cooperative: the pipeline stops at its next cancellation point. One that
        # ignores it is abandoned by its worker after SPINE_TIMEOUT_GRACE.
        deadline = asyncio.get_running_loop().call_later(
            execution.timeout_seconds, ctx.time_out, timed_out_message(execution.timeout_seconds)
        )
    try:
        end, failure = await _attempt(ctx, execution, settings, registry)
    finally:
        if deadline is not None:
            deadline.cancel()
    if end is None:
        elog.warning("lost the claim on %s while running; its result is discarded", execution_id)
        return Ran("lost")
    if isinstance(end, _Requeue):
        elog.warning("requeueing %s (%s)", execution_id, end.reason)
        requeued = await _retrying(
            pool,
            functools.partial(
                leases.requeue, execution_id=execution_id, worker_id=worker_id, reason=end.reason
            ),
            f"requeue {execution_id}",
        )
        return Ran("requeued" if requeued else "lost")
    end.payload["duration_s"] = round(time.perf_counter() - started, 6)
    outcome: Outcome = "retrying" if end.retry_max_backoff is not None else end.status
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
    args = (execution.pipeline, execution_id, outcome, end.payload["duration_s"])
    if end.status == "failed":
        # A failure is a warning; an unexpected error's line carries its traceback.
        elog.warning(line + ": %s", *args, end.error, exc_info=failure)
    else:
        elog.info(line, *args)
    return Ran(outcome, next_execution, unsure, end.payload.get("result"))


class _Requeue(NamedTuple):
    """The database went away under the pipeline: not its fault; run it again."""

    reason: str


async def _attempt(  # noqa: PLR0911 - one return for each way an attempt can end
    ctx: PipelineContext, execution: Execution, settings: Settings, registry: Registry
) -> tuple[End | _Requeue | None, BaseException | None]:
    """Run the pipeline once: how the attempt ended (None: this worker lost the claim), and
    the unexpected error behind a failure, if any (its traceback goes to the log)."""
    policy = _policy(execution, registry)
    try:
        if execution.cancel_requested:
            raise CancelRequested("cancelled before it started")
        pipeline = registry.get(execution.pipeline)
        params = pipeline.validate(execution.params, settings)
        summary = await pipeline.run(ctx, params)
    except TimedOut as exc:
        return _failure(execution, policy, settings, str(exc), _timed_out_payload(str(exc))), None
    except CancelRequested as exc:
        return End("cancelled", None, {"reason": str(exc)}), None
    except ClaimLost:
        return None, None
    except psycopg.OperationalError as exc:
        reason = f"database unavailable: {_one_line(exc)}"
        if execution.attempt < execution.max_attempts:
            return _Requeue(reason), None
        return End("failed", reason, _error_payload(reason, exc, None)), None
    except Exception as exc:
        error = _one_line(exc)
        # A domain error's message says it all; anything else keeps its traceback.
        trace = None if isinstance(exc, SpineError) else traceback.format_exc()
        payload = _error_payload(error, exc, trace)
        unexpected = None if isinstance(exc, SpineError) else exc
        if policy.is_permanent(exc):  # an unknown pipeline is bad input: permanent too
            return End("failed", error, payload), unexpected
        return _failure(execution, policy, settings, error, payload), unexpected
    try:
        return End("completed", None, {"result": msgspec.to_builtins(summary)}), None
    except (TypeError, ValueError) as exc:
        error = f"the pipeline's result is not JSON-able: {exc}"
        return End("failed", error, _error_payload(error, exc, None)), None


def _error_payload(error: str, exc: BaseException, trace: str | None) -> dict[str, Any]:
    return {"error": error, "error_type": type(exc).__name__, "traceback": trace}


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


def timed_out_message(timeout_seconds: float) -> str:
    return f"timed out after {timeout_seconds:g} s"


def abandoned_end(execution: Execution, registry: Registry, settings: Settings) -> End:
    """The end of an attempt its worker gave up on (it ignored its timeout's cancel)."""
    assert execution.timeout_seconds is not None
    error = (
        f"{timed_out_message(execution.timeout_seconds)}; abandoned "
        f"{settings.timeout_grace:g} s later: it did not stop when asked"
    )
    return _failure(
        execution, _policy(execution, registry), settings, error, _timed_out_payload(error)
    )


def _timed_out_payload(error: str) -> dict[str, Any]:
    return {"error": error, "error_type": "TimedOut", "traceback": None}


def _policy(execution: Execution, registry: Registry) -> RetryPolicy:
    """The execution's pipeline's retry policy (the default one for a pipeline not known here)."""
    return registry.get(execution.pipeline).retry if execution.pipeline in registry else _DEFAULT


_DEFAULT = RetryPolicy()


def _failure(
    execution: Execution,
    policy: RetryPolicy,
    settings: Settings,
    error: str | None,
    payload: dict[str, Any],
) -> End:
    """A retryable failure: retried while attempts are left, else the end."""
    if execution.attempt >= execution.max_attempts:
        return End("failed", error, payload)
    cap = policy.max_backoff(settings.retry_max_backoff)
    return End("failed", error, payload, retry_max_backoff=cap)


def _one_line(exc: BaseException) -> str:
    """A domain error's message as is; anything else prefixed with its type."""
    line = first_line(exc)
    return (line if isinstance(exc, SpineError) else f"{type(exc).__name__}: {line}")[:500]
