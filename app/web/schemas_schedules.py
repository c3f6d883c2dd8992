"""Request and response types of /api/v1/schedules, printed by `spine schedules` too.

Web types, apart from the engine's `Schedule` row and `ScheduleInput`: the
conversion happens here, at the edge. Shape constraints (lengths, ranges)
live in the types and are 400s naming the field; what needs the registry or
a cron parser (unknown pipeline, bad params, a bad cron expression, both or
neither of cron and interval) is checked by the engine and is a 422.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from app.engine.models import Status
from app.engine.schedules import (
    DEFAULT_MISFIRE_GRACE,
    MAX_SECONDS,
    NAME_PATTERN,
    Schedule,
    ScheduleInput,
)
from app.engine.schedules_sql import FireRow, SkipRow
from app.web.schemas import ExecutionResponse, Lane, Params, PipelineName

__all__ = [
    "ExecutionResponse",
    "FireResponse",
    "ScheduleCreate",
    "ScheduleDetail",
    "SchedulePatch",
    "ScheduleResponse",
    "SkipResponse",
]

ScheduleName = Annotated[
    str,
    msgspec.Meta(
        pattern=NAME_PATTERN,
        description="Unique; letters, digits and _.:- (at most 100).",
        examples=["otc_metrics_nightly"],
    ),
]
Cron = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        description="A standard 5-field cron expression, in `timezone`.",
        examples=["30 18 * * 1-5"],
    ),
]
IntervalSeconds = Annotated[
    int,
    msgspec.Meta(
        le=MAX_SECONDS,
        description="Fire every N seconds (slots are multiples of N since the Unix epoch).",
    ),
]
TimeZone = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        description="IANA time zone of the cron expression (default: SPINE_MARKET_TZ).",
        examples=["America/New_York"],
    ),
]
Grace = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=MAX_SECONDS,
        description=(
            "After downtime the most recent missed slot still fires if it is at most "
            "this many seconds old; older missed slots are skipped and recorded."
        ),
    ),
]


class ScheduleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of POST and PUT /schedules: exactly one of `cron` and `interval_seconds`."""

    name: ScheduleName
    pipeline: PipelineName
    params: Params = msgspec.field(default_factory=dict)
    lane: Lane = "normal"
    cron: Cron | None = None
    interval_seconds: IntervalSeconds | None = None
    timezone: TimeZone | None = None
    enabled: bool = True
    misfire_grace_seconds: Grace = DEFAULT_MISFIRE_GRACE

    def to_input(self) -> ScheduleInput:
        return ScheduleInput(
            name=self.name,
            pipeline=self.pipeline,
            params=self.params,
            lane=self.lane,
            cron=self.cron,
            interval_seconds=self.interval_seconds,
            timezone=self.timezone,
            enabled=self.enabled,
            misfire_grace_seconds=self.misfire_grace_seconds,
        )


class SchedulePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of PATCH /schedules/{name}: only the fields given change.

    Giving `cron` switches an interval schedule to cron (and the other way round).
    """

    name: ScheduleName | msgspec.UnsetType = msgspec.UNSET
    pipeline: PipelineName | msgspec.UnsetType = msgspec.UNSET
    params: Params | msgspec.UnsetType = msgspec.UNSET
    lane: Lane | msgspec.UnsetType = msgspec.UNSET
    cron: Cron | msgspec.UnsetType = msgspec.UNSET
    interval_seconds: IntervalSeconds | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    misfire_grace_seconds: Grace | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: value
            for f in self.__struct_fields__
            if (value := getattr(self, f)) is not msgspec.UNSET
        }


class ScheduleResponse(msgspec.Struct, kw_only=True):
    """A schedule as clients see it."""

    name: str
    pipeline: str
    params: dict[str, Any]
    lane: Lane
    cron: str | None
    interval_seconds: int | None
    timezone: str
    enabled: bool
    misfire_grace_seconds: int
    next_fire_at: Annotated[
        dt.datetime, msgspec.Meta(description="The next slot (it fires only while enabled).")
    ]
    last_fired_at: Annotated[
        dt.datetime | None, msgspec.Meta(description="The slot (or manual run) fired last.")
    ]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Schedule) -> ScheduleResponse:
        return cls(
            name=row.name,
            pipeline=row.pipeline,
            params=row.params,
            lane=row.lane,
            cron=row.cron,
            interval_seconds=row.interval_seconds,
            timezone=row.timezone,
            enabled=row.enabled,
            misfire_grace_seconds=row.misfire_grace_seconds,
            next_fire_at=row.next_fire_at,
            last_fired_at=row.last_fired_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class FireResponse(msgspec.Struct, kw_only=True):
    """One fire: the slot, its execution and that execution's status (null once pruned)."""

    fire_at: dt.datetime
    manual: Annotated[bool, msgspec.Meta(description="A run-now, not a slot.")]
    fired_at: dt.datetime
    execution_id: str | None
    status: Status | None

    @classmethod
    def from_row(cls, row: FireRow) -> FireResponse:
        return cls(
            fire_at=row.fire_at,
            manual=row.manual,
            fired_at=row.fired_at,
            execution_id=row.execution_id,
            status=row.status,
        )


class SkipResponse(msgspec.Struct, kw_only=True):
    """Slots that were not fired (the pools were down), and why."""

    first_slot: dt.datetime
    last_slot: dt.datetime
    slots: int
    reason: str
    recorded_at: dt.datetime

    @classmethod
    def from_row(cls, row: SkipRow) -> SkipResponse:
        return cls(
            first_slot=row.first_slot,
            last_slot=row.last_slot,
            slots=row.slots,
            reason=row.reason,
            recorded_at=row.recorded_at,
        )


class ScheduleDetail(ScheduleResponse, kw_only=True):
    """A schedule with its latest fires (newest first) and skips."""

    recent_fires: list[FireResponse]
    recent_skips: list[SkipResponse]
