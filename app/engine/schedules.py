"""Schedules: the model, when a schedule fires next, and what a late tick does.

A schedule is a cron expression (standard 5 fields, in the schedule's IANA
time zone) or an interval. Cron is parsed and iterated by cronsim, whose time
zone rules are Debian cron's:

- Spring forward: a local time inside the skipped hour fires once, at the
  first instant after the gap. `30 2 * * *` in America/New_York fires on
  2026-03-08 at 03:00 EDT (07:00 UTC).
- Fall back: an expression with a fixed hour fires once, at the first of the
  repeated local times (`30 1 * * *` on 2026-11-01 fires at 01:30 EDT, 05:30
  UTC, not again at 01:30 EST); `30 2 * * *` is not repeated and fires at
  02:30 EST. An expression whose hour field is `*` or a step fires at every
  real instant it matches, both 01:30s included.

Intervals are absolute: slots are multiples of `interval_seconds` since the
Unix epoch, so DST never moves them (use cron for a wall-clock time).

The downtime rule (`plan`): a tick that finds slots due fires only the most
recent one, and only if it is at most `misfire_grace_seconds` old; every
other due slot is skipped, and the skip recorded. The grace is for downtime:
a schedule's own next slot that a tick finds less than a tolerance late (about
one scheduler tick) always fires, so a grace of 0 means "never catch up",
not "never fire". The clock is always passed
in (the database's `now()` in production), so tests inject one.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from cronsim import CronSim, CronSimError

from app.config import Settings
from app.engine.models import LANES, Lane
from app.engine.registry import Registry
from app.errors import InvalidField
from app.timezones import is_iana_zone

__all__ = [
    "DEFAULT_MISFIRE_GRACE",
    "MAX_SECONDS",
    "NAME_PATTERN",
    "Plan",
    "Schedule",
    "ScheduleInput",
    "Spec",
    "logical_key",
    "next_after",
    "plan",
    "validate",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
DEFAULT_MISFIRE_GRACE = 300
MAX_SECONDS = 366 * 86_400
"""Longest interval and misfire grace: a year (and well inside an SQL integer)."""
SKIP_COUNT_CAP = 100_000
"""A cron schedule's skipped slots are counted up to this many (a year of minutes is 525,600)."""
_NAME = re.compile(NAME_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Spec(msgspec.Struct, frozen=True):
    """When a schedule fires: exactly one of `cron` and `interval_seconds`."""

    cron: str | None
    interval_seconds: int | None
    timezone: str

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Schedule(msgspec.Struct, frozen=True):
    """A schedules row."""

    id: int
    name: str
    pipeline: str
    params: dict[str, Any]
    lane: Lane
    cron: str | None
    interval_seconds: int | None
    timezone: str
    enabled: bool
    misfire_grace_seconds: int
    next_fire_at: datetime
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def spec(self) -> Spec:
        return Spec(self.cron, self.interval_seconds, self.timezone)


class ScheduleInput(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller (API, CLI) asks for; `validate` checks it and fills the defaults."""

    name: str
    pipeline: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    lane: str = "normal"
    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str | None = None
    enabled: bool = True
    misfire_grace_seconds: Annotated[int, msgspec.Meta(ge=0)] = DEFAULT_MISFIRE_GRACE

    @property
    def spec(self) -> Spec:
        assert self.timezone is not None, "validate() fills the time zone"
        return Spec(self.cron, self.interval_seconds, self.timezone)


def validate(inp: ScheduleInput, registry: Registry, settings: Settings) -> ScheduleInput:
    """Check every field (errors name it) and return the input with canonical params.

    The params are validated against the pipeline now, at creation, so a bad
    one is the caller's 422 and never a failed execution at 18:30.
    """
    if not _NAME.match(inp.name):
        raise InvalidField(
            "name",
            f"schedule name {inp.name!r} must be 1-100 letters, digits or _.:- "
            "and start with a letter or digit",
        )
    pipeline = registry.get(inp.pipeline)  # UnknownPipeline lists the known ones
    if inp.lane not in LANES:
        raise InvalidField("lane", f"unknown lane {inp.lane!r}; lanes: {', '.join(LANES)}")
    if not 0 <= inp.misfire_grace_seconds <= MAX_SECONDS:
        raise InvalidField(
            "misfire_grace_seconds", f"misfire_grace_seconds must be between 0 and {MAX_SECONDS}"
        )
    timezone = settings.market_tz if inp.timezone is None else inp.timezone  # "" is refused
    spec = check_spec(inp.cron, inp.interval_seconds, timezone)
    typed = pipeline.validate(inp.params, settings)
    params: dict[str, Any] = msgspec.to_builtins(typed)
    return msgspec.structs.replace(inp, params=params, timezone=spec.timezone)


def check_spec(cron: str | None, interval_seconds: int | None, timezone: str) -> Spec:
    """A valid Spec, or InvalidField naming `cron`, `interval_seconds` or `timezone`."""
    if (cron is None) == (interval_seconds is None):
        which = "both" if cron is not None else "neither"
        raise InvalidField(
            "cron", f"give exactly one of `cron` and `interval_seconds` (got {which})"
        )
    try:
        if not is_iana_zone(timezone):
            raise ValueError(timezone)
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            "timezone",
            f"timezone {timezone!r} is not an IANA time zone name (like America/New_York)",
        ) from None
    if interval_seconds is not None and not 1 <= interval_seconds <= MAX_SECONDS:
        raise InvalidField(
            "interval_seconds", f"interval_seconds must be at least 1 and at most {MAX_SECONDS}"
        )
    if cron is not None:
        fields = cron.split()
        if len(fields) != 5:
            raise InvalidField(
                "cron", f"invalid cron expression {cron!r}: expected 5 fields, got {len(fields)}"
            )
        cron = " ".join(fields)
        try:
            next(CronSim(cron, datetime.now(zone)))
        except (CronSimError, ValueError, OverflowError, LookupError, StopIteration) as exc:
            raise InvalidField("cron", f"invalid cron expression {cron!r}: {exc}") from None
    return Spec(cron, interval_seconds, timezone)


def next_after(spec: Spec, after: datetime) -> datetime:
    """The first slot strictly after `after` (an aware datetime), in UTC."""
    return next(_forward(spec, after))


def _forward(spec: Spec, after: datetime) -> Iterator[datetime]:
    """Slots strictly after `after`, in order, in UTC."""
    if spec.interval_seconds is not None:
        step = timedelta(seconds=spec.interval_seconds)
        k = (after - _EPOCH) // step + 1
        slot = _EPOCH + k * step
        while True:
            yield slot
            slot += step
    assert spec.cron is not None
    for local in CronSim(spec.cron, after.astimezone(spec.tz)):
        yield local.astimezone(UTC)


def _latest_at_or_before(spec: Spec, now: datetime) -> datetime:
    """The last slot at or before `now`, in UTC."""
    if spec.interval_seconds is not None:
        step = timedelta(seconds=spec.interval_seconds)
        return _EPOCH + ((now - _EPOCH) // step) * step
    assert spec.cron is not None
    # cronsim's reverse walk starts strictly before its start and works in whole
    # seconds: start a second late and step back past anything after `now`.
    start = (now + timedelta(seconds=1)).astimezone(spec.tz)
    for local in CronSim(spec.cron, start, reverse=True):
        slot = local.astimezone(UTC)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: cronsim iterates without end")


def _count(spec: Spec, first: datetime, before: datetime) -> int:
    """Slots in [first, before): arithmetic for intervals, counted (capped) for cron."""
    if spec.interval_seconds is not None:
        return (before - first) // timedelta(seconds=spec.interval_seconds)
    count = 1  # `first` itself
    for slot in _forward(spec, first):
        if slot >= before or count >= SKIP_COUNT_CAP:
            break
        count += 1
    return count


class Plan(msgspec.Struct, frozen=True):
    """What one tick does for one due schedule."""

    fire_at: datetime | None
    """The slot to fire, or None when even the latest due slot is past the grace."""
    next_fire_at: datetime
    skipped_first: datetime | None = None
    skipped_last: datetime | None = None
    skipped: int = 0


def plan(
    spec: Spec,
    next_fire_at: datetime,
    now: datetime,
    grace_seconds: int,
    tolerance: timedelta = timedelta(0),
) -> Plan:
    """The downtime rule: fire the most recent due slot if within the grace, skip the rest.

    `next_fire_at` is the schedule's first unfired slot (<= now). In steady
    running a tick finds exactly that one slot due and fires it, however small
    the grace, when it is at most `tolerance` late (a tick runs a little after
    its slot); after the pools were down, older slots are skipped (counted in
    the plan) and the schedule continues from the first slot after `now`.
    """
    latest = _latest_at_or_before(spec, now)
    following = next_after(spec, now)
    late = now - latest
    on_time = late <= timedelta(seconds=grace_seconds) or (
        latest == next_fire_at and late <= tolerance
    )
    fire_at = latest if on_time else None
    last_skipped = latest if not on_time else _previous(spec, latest, next_fire_at)
    if last_skipped is None:
        return Plan(fire_at=fire_at, next_fire_at=following)
    skipped = _count(spec, next_fire_at, last_skipped) + 1 if last_skipped > next_fire_at else 1
    return Plan(
        fire_at=fire_at,
        next_fire_at=following,
        skipped_first=next_fire_at,
        skipped_last=last_skipped,
        skipped=skipped,
    )


def _previous(spec: Spec, slot: datetime, earliest: datetime) -> datetime | None:
    """The slot before `slot`, if it is not earlier than `earliest`."""
    if slot <= earliest:
        return None
    before = _latest_at_or_before(spec, slot - timedelta(microseconds=1))
    return before if before >= earliest else None


def logical_key(name: str, fire_at: datetime) -> str:
    """`schedule:<name>:<fire_at in UTC, ISO 8601>`: one per slot, readable in listings."""
    return f"schedule:{name}:{fire_at.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
