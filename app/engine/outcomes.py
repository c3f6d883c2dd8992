"""How an attempt ended, and the one line each end is logged with.

`Attempted` is what one run of a pipeline came to, before anything is
written; `Ran` is how its end went on record (or "lost", when this worker no
longer held the execution). Both the executor's own writes and the batched
completer report through `log_outcome`, so every end is logged the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple

from app.engine.models import End, Execution
from app.errors import SpineError, first_line

__all__ = [
    "QUIET_UNDER_SECONDS",
    "Attempted",
    "Outcome",
    "Ran",
    "Requeue",
    "fields",
    "log_outcome",
    "one_line",
    "outcome_of",
]

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "cancelled", "retrying", "deferred", "requeued", "lost"]

QUIET_UNDER_SECONDS = 0.05
"""A completion quicker than this is logged at DEBUG: a queue draining thousands a
second would otherwise write thousands of lines a second (the metrics count them)."""


class Requeue(NamedTuple):
    """The database went away under the pipeline: not its fault; run it again."""

    reason: str


class Attempted(NamedTuple):
    """What one run of a pipeline came to, not yet recorded.

    `end`: how it ended; a `Requeue` when the database went away under it; None
    when this worker lost its claim (nothing is to be recorded).
    """

    end: End | Requeue | None
    failure: BaseException | None
    """The unexpected error behind a failure (its traceback goes to the log)."""
    seconds: float


class Ran(NamedTuple):
    """How an execution ended."""

    outcome: Outcome
    result: Any = None
    """The pipeline's summary when it completed (for its row counts, see Pipeline.rows)."""


def outcome_of(end: End) -> Outcome:
    return "retrying" if end.retry_max_backoff is not None else end.status


def fields(execution: Execution, worker_id: str) -> dict[str, str]:
    """What every line about an execution carries (JSON logs' fields)."""
    return {"execution_id": execution.id, "pipeline": execution.pipeline, "worker_id": worker_id}


def one_line(exc: BaseException) -> str:
    """A domain error's message as is; anything else prefixed with its type."""
    line = first_line(exc)
    return (line if isinstance(exc, SpineError) else f"{type(exc).__name__}: {line}")[:500]


def log_outcome(
    execution: Execution, worker_id: str, outcome: Outcome, attempted: Attempted
) -> Ran:
    """The one line an attempt's end is logged with; returns it as a Ran."""
    extra = fields(execution, worker_id)
    end = attempted.end
    if outcome == "lost":
        if end is None:
            log.warning(
                "lost the claim on %s while running; its result is discarded",
                execution.id,
                extra=extra,
            )
        else:
            log.warning(
                "execution %s was taken from %s before it could finish",
                execution.id,
                worker_id,
                extra=extra,
            )
        return Ran("lost")
    if isinstance(end, Requeue):
        log.warning("requeued %s (%s)", execution.id, end.reason, extra=extra)
        return Ran(outcome)
    assert end is not None
    line = "%s %s %s in %.3fs"
    args = (execution.pipeline, execution.id, outcome, attempted.seconds)
    if end.status == "deferred":
        log.info(line + ": %s", *args, end.error, extra=extra)
    elif end.status == "failed":
        # A failure is a warning; an unexpected error's line carries its traceback.
        log.warning(line + ": %s", *args, end.error, exc_info=attempted.failure, extra=extra)
    elif end.status == "completed" and attempted.seconds < QUIET_UNDER_SECONDS:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(line, *args, extra=extra)
    else:
        log.info(line, *args, extra=extra)
    return Ran(outcome, end.payload.get("result"))
