"""Period keys at the calendar's edges are refused with one message, never an OverflowError.

A partition's period end, its due and late times and the next period are computed
from its key; for a key near year 1 or 9999 Python could not compute them, and the
API answered 500 and the CLI a traceback (`app.time_bounds` holds the range).
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from app.catalog import DOMAINS
from app.dates import monday
from app.engine.datasets import (
    MAX_RANGE_PARTITIONS,
    Dataset,
    Partition,
    RangeTooLarge,
    Scheme,
    parse_period,
    periods,
)
from app.engine.partitions import partitions_doc
from app.otc.generator import trading_days

DATASETS = {d.name: d for d in DOMAINS.datasets()}
RANGE = "from 0001-01-02 to 9999-12-30 (UTC)"


@pytest.mark.parametrize(
    ("scheme", "first", "last", "before", "after"),
    [
        ("day", "0001-01-02", "9999-12-29", "0001-01-01", "9999-12-30"),
        ("week", "0001-01-08", "9999-12-20", "0001-01-01", "9999-12-27"),
        ("half_month", "0001-01b", "9999-12a", "0001-01a", "9999-12b"),
    ],
)
def test_a_schemes_periods_stop_where_their_times_would_leave_the_range(
    scheme: Scheme, first: str, last: str, before: str, after: str
) -> None:
    parse_period(scheme, first)
    parse_period(scheme, last)
    for outside in (before, after):
        with pytest.raises(ValueError, match="out of range") as refused:
            parse_period(scheme, outside)
        message = str(refused.value)
        assert f"periods from {first} to {last}" in message and RANGE in message


@pytest.mark.parametrize(
    ("name", "key", "last"),
    [
        ("otc_trades", "9999-12-31", "9999-12-28"),  # late a day after the day ends
        ("regsho_daily", "9999-12-31/CNMS", "9999-12-29"),  # due before the day ends
        ("finra_otc_weekly", "9999-12-27/OTC", "9999-11-22"),  # due weeks after the week
        ("sec_ftd", "9999-12b", "9999-12a"),  # its next period would be in year 10000
    ],
)
def test_a_datasets_key_past_its_last_representable_due_time_is_refused(
    name: str, key: str, last: str
) -> None:
    dataset = DATASETS[name]
    with pytest.raises(ValueError, match="out of range") as refused:
        dataset.partition(key)
    assert f"{name} supports periods from" in str(refused.value)
    assert f"to {last} " in str(refused.value)
    with pytest.raises(ValueError, match="out of range"):
        dataset.period(key.partition("/")[0])


@pytest.mark.parametrize("dataset", DATASETS.values(), ids=DATASETS)
@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/New_York", "Etc/GMT+12"])
def test_the_edge_partitions_that_are_accepted_can_be_computed(dataset: Dataset, tz: str) -> None:
    """The first and last accepted periods' times compute in any market time zone."""
    edges = [
        dataset.partition(f"{period}/{key2}" if key2 else period)
        for period in (Partition(dataset.scheme, d).period for d in dataset.period_range)
        for key2 in dataset.key2 or [""]
    ]
    partitions_doc(dataset, edges, ZoneInfo(tz))
    last = dataset.period_range[1]
    assert list(periods(dataset.scheme, last, edges[-1].last_day)) == [last]


def test_ranges_ending_past_the_calendar_are_refused_not_overflowed() -> None:
    with pytest.raises(ValueError, match="out of range"):
        list(periods("day", date(9999, 12, 20), date(9999, 12, 31)))
    with pytest.raises(ValueError, match="out of range"):
        list(periods("half_month", date(9999, 12, 1), date(9999, 12, 15)))
    with pytest.raises(ValueError, match="out of range"):
        DATASETS["finra_otc_weekly"].partitions(date(9999, 12, 1), date(9999, 12, 27))
    assert list(periods("day", date(9999, 12, 24), date(9999, 12, 29))) == [
        date(9999, 12, 24), date(9999, 12, 27), date(9999, 12, 28), date(9999, 12, 29)
    ]  # fmt: skip


def test_a_half_month_of_year_one_has_a_four_digit_key() -> None:
    assert parse_period("half_month", "0001-01b") == date(1, 1, 15)
    assert DATASETS["sec_ftd"].partition("0001-01b").key == "0001-01b"


def test_weeks_and_generated_days_at_the_edges() -> None:
    assert monday("9999-12-20") == date(9999, 12, 20)
    for week in ("0001-01-01", "9999-12-27"):
        with pytest.raises(ValueError, match="weeks are from 0001-01-08 to 9999-12-20"):
            monday(week)
    assert trading_days(date(9999, 12, 27), 3)[-1] == date(9999, 12, 29)
    for start in (date(1, 1, 1), date(9999, 12, 28)):
        with pytest.raises(ValueError, match="from 0001-01-02 to 9999-12-29"):
            trading_days(start, 5)


def test_a_range_of_more_partitions_than_a_range_may_hold_is_refused_unlisted() -> None:
    """A range up to year 9999 would list millions of partitions (and a backfill of it
    submit as many executions): refused with its size, before any is built."""
    regsho = DATASETS["regsho_daily"]
    whole = regsho.partitions(regsho.start, date(2026, 12, 31), at_most=MAX_RANGE_PARTITIONS)
    assert 10_000 < len(whole) < MAX_RANGE_PARTITIONS  # all of it, six markets
    for name, last in (("otc_trades", date(9999, 12, 28)), ("sec_ftd", date(9999, 11, 1))):
        dataset = DATASETS[name]
        with pytest.raises(RangeTooLarge, match=r"at most 100,000 in one range: narrow it"):
            dataset.partitions(dataset.start, last, at_most=MAX_RANGE_PARTITIONS)
    trades = DATASETS["otc_trades"]
    under = trades.partitions(trades.start, date(2300, 1, 1), at_most=MAX_RANGE_PARTITIONS)
    assert len(under) > 70_000
    # The service's own reads (every partition up to today) are not bounded by it.
    assert len(regsho.partitions(regsho.start, date(2100, 1, 1))) > MAX_RANGE_PARTITIONS
