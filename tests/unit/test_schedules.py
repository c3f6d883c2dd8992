"""Schedules without a server: next slots across DST, weekdays, intervals, the downtime rule.

The clock is injected: every function takes `now`/`after` explicitly.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.catalog import default_registry
from app.config import load_settings
from app.engine.schedules import (
    ScheduleInput,
    Spec,
    check_spec,
    logical_key,
    next_after,
    plan,
    validate,
)
from app.errors import InvalidField, InvalidParams, UnknownPipeline

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def slots(spec: Spec, after: datetime, until: datetime) -> list[datetime]:
    """Every slot in (after, until], by repeated next_after: what a tick-by-tick scheduler fires."""
    found = []
    at = next_after(spec, after)
    while at <= until:
        found.append(at)
        at = next_after(spec, at)
    return found


NIGHTLY = Spec(cron="30 2 * * *", interval_seconds=None, timezone="America/New_York")


def test_spring_forward_the_missing_0230_fires_once_at_0300_edt() -> None:
    fired = slots(NIGHTLY, utc(2026, 3, 6, 12), utc(2026, 3, 10, 12))
    assert fired == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # 02:30 does not exist: 03:00 EDT, the first instant after the gap
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        utc(2026, 3, 10, 6, 30),
    ]
    assert [f.astimezone(NY).date().day for f in fired] == [7, 8, 9, 10]  # once a day


def test_fall_back_0230_is_not_repeated_and_fires_once_at_0230_est() -> None:
    fired = slots(NIGHTLY, utc(2026, 10, 30, 12), utc(2026, 11, 3, 12))
    assert fired == [
        utc(2026, 10, 31, 6, 30),  # 02:30 EDT
        utc(2026, 11, 1, 7, 30),  # 02:30 EST (after the repeated 01:00-02:00)
        utc(2026, 11, 2, 7, 30),
        utc(2026, 11, 3, 7, 30),
    ]


def test_fall_back_a_repeated_local_time_fires_once_at_its_first_occurrence() -> None:
    spec = Spec(cron="30 1 * * *", interval_seconds=None, timezone="America/New_York")
    fired = slots(spec, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert fired == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]  # 01:30 EDT, not EST too


def test_fall_back_a_wildcard_hour_fires_at_every_real_instant() -> None:
    spec = Spec(cron="*/30 * * * *", interval_seconds=None, timezone="America/New_York")
    fired = slots(spec, utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 6, 45))
    # 01:00 and 01:30 local happen twice: each real instant once, 30 minutes apart.
    assert fired == [utc(2026, 11, 1, 5, 0) + timedelta(minutes=30 * k) for k in range(4)]


def test_weekday_evenings_fire_monday_to_friday_only() -> None:
    spec = Spec(cron="0 18 * * 1-5", interval_seconds=None, timezone="America/New_York")
    fired = slots(spec, utc(2026, 3, 1), utc(2026, 3, 15))  # two weeks across the DST change
    local = [f.astimezone(NY) for f in fired]
    assert len(fired) == 10
    assert {d.weekday() for d in local} == {0, 1, 2, 3, 4}
    assert {(d.hour, d.minute) for d in local} == {(18, 0)}  # 18:00 local, EST and EDT alike
    assert fired[5] == utc(2026, 3, 9, 22)  # Monday after the change: 18:00 EDT


def test_intervals_are_absolute_and_aligned_to_the_epoch() -> None:
    spec = Spec(cron=None, interval_seconds=300, timezone="America/New_York")
    assert next_after(spec, utc(2026, 3, 8, 6, 58, 1)) == utc(2026, 3, 8, 7, 0)
    assert next_after(spec, utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 7, 5)  # strictly after
    across = slots(spec, utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7, 10))
    assert [b - a for a, b in itertools.pairwise(across)] == [timedelta(minutes=5)] * 3


# ------------------------------------------------------------------ the downtime rule

EVERY_SECOND = Spec(cron=None, interval_seconds=1, timezone="UTC")


def test_on_time_tick_fires_the_due_slot_and_moves_to_the_next() -> None:
    step = plan(EVERY_SECOND, utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 10), 5)
    assert step.fire_at == utc(2026, 1, 1, 0, 0, 10)
    assert step.next_fire_at == utc(2026, 1, 1, 0, 0, 11)
    assert step.skipped == 0 and step.skipped_first is None


def test_after_downtime_the_latest_missed_slot_fires_once_and_older_ones_are_skipped() -> None:
    first_missed = utc(2026, 1, 1, 0, 0, 10)
    now = utc(2026, 1, 1, 0, 0, 20) + timedelta(milliseconds=400)
    step = plan(EVERY_SECOND, first_missed, now, 5)
    assert step.fire_at == utc(2026, 1, 1, 0, 0, 20)
    assert (step.skipped_first, step.skipped_last, step.skipped) == (
        first_missed,
        utc(2026, 1, 1, 0, 0, 19),
        10,
    )
    assert step.next_fire_at == utc(2026, 1, 1, 0, 0, 21)


def test_past_the_grace_nothing_fires_and_every_missed_slot_is_skipped() -> None:
    spec = Spec(cron="0 18 * * 1-5", interval_seconds=None, timezone="America/New_York")
    monday = utc(2026, 3, 2, 23)  # 18:00 EST
    now = utc(2026, 3, 4, 23, 10)  # Wednesday 18:10 EST: the last slot is 10 minutes old
    step = plan(spec, monday, now, grace_seconds=300)
    assert step.fire_at is None
    assert (step.skipped_first, step.skipped_last, step.skipped) == (monday, utc(2026, 3, 4, 23), 3)
    assert step.next_fire_at == utc(2026, 3, 5, 23)
    within = plan(spec, monday, now, grace_seconds=900)
    assert within.fire_at == utc(2026, 3, 4, 23)
    assert (within.skipped_last, within.skipped) == (utc(2026, 3, 3, 23), 2)


def test_logical_key_names_the_schedule_and_the_slot_in_utc() -> None:
    at = datetime(2026, 3, 8, 3, 0, tzinfo=NY)
    assert logical_key("nightly", at) == "schedule:nightly:2026-03-08T07:00:00Z"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("cron", "interval", "tz", "field", "message"),
    [
        ("61 * * * *", None, "UTC", "cron", "Bad minute"),
        ("0 0 30 2 *", None, "UTC", "cron", "Bad day-of-month"),
        ("* * * * * *", None, "UTC", "cron", "expected 5 fields"),
        (
            "0 18 * * *",
            60,
            "UTC",
            "cron",
            "exactly one of `cron` and `interval_seconds` (got both)",
        ),
        (None, None, "UTC", "cron", "(got neither)"),
        (None, 0, "UTC", "interval_seconds", "at least 1"),
        ("0 18 * * *", None, "Mars/Olympus", "timezone", "not an IANA time zone"),
    ],
)
def test_a_bad_spec_names_its_field(
    cron: str | None, interval: int | None, tz: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidField) as caught:
        check_spec(cron, interval, tz)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_validate_checks_the_pipeline_and_its_params_and_fills_the_time_zone() -> None:
    settings = load_settings({"SPINE_MARKET_TZ": "America/Chicago"})
    registry = default_registry()
    ok = validate(
        ScheduleInput(name="nap", pipeline="sleep", params={"seconds": 1}, interval_seconds=60),
        registry,
        settings,
    )
    assert ok.timezone == "America/Chicago"
    with pytest.raises(UnknownPipeline):
        validate(ScheduleInput(name="x", pipeline="nope", cron="0 1 * * *"), registry, settings)
    with pytest.raises(InvalidParams, match=r"params\.seconds"):
        validate(
            ScheduleInput(name="x", pipeline="sleep", params={"seconds": "long"}, cron="0 1 * * *"),
            registry,
            settings,
        )
    with pytest.raises(InvalidField, match="schedule name"):
        validate(ScheduleInput(name="a b", pipeline="noop", cron="0 1 * * *"), registry, settings)


def test_grace_zero_still_fires_its_own_slot_a_tick_late_but_never_catches_up() -> None:
    minutely = Spec(cron=None, interval_seconds=60, timezone="UTC")
    slot = utc(2026, 1, 1, 0, 1)
    tick = timedelta(seconds=2)
    a_tick_late = plan(minutely, slot, slot + timedelta(milliseconds=7), 0, tick)
    assert a_tick_late.fire_at == slot and a_tick_late.skipped == 0
    assert a_tick_late.next_fire_at == utc(2026, 1, 1, 0, 2)
    assert plan(minutely, slot, slot + tick, 0, tick).fire_at == slot
    # Later than the tolerance is downtime: grace 0 fires nothing and records the skip.
    late = plan(minutely, slot, slot + tick + timedelta(milliseconds=1), 0, tick)
    assert late.fire_at is None and late.skipped == 1
    # Downtime: the latest slot is not the schedule's own next one, so it does not fire.
    downtime = plan(minutely, slot, slot + timedelta(minutes=5, milliseconds=7), 0, tick)
    assert downtime.fire_at is None and downtime.skipped == 6
