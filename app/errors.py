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
"""

from __future__ import annotations

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
