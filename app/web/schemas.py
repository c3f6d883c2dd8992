"""Request and response types of the core API, the objects the CLI prints too (msgspec Structs).

These are web types, kept apart from repository rows on purpose: a row gains a
column without the API changing, and the API can rename or reshape a field
without touching SQL. `from_row` converts at the edge. Constraints live in the
types (`Annotated[..., msgspec.Meta(...)]`) so validation and the OpenAPI
document come from the same place.

Money stays exact (see `app.web.fields`). A data domain's types live in its own
package (`app/<domain>/schemas.py`); error bodies in `app.web.problems`. They
live in `app.web`, not `app.api`, because `spine ... --format json` prints them too.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from app.engine.models import Event, EventType, Execution, Lane, Status
from app.engine.retry import MAX_ATTEMPTS_LIMIT
from app.engine.submit import MAX_SECONDS
from app.time_bounds import RANGE_NOTE
from app.web.fields import money, to_json, with_example
from app.web.problems import Problem

__all__ = [
    "BATCH_LIMIT",
    "BatchItemResponse",
    "EventResponse",
    "EventType",
    "ExecutionBatchCreate",
    "ExecutionBatchResponse",
    "ExecutionCreate",
    "ExecutionResponse",
    "Lane",
    "LivenessResponse",
    "MigrationsReport",
    "PipelineParam",
    "PipelineResponse",
    "ReadinessResponse",
    "Status",
    "money",
    "to_json",
]

PipelineName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        description="A registered pipeline (GET /api/v1/pipelines lists them).",
        examples=["otc_ingest"],
    ),
]
LogicalKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        description=(
            "Deduplication key: while an execution with this key is active "
            "(pending, queued or running), submitting it again returns that execution."
        ),
        examples=["otc_ingest:2026-01-06"],
    ),
]
Params = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="The pipeline's parameters; validated against the pipeline's own schema.",
        examples=[{"file": "otc_sample.csv"}],
    ),
]
# ------------------------------------------------------------------ executions


class ExecutionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of POST /executions; unknown fields are errors so a typo is never a silent default."""

    pipeline: PipelineName
    params: Params = msgspec.field(default_factory=dict)
    lane: Annotated[
        Lane, msgspec.Meta(description="`normal` is always claimed before `backfill`.")
    ] = "normal"
    logical_key: LogicalKey | None = None
    max_attempts: (
        Annotated[
            int,
            msgspec.Meta(
                ge=1,
                le=MAX_ATTEMPTS_LIMIT,
                description="Attempts before a failure is final (default: the pipeline's policy).",
            ),
        ]
        | None
    ) = None
    retry_backoff_seconds: (
        Annotated[
            float,
            msgspec.Meta(
                ge=0,
                le=MAX_SECONDS,
                description=(
                    "Wait before the first retry; each later one waits twice the one before, "
                    "plus up to 10% jitter, at most SPINE_RETRY_MAX_BACKOFF."
                ),
            ),
        ]
        | None
    ) = None
    timeout_seconds: (
        Annotated[
            float,
            msgspec.Meta(
                gt=0,
                le=MAX_SECONDS,
                description="An attempt running longer is stopped: a retryable failure.",
            ),
        ]
        | None
    ) = None
    run_at: (
        Annotated[
            dt.datetime,
            msgspec.Meta(
                tz=True,
                description=(
                    f"Not started before this time (RFC 3339, with its offset), {RANGE_NOTE}."
                ),
                examples=["2026-01-06T21:30:00Z"],
            ),
        ]
        | None
    ) = None


class ExecutionResponse(msgspec.Struct, kw_only=True):
    """An execution as clients see it."""

    id: Annotated[str, with_example("0f9c2a4e-8d1b-4c55-9a3e-2b7d1f0c6e11")]
    pipeline: Annotated[str, with_example("otc_ingest")]
    params: Annotated[dict[str, Any], with_example({"file": "otc_sample.csv"})]
    lane: Lane
    status: Status
    trigger_source: Annotated[str, with_example("api", "api, cli or schedule.")]
    logical_key: str | None
    attempt: Annotated[
        int, with_example(1, "Attempts started (a manual retry starts again from 0).")
    ]
    max_attempts: int
    available_at: Annotated[
        dt.datetime,
        msgspec.Meta(description="Not started before this: a delayed run or a retry's wait."),
    ]
    timeout_seconds: float | None
    retry_backoff_seconds: float
    cancel_requested: bool
    created_at: Annotated[dt.datetime, with_example("2026-01-06T14:30:00.123456Z")]
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    error: Annotated[str | None, with_example(None, "Why it failed, for failed executions.")]
    last_error: Annotated[
        str | None,
        msgspec.Meta(description="The latest attempt's error, also while a retry waits."),
    ]
    backend: Annotated[
        str, with_example("local", "The backend that runs it: local (the pool) or celery.")
    ] = "local"
    backend_run_id: Annotated[
        str | None,
        msgspec.Meta(description="The backend's id of its latest hand-over (a Celery task id)."),
    ] = None

    @classmethod
    def from_row(cls, row: Execution) -> ExecutionResponse:
        return cls(
            id=row.id,
            pipeline=row.pipeline,
            params=row.params,
            lane=row.lane,
            status=row.status,
            trigger_source=row.trigger_source,
            logical_key=row.logical_key,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            available_at=row.available_at,
            timeout_seconds=row.timeout_seconds,
            retry_backoff_seconds=row.retry_backoff_seconds,
            cancel_requested=row.cancel_requested,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            error=row.error if row.status == "failed" else None,
            last_error=row.error,
            backend=row.backend,
            backend_run_id=row.backend_run_id,
        )


BATCH_LIMIT = 1000
"""The most items one POST /executions/batch takes."""


class ExecutionBatchCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of POST /executions/batch. The items are checked one by one, each as the body of
    POST /executions: an invalid item is answered `invalid` and the others go ahead."""

    executions: Annotated[
        list[dict[str, Any]],
        msgspec.Meta(
            min_length=1,
            max_length=BATCH_LIMIT,
            description=(
                f"Up to {BATCH_LIMIT:,} submissions, each shaped like the body of "
                "POST /api/v1/executions."
            ),
            examples=[[{"pipeline": "noop"}, {"pipeline": "sleep", "params": {"seconds": 1}}]],
        ),
    ]


class BatchItemResponse(msgspec.Struct, kw_only=True):
    """What became of one item of a bulk submit, at its position in the request."""

    outcome: Annotated[
        Literal["created", "deduplicated", "invalid"],
        msgspec.Meta(
            description=(
                "`created`; `deduplicated`: its logical_key is held by an active execution "
                "(or an earlier item), which is given; `invalid`: nothing stored, see `error`."
            )
        ),
    ]
    execution: ExecutionResponse | None = None
    error: Annotated[
        str | None, msgspec.Meta(description="Why the item is invalid (as a single submit says).")
    ] = None


class ExecutionBatchResponse(msgspec.Struct, kw_only=True):
    """The answer to a bulk submit: one result per item, in the request's order."""

    results: list[BatchItemResponse]


class ExecutionBatchProblem(Problem, kw_only=True):
    """A bulk submit with at least one invalid item (422, a problem document): the same
    `results`, one per item in order, so a client reads both answers alike."""

    results: list[BatchItemResponse]


class EventResponse(msgspec.Struct, kw_only=True):
    """One state change (or progress report) of an execution."""

    id: Annotated[int, msgspec.Meta(description="Increases with time: events sort by it.")]
    execution_id: str
    event_type: EventType
    timestamp: dt.datetime
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: Event) -> EventResponse:
        return cls(
            id=row.id,
            execution_id=row.execution_id,
            event_type=row.event_type,
            timestamp=row.timestamp,
            payload=row.payload,
        )


# ------------------------------------------------------------------ pipelines


class PipelineParam(msgspec.Struct, kw_only=True):
    name: str
    type: Annotated[str, msgspec.Meta(examples=["int", "date or none"])]
    default: Annotated[str, msgspec.Meta(description="The default value, or `(required)`.")]
    description: str | None = None


class PipelineResponse(msgspec.Struct, kw_only=True):
    """A pipeline that can be submitted, with its parameters."""

    name: str
    description: str
    params: list[PipelineParam]


# ------------------------------------------------------------------ health


class LivenessResponse(msgspec.Struct, kw_only=True):
    status: Literal["ok"]
    version: str


class MigrationsReport(msgspec.Struct, kw_only=True):
    applied: int
    pending: list[str]
    changed: Annotated[
        list[str], msgspec.Meta(description="Applied, but the file on disk differs since.")
    ]


class ReadinessResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """200 with status `ready`, or 503 with status `not_ready` and the reason."""

    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unavailable"]
    reason: str | None = None
    migrations: MigrationsReport | None = None
    live_workers: Annotated[
        int | None, msgspec.Meta(description="Worker processes heartbeating (informational).")
    ] = None
    backend: Annotated[
        str | None, msgspec.Meta(description="The orchestrator backend (SPINE_BACKEND).")
    ] = None
    broker: Annotated[
        Literal["reachable", "unreachable"] | None,
        msgspec.Meta(
            description=(
                "The Celery backend's broker (informational: submits still succeed through "
                "the outbox while it is down)."
            )
        ),
    ] = None
