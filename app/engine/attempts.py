"""attempt(): the one place a pipeline runs, once, and how its end is classified.

The worker's executor calls it with an execution it holds (worker.executor);
it records nothing: the end it returns is written by the batched completer,
or on its own for a rare end (app.engine.recording). The classification is
here too: a domain error or a cancel ends it as is, a retryable failure is
retried while attempts are left, a `TryAgainAt` defers it to its time (not a
failure, no attempt used), an outage under the pipeline requeues it,
and a timeout (or one abandoned past its grace) is a retryable failure.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db import AsyncConn
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.models import End, Execution
from app.engine.outcomes import Attempted, Requeue, fields, one_line
from app.engine.registry import Registry
from app.engine.retry import RetryPolicy
from app.errors import CancelRequested, ClaimLost, SpineError, TimedOut, TryAgainAt

__all__ = ["abandoned_end", "attempt", "timed_out_message"]

log = logging.getLogger(__name__)


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
    extra = fields(execution, worker_id)
    logger = logging.LoggerAdapter(_pipeline_logger(execution.pipeline), extra)
    ctx = PipelineContext(
        execution_id=execution.id,
        worker_id=worker_id,
        pool=pool,
        settings=PipelineSettings.of(settings),
        log=logger,
        cancel_event=cancel_event or asyncio.Event(),
        attempt=execution.attempt,
        before_write=before_write,
    )
    started = time.perf_counter()
    if log.isEnabledFor(logging.DEBUG):
        args = (execution.pipeline, execution.id, execution.attempt)
        log.debug("running %s %s (attempt %d)", *args, extra=extra)
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


async def _attempt(  # noqa: PLR0911 - one return for each way an attempt can end
    ctx: PipelineContext, execution: Execution, settings: Settings, registry: Registry
) -> tuple[End | Requeue | None, BaseException | None]:
    """Run the pipeline once: how the attempt ended (None: this worker lost the claim), and
    the unexpected error behind a failure, if any (its traceback goes to the log)."""
    policy = registry.retry_policy(execution.pipeline)
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
    except TryAgainAt as exc:
        # Not a failure: back to pending until then, this attempt not counted.
        payload = {"reason": exc.reason}
        return End("deferred", exc.reason, payload, retry_at=exc.at), None
    except ClaimLost:
        return None, None
    except psycopg.OperationalError as exc:
        reason = f"database unavailable: {one_line(exc)}"
        if execution.attempt < execution.max_attempts:
            return Requeue(reason), None
        return End("failed", reason, _error_payload(reason, exc, None)), None
    except Exception as exc:
        error = one_line(exc)
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


@functools.cache
def _pipeline_logger(pipeline: str) -> logging.Logger:
    """The pipeline's logger, looked up once per name (`getLogger` locks the module)."""
    return logging.getLogger(f"spine.pipeline.{pipeline}")


def _error_payload(error: str, exc: BaseException, trace: str | None) -> dict[str, Any]:
    return {"error": error, "error_type": type(exc).__name__, "traceback": trace}


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
        execution,
        registry.retry_policy(execution.pipeline),
        settings,
        error,
        _timed_out_payload(error),
    )


def _timed_out_payload(error: str) -> dict[str, Any]:
    return {"error": error, "error_type": "TimedOut", "traceback": None}


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
