"""Request and response types of the REST API (msgspec Structs).

These are web types, kept apart from repository rows on purpose: a row gains a
column without the API changing, and the API can rename or reshape a field
without touching SQL. `from_row` converts at the edge. Constraints live in the
types (`Annotated[..., msgspec.Meta(...)]`) so validation and the OpenAPI
document come from the same place.

Money (prices, notional, VWAP) is NUMERIC in the database and computed there
exactly; it stays a Decimal here and leaves as a JSON number written with all
its digits (`to_json`, msgspec's `decimal_format="number"`), never through a
double. The API and the CLI's `--format json` both encode with `to_json`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, cast

import msgspec

from app.engine.models import Event, EventType, Execution, Lane, Status
from app.engine.retry import MAX_ATTEMPTS_LIMIT
from app.engine.submit import MAX_SECONDS
from app.otc.load_reads import LoadRow, Reject
from app.otc.reads import DailyMetric, Trade

__all__ = [
    "DailyMetricResponse",
    "EventResponse",
    "EventType",
    "ExecutionCreate",
    "ExecutionResponse",
    "FieldError",
    "Lane",
    "LivenessResponse",
    "LoadResponse",
    "MigrationsReport",
    "PipelineParam",
    "PipelineResponse",
    "Problem",
    "ReadinessResponse",
    "RejectResponse",
    "Status",
    "TradeResponse",
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
MONEY_NOTE = (
    "Exact: NUMERIC in the database, a JSON number with every digit here (never rounded "
    "through a double); parse it as a decimal (e.g. Python `json.loads(..., "
    "parse_float=Decimal)`) to keep it exact."
)


def _exact(description: str, example: str = "12.5") -> msgspec.Meta:
    """A Decimal sent as a JSON number: the OpenAPI type (Litestar reads `extra`; without it a
    Decimal is documented as a string), and no Litestar import here (the CLI uses these types)."""
    return msgspec.Meta(
        description=description,
        extra_json_schema={
            "description": description,
            "examples": [float(example)],  # a document example, encoded by Litestar
            "extra": {"type": "number", "format": "decimal"},
        },
    )


def _ex(example: object, description: str | None = None) -> msgspec.Meta:
    """A field's example (Swagger UI and ReDoc build response examples from them)."""
    return msgspec.Meta(examples=[example], description=description)


Money = Annotated[Decimal, _exact(MONEY_NOTE)]
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def money(value: Decimal | int) -> Decimal:
    """NUMERIC -> Decimal without trailing zeros or an exponent (`12.500000` -> `12.5`)."""
    exact = Decimal(value).normalize()
    return exact.quantize(Decimal(1)) if exact.as_tuple().exponent > 0 else exact  # type: ignore[operator]


def to_json(value: object) -> bytes:
    """JSON with Decimals as exact numbers: what the API sends and `--format json` prints."""
    return _ENCODER.encode(value)


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
                description="Not started before this time (RFC 3339, with its offset).",
                examples=["2026-01-06T21:30:00Z"],
            ),
        ]
        | None
    ) = None


class ExecutionResponse(msgspec.Struct, kw_only=True):
    """An execution as clients see it."""

    id: Annotated[str, _ex("0f9c2a4e-8d1b-4c55-9a3e-2b7d1f0c6e11")]
    pipeline: Annotated[str, _ex("otc_ingest")]
    params: Annotated[dict[str, Any], _ex({"file": "otc_sample.csv"})]
    lane: Lane
    status: Status
    trigger_source: Annotated[str, _ex("api", "api, cli or schedule.")]
    logical_key: str | None
    attempt: Annotated[int, _ex(1, "Attempts started (a manual retry starts again from 0).")]
    max_attempts: int
    available_at: Annotated[
        dt.datetime,
        msgspec.Meta(description="Not started before this: a delayed run or a retry's wait."),
    ]
    timeout_seconds: float | None
    retry_backoff_seconds: float
    cancel_requested: bool
    created_at: Annotated[dt.datetime, _ex("2026-01-06T14:30:00.123456Z")]
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    error: Annotated[str | None, _ex(None, "Why it failed, for failed executions.")]
    last_error: Annotated[
        str | None,
        msgspec.Meta(description="The latest attempt's error, also while a retry waits."),
    ]

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
        )


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


# ------------------------------------------------------------------ OTC


class DailyMetricResponse(msgspec.Struct, kw_only=True):
    """One symbol's metrics for one trade date (computed exactly in NUMERIC)."""

    symbol: Annotated[str, _ex("ACME")]
    date: Annotated[dt.date, _ex("2026-01-06")]
    trade_count: Annotated[int, _ex(292)]
    total_volume: Annotated[int, _ex(355400, "Shares: the sum of trade sizes.")]
    total_notional: Annotated[Decimal, _exact(MONEY_NOTE, "4446282.71")]
    vwap: Annotated[Decimal, _exact("total_notional / total_volume. " + MONEY_NOTE, "12.510644654")]
    high_price: Annotated[Decimal, _exact(MONEY_NOTE, "12.62")]
    low_price: Annotated[Decimal, _exact(MONEY_NOTE, "12.39")]

    @classmethod
    def from_row(cls, row: DailyMetric) -> DailyMetricResponse:
        return cls(
            symbol=row.symbol,
            date=row.date,
            trade_count=row.trade_count,
            total_volume=row.total_volume,
            total_notional=money(row.total_notional),
            vwap=money(row.vwap),
            high_price=money(row.high_price),
            low_price=money(row.low_price),
        )


class TradeResponse(msgspec.Struct, kw_only=True):
    """One normalized OTC trade (its latest values, corrections applied)."""

    trade_id: Annotated[str, _ex("T20260106-0000001")]
    symbol: Annotated[str, _ex("ACME")]
    trade_date: Annotated[
        dt.date, _ex("2026-01-06", "executed_at's calendar date in the market time zone.")
    ]
    executed_at: Annotated[dt.datetime, _ex("2026-01-06T14:30:01.250000Z")]
    price: Money
    size: Annotated[int, _ex(100, "Shares.")]
    side: Annotated[Literal["B", "S"], _ex("B", "B(uy) or S(ell).")]
    venue: Annotated[str, _ex("OTCN", "The reporting venue (4 letters).")]

    @classmethod
    def from_row(cls, row: Trade) -> TradeResponse:
        return cls(
            trade_id=row.trade_id,
            symbol=row.symbol,
            trade_date=row.trade_date,
            executed_at=row.executed_at,
            price=money(row.price),
            size=row.size,
            side=cast(Literal["B", "S"], row.side),  # the table's CHECK constraint
            venue=row.venue,
        )


class LoadResponse(msgspec.Struct, kw_only=True):
    """One file loaded by one otc_ingest execution; the counts once it finished.

    rows_read = inserted + duplicates + corrections + rejected.
    """

    id: Annotated[int, msgspec.Meta(examples=[1])]
    execution_id: Annotated[str, _ex("0f9c2a4e-8d1b-4c55-9a3e-2b7d1f0c6e11")]
    source_file: Annotated[str, _ex("otc_sample.csv", "Relative to SPINE_DATA_DIR.")]
    file_bytes: Annotated[int, _ex(259301)]
    file_sha256: str | None
    started_at: Annotated[dt.datetime, _ex("2026-01-06T14:30:00.5Z")]
    finished_at: Annotated[
        dt.datetime | None, msgspec.Meta(description="Null while the load runs.")
    ]
    rows_read: Annotated[int | None, _ex(4016)]
    inserted: Annotated[int | None, _ex(4001)]
    duplicates: Annotated[int | None, _ex(1)]
    corrections: Annotated[int | None, _ex(2)]
    rejected: Annotated[
        int | None, _ex(12, "Lines kept with their reason: GET .../loads/{id}/rejects.")
    ]

    @classmethod
    def from_row(cls, row: LoadRow) -> LoadResponse:
        return cls(**msgspec.structs.asdict(row))


class RejectResponse(msgspec.Struct, kw_only=True):
    """A line of a loaded file that was not a valid trade, and why."""

    line_no: Annotated[int, _ex(4006, "Line number in the file (the header is line 1).")]
    reason: Annotated[
        str,
        msgspec.Meta(
            description="The first rule the line breaks, e.g. bad_price, wrong_column_count.",
            examples=["bad_price"],
        ),
    ]
    line: Annotated[
        str | None,
        _ex(
            "X-BAD-01,ACME,2026-01-05T15:00:00Z,abc,100,B,OTCN",
            "The line as read, cut to 300 characters (then `…`).",
        ),
    ]

    @classmethod
    def from_row(cls, row: Reject) -> RejectResponse:
        return cls(line_no=row.line_no, reason=row.reason, line=row.line)


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


# ------------------------------------------------------------------ errors


class FieldError(msgspec.Struct, kw_only=True):
    field: Annotated[str, msgspec.Meta(description="The offending field, e.g. `pipeline`.")]
    message: str
    source: Annotated[str, msgspec.Meta(description="body, query, path or header.")]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: Annotated[str, msgspec.Meta(description="A URI naming the kind of problem.")] = (
        "about:blank"
    )
    title: str
    status: int
    detail: str | None = None
    instance: Annotated[str | None, msgspec.Meta(description="The request path.")] = None
    errors: list[FieldError] | None = None
    known_pipelines: list[str] | None = None
