"""attempt(): the one place a pipeline runs.

Called by a worker with an execution it holds: runs the pipeline; the worker
records how it ended (record_batch, or record_end for a rare end). Each status
change and its event commit together, and only while this worker still holds
the execution.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db import AsyncConn
from app.engine import batches, leases
from app.engine.context import PipelineContext
from app.engine.models import End, Execution
from app.engine.registry import Registry
from app.engine.retry import Backoff, RetryPolicy
from app.errors import CancelRequested, ClaimLost, SpineError, TimedOut, first_line

__all__ = [
    "Attempted",
    "Outcome",
    "Ran",
    "Requeue",
    "abandoned_end",
    "attempt",
    "log_outcome",
    "outcome_of",
    "record_batch",
    "record_end",
    "timed_out_message",
]

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "cancelled", "retrying", "requeued", "lost"]


class Ran(NamedTuple):
    """How an execution ended."""

    outcome: Outcome
    result: Any = None
    """The pipeline's summary when it completed (for its row counts, see Pipeline.rows)."""


class Attempted(NamedTuple):
    """What one run of a pipeline came to, not yet recorded.

    `end`: how it ended; a `Requeue` when the database went away under it; None
    when this worker lost its claim (nothing is to be recorded).
    """

    end: End | Requeue | None
    failure: BaseException | None
    """The unexpected error behind a failure (its traceback goes to the log)."""
    seconds: float


QUIET_UNDER_SECONDS = 0.05
"""A completion quicker than this is logged at DEBUG: a queue draining thousands a
second would otherwise write thousands of lines a second (the metrics count them)."""

# How long to keep retrying a state change while the database is unreachable.
RETRY_SECONDS = 120.0
T = TypeVar("T")


def _fields(execution: Execution, worker_id: str) -> dict[str, str]:
    """What every line about an execution carries (JSON logs' fields)."""
    return {"execution_id": execution.id, "pipeline": execution.pipeline, "worker_id": worker_id}


async def attempt(
    pool: AsyncConnectionPool[AsyncConn],
    execution: Execution,
    worker_id: str,
    *,
    settings: Settings,
    registry: Registry,
    cancel_event: asyncio.Event | None = None,
    before_write: Callable[[], Awaitable[None]] | None = None,
) -> Attempted:
    """Run an execution this worker holds once, with its timeout; record nothing.

    `before_write` runs before the pipeline's first write about the execution
    (its first progress event): the worker records the start there when it
    has not yet.
    """
    fields = _fields(execution, worker_id)
    logger = logging.LoggerAdapter(
        logging.getLogger(f"spine.pipeline.{execution.pipeline}"), fields
    )
    ctx = PipelineContext(
        execution_id=execution.id,
        worker_id=worker_id,
        pool=pool,
        settings=settings,
        log=logger,
        cancel_event=cancel_event or asyncio.Event(),
        attempt=execution.attempt,
        before_write=before_write,
    )
    started = time.perf_counter()
    if log.isEnabledFor(logging.DEBUG):
        args = (execution.pipeline, execution.id, execution.attempt)
        log.debug("running %s %s (attempt %d)", *args, extra=fields)
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
    seconds = time.perf_counter() - started
    if isinstance(end, End):
        end.payload["duration_s"] = round(seconds, 6)
    return Attempted(end, failure, seconds)


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


def outcome_of(end: End) -> Outcome:
    return "retrying" if end.retry_max_backoff is not None else end.status


def log_outcome(
    execution: Execution, worker_id: str, outcome: Outcome, attempted: Attempted
) -> Ran:
    """The one line an attempt's end is logged with; returns it as a Ran."""
    fields = _fields(execution, worker_id)
    end = attempted.end
    if outcome == "lost":
        if end is None:
            log.warning(
                "lost the claim on %s while running; its result is discarded",
                execution.id,
                extra=fields,
            )
        else:
            log.warning(
                "execution %s was taken from %s before it could finish",
                execution.id,
                worker_id,
                extra=fields,
            )
        return Ran("lost")
    if isinstance(end, Requeue):
        log.warning("requeued %s (%s)", execution.id, end.reason, extra=fields)
        return Ran(outcome)
    assert end is not None
    line = "%s %s %s in %.3fs"
    args = (execution.pipeline, execution.id, outcome, attempted.seconds)
    if end.status == "failed":
        # A failure is a warning; an unexpected error's line carries its traceback.
        log.warning(line + ": %s", *args, end.error, exc_info=attempted.failure, extra=fields)
    elif end.status == "completed" and attempted.seconds < QUIET_UNDER_SECONDS:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(line, *args, extra=fields)
    else:
        log.info(line, *args, extra=fields)
    return Ran(outcome, end.payload.get("result"))


class Requeue(NamedTuple):
    """The database went away under the pipeline: not its fault; run it again."""

    reason: str


async def _attempt(  # noqa: PLR0911 - one return for each way an attempt can end
    ctx: PipelineContext, execution: Execution, settings: Settings, registry: Registry
) -> tuple[End | Requeue | None, BaseException | None]:
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
            return Requeue(reason), None
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
        log.warning("recording %d end(s) failed (%s); retrying", len(records), _one_line(exc))
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
            error = f"recording the result failed: {_one_line(exc)}"
            failed = batches.Record(
                r.id, "failed", r.started, r.ended, error, {"error": error, "recording_error": True}
            )
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
