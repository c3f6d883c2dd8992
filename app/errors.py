"""Domain errors, one hierarchy for the whole service.

SpineError
 ├── NotFound          an execution (or other object) does not exist       → HTTP 404
 ├── Conflict          the request contradicts the current state           → HTTP 409
 └── InvalidRequest    bad input: unknown pipeline, bad params, bad file   → HTTP 422 / 400
      ├── UnknownPipeline
      ├── InvalidParams
      └── InvalidField     one named field of the request is wrong
ExecutionStopped       raised inside a running pipeline to stop it (not an API error)
 ├── CancelRequested   an operator asked for cancellation
 ├── TimedOut          the attempt ran past its timeout_seconds (a retryable failure)
 └── ClaimLost         this worker no longer holds the execution
TryAgainAt             raised by a pipeline to end its attempt asking to run again at a
                       time (a publisher's Retry-After, a file not yet published): not a
                       failure, and no attempt of its budget is used
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "CancelRequested",
    "ClaimLost",
    "Conflict",
    "ExecutionStopped",
    "InvalidField",
    "InvalidParams",
    "InvalidRequest",
    "NotFound",
    "SpineError",
    "TimedOut",
    "TryAgainAt",
    "UnknownPipeline",
    "first_line",
]


def first_line(exc: BaseException) -> str:
    """An exception's first line of text (its type name when it has none): for logs and CLIs."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class SpineError(Exception):
    """Base of the errors a client or operator can cause; the message is for humans."""


class NotFound(SpineError):
    pass


class Conflict(SpineError):
    pass


class InvalidRequest(SpineError):
    pass


class UnknownPipeline(InvalidRequest):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown pipeline {name!r}; known pipelines: {', '.join(known)}")
        self.name = name
        self.known = known


class InvalidParams(InvalidRequest):
    pass


class InvalidField(InvalidRequest):
    """Bad input in one field; the API names it in the problem's `errors`."""

    def __init__(self, field: str, message: str, *, source: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.source = source  # body, query or path


class ExecutionStopped(Exception):
    """Stops a running pipeline from inside (raised by progress/cancel checks)."""


class CancelRequested(ExecutionStopped):
    pass


class TimedOut(ExecutionStopped):
    pass


class ClaimLost(ExecutionStopped):
    pass


class TryAgainAt(Exception):
    """End this attempt and run the execution again at `at` (an aware datetime).

    Recorded as its own end (a `deferred` event with the reason and the time):
    the execution goes back to `pending` until then, and the attempt is not
    counted against its retry budget.
    """

    def __init__(self, at: datetime, reason: str) -> None:
        if at.tzinfo is None:
            raise ValueError("TryAgainAt needs an aware datetime")
        super().__init__(f"{reason}; trying again at {at.isoformat()}")
        self.at = at
        self.reason = reason
