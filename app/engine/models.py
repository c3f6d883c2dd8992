"""The engine's one vocabulary: statuses, lanes, event types, channels and rows.

The API's schemas, the CLI and the SQL modules all take these names from
here, so a status or a lane is spelled once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal, get_args

import msgspec

__all__ = [
    "ACTIVE",
    "CANCEL_CHANNEL",
    "EVENT_TYPES",
    "EXECUTIONS_CHANNEL",
    "HELD",
    "LANES",
    "SCHEDULES_CHANNEL",
    "STATUSES",
    "TERMINAL",
    "ClaimState",
    "End",
    "EndStatus",
    "EndsAs",
    "Event",
    "EventType",
    "Execution",
    "Lane",
    "Status",
    "to_execution",
]

Status = Literal["pending", "queued", "running", "completed", "failed", "cancelled"]
"""pending → (queued →) running → completed | failed, and cancelled from any active state.

A failed attempt with attempts left goes back to `pending` (a `retry_scheduled`
event) and waits for its `available_at`; an attempt that asked to run again at a
time (`TryAgainAt`) goes back to `pending` until then (a `deferred` event), its
attempt not counted; a manual retry moves `failed` or
`cancelled` back to `pending` (a `retried` event)."""
EndStatus = Literal["completed", "failed", "cancelled"]
EndsAs = EndStatus | Literal["deferred"]
"""How an attempt ends: a terminal status, or `deferred` (back to pending until a time)."""
Lane = Literal["normal", "backfill"]
"""`normal` is always claimed before `backfill`."""
EventType = Literal[
    "created",
    "queued",
    "started",
    "progress",
    "completed",
    "failed",
    "cancel_requested",
    "cancelled",
    "requeued",
    "retry_scheduled",
    "retried",
    "deferred",
]

STATUSES: Final[tuple[Status, ...]] = get_args(Status)
LANES: Final[tuple[Lane, ...]] = get_args(Lane)
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
ACTIVE: Final[tuple[Status, ...]] = ("pending", "queued", "running")
TERMINAL: Final[tuple[EndStatus, ...]] = get_args(EndStatus)
HELD: Final[tuple[Status, ...]] = ("queued", "running")
"""The states in which an execution belongs to a worker (`worker_id` names it)."""

EXECUTIONS_CHANNEL: Final = "spine_executions"
"""NOTIFY channel: something became claimable (payload: the lane or `requeued`)."""
CANCEL_CHANNEL: Final = "spine_cancel"
"""NOTIFY channel: a running execution was asked to stop (payload: its id)."""
SCHEDULES_CHANNEL: Final = "spine_schedules"
"""NOTIFY channel: a schedule was created, changed or removed (payload: its name)."""


class Execution(msgspec.Struct, frozen=True):
    """An executions row."""

    id: str
    pipeline: str
    params: dict[str, Any]
    lane: Lane
    status: Status
    trigger_source: str
    logical_key: str | None
    attempt: int
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    """The latest attempt's error: kept while a retry waits, and once it failed."""
    max_attempts: int
    retry_backoff_seconds: float
    available_at: datetime
    """Not claimed before this: a delayed run, or the backoff of a retry."""
    timeout_seconds: float | None
    backend: str = "local"
    """The backend that runs it (only its workers claim it); read where shown."""
    backend_run_id: str | None = None
    """The backend's id of its latest hand-over (a Celery task id); None for the pool."""


def to_execution(row: dict[str, Any]) -> Execution:
    """An executions row (of either tier) as read with psycopg's dict rows."""
    return msgspec.convert(row, Execution, from_attributes=False)


class Event(msgspec.Struct, frozen=True):
    """An execution_events row: one thing that happened to an execution."""

    id: int
    execution_id: str
    event_type: EventType
    timestamp: datetime
    payload: dict[str, Any]


class End(msgspec.Struct, frozen=True):
    """How a held execution ended: the status, the error (failed), the event's payload."""

    status: EndsAs
    error: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    retry_max_backoff: float | None = None
    """Set on a failure to retry (it is retryable and attempts are left): the cap
    of the wait in seconds; the base comes from the execution's row."""
    retry_at: datetime | None = None
    """Set with status `deferred`: when to run it again (the pipeline's `TryAgainAt`)."""

    @property
    def rare(self) -> bool:
        """Written on its own, not batched: a retry or a deferral (back to pending)."""
        return self.retry_max_backoff is not None or self.status == "deferred"


class ClaimState(msgspec.Struct, frozen=True):
    """Whether a worker still holds an execution, and whether its cancel was asked for."""

    held: bool
    cancel_requested: bool
