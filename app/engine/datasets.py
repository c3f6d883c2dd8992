"""Datasets: what a domain publishes, partitioned by period (and a second key), generically.

A `Dataset` is a value a domain declares (its `datasets.py` part, `DATASETS`);
the engine never names one. A partition is a period of the dataset's scheme,
`day` (weekdays), `week` (named by its Monday) or `half_month` (`2022-12a`,
`2022-12b`: the SEC's halves, the 1st to the 14th and the 15th to the month's
end, `HALF_MONTH_B_STARTS`), times one of its second keys when it has some. Its key is a
string: `2025-12-15`, `2022-12a`, or `2025-12-15/OTC` with the second key.

The state of a partition (`PARTITION_STATES`) is computed in PostgreSQL from
the records of its materializations (`app.engine.partitions`); this module
holds only the declaration and the calendar arithmetic, with no I/O.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from app.dates import is_week_start, parse_date
from app.errors import InvalidRequest
from app.time_bounds import EARLIEST, FIRST_DAY, LAST_DAY, LATEST, RANGE_NOTE

if TYPE_CHECKING:
    from app.engine.sources import RemoteSource

__all__ = [
    "HALF_MONTH_B_STARTS",
    "MAPPINGS",
    "MAX_RANGE_PARTITIONS",
    "PARTITION_STATES",
    "SCHEMES",
    "Dataset",
    "DatasetCatalog",
    "Freshness",
    "Partition",
    "PartitionMapping",
    "PartitionState",
    "RangeTooLarge",
    "Scheme",
    "Upstream",
    "logical_key",
]

Scheme = Literal["day", "week", "half_month"]
SCHEMES: Final[tuple[Scheme, ...]] = get_args(Scheme)

PartitionMapping = Literal["same_key", "all_keys_of_date"]
"""How a downstream partition maps to its upstream's: the same key, or every
upstream key whose period is the same date (every second key of it)."""
MAPPINGS: Final[tuple[PartitionMapping, ...]] = get_args(PartitionMapping)

PartitionState = Literal[
    "not_due", "missing", "late", "no_data", "pending", "running", "failed", "loaded", "stale"
]
PARTITION_STATES: Final[tuple[PartitionState, ...]] = get_args(PartitionState)
"""The words the API, the CLI, the metrics and the SQL use (sql/datasets.sql writes them out)."""

_HALF = re.compile(r"^(\d{4})-(\d{2})([ab])$")
HALF_MONTH_B_STARTS: Final = 15
"""A half-month's `b` starts on the 15th: the SEC's fails-to-deliver files, the one
publisher of half-months, put settlement dates from the 1st to the 14th in `a` and
the 15th onward in `b` (2022-12b starts on 2022-12-15)."""

MAX_RANGE_PARTITIONS: Final = 100_000
"""The most partitions a range someone asks for (a page's, a backfill's) may hold; all of
regsho_daily's six markets since 2020 are about 11,000. A range up to year 9999 would
build millions in memory and, backfilled, submit as many executions in one transaction.
The service's own reads (every partition up to today) are not bounded by it."""


class RangeTooLarge(InvalidRequest, ValueError):
    """A range of more than MAX_RANGE_PARTITIONS partitions (422; a ValueError where
    callers turn those into their own one-line errors)."""


@dataclass(frozen=True)
class Partition:
    """One partition: its period's first day, the scheme, and its second key (or None)."""

    scheme: Scheme
    start: date
    key2: str | None = None

    @property
    def period(self) -> str:
        """The period's key: the date, or the half-month (`2022-12a`)."""
        if self.scheme == "half_month":
            # not strftime's %Y: it writes year 1 as `1`, not `0001`
            return f"{self.start.year:04}-{self.start.month:02}{self.half}"
        return self.start.isoformat()

    @property
    def key(self) -> str:
        return self.period if self.key2 is None else f"{self.period}/{self.key2}"

    @property
    def half(self) -> str:
        return "a" if self.start.day == 1 else "b"

    @property
    def last_day(self) -> date:
        """The period's last calendar day (a week's Sunday, a half-month's 14th or last)."""
        if self.scheme == "day":
            return self.start
        if self.scheme == "week":
            return self.start + timedelta(days=6)
        if self.start.day == 1:
            return self.start.replace(day=HALF_MONTH_B_STARTS - 1)
        return self.start.replace(day=calendar.monthrange(self.start.year, self.start.month)[1])


def parse_period(scheme: Scheme, text: str) -> date:
    """A period key of `scheme` as its first day, or ValueError saying what is wrong
    (out of range too: `supported`)."""
    day = _parse_period(scheme, text)
    _check_range(scheme, day)
    return day


def _parse_period(scheme: Scheme, text: str) -> date:
    if scheme == "half_month":
        found = _HALF.match(text)
        if not found:
            raise ValueError(f"{text!r} is not a half-month (YYYY-MMa or YYYY-MMb)")
        year, month, half = int(found[1]), int(found[2]), found[3]
        if not 1 <= month <= 12:
            raise ValueError(f"{text!r} is not a half-month (month {month})")
        return date(year, month, 1 if half == "a" else HALF_MONTH_B_STARTS)
    day = parse_date(text)
    if scheme == "week" and not is_week_start(day):
        raise ValueError(f"week {day} is not a Monday (weeks start on Monday)")
    if scheme == "day" and day.weekday() >= 5:
        raise ValueError(f"{day} is not a weekday")
    return day


def periods(scheme: Scheme, first: date, last: date) -> Iterator[date]:
    """The first days of the periods of `scheme` from `first` to `last`, inclusive;
    ValueError when one of them is out of range (`parse_period`)."""
    if first <= last:
        _check_range(scheme, period_start(scheme, first))
        _check_range(scheme, period_start(scheme, last))
    return _periods(scheme, first, last)


def _periods(scheme: Scheme, first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        if scheme == "day":
            if day.weekday() < 5:
                yield day
            day += timedelta(days=1)
        elif scheme == "week":
            yield day
            day += timedelta(days=7)
        else:
            yield day
            day = day.replace(day=HALF_MONTH_B_STARTS) if day.day == 1 else _next_month(day)


def _periods_at_most(scheme: Scheme, first: date, last: date) -> int:
    """An upper bound of the periods from `first` to `last`, without listing them."""
    days = (last - first).days + 1
    shortest = {"day": 1.4, "week": 7.0, "half_month": 14.0}[scheme]  # a weekday: 7/5 days
    return int(days / shortest) + 2


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_start(scheme: Scheme, day: date) -> date:
    """The first day of the period of `scheme` holding `day` (a weekend day for `day`: Friday)."""
    if scheme == "week":
        return day - timedelta(days=day.weekday())
    if scheme == "half_month":
        return day.replace(day=1 if day.day < HALF_MONTH_B_STARTS else HALF_MONTH_B_STARTS)
    return day - timedelta(days=max(0, day.weekday() - 4))


@functools.cache
def supported(scheme: Scheme, delays: tuple[timedelta, ...] = ()) -> tuple[date, date]:
    """The first and last periods of `scheme` whose days, end (the next period's start)
    and end plus each of `delays` (due and late times) are in `app.time_bounds`' range:
    past it Python cannot compute them, so the API, the CLI and the states statement
    would fail on them."""

    def fits(start: date) -> bool:
        if start < FIRST_DAY or start > LAST_DAY:
            return False
        try:
            end = datetime.combine(Partition(scheme, start).last_day, time(0), UTC)
            end += timedelta(days=1)
        except OverflowError:
            return False
        zero = timedelta(0)
        return all(end - EARLIEST + d >= zero and LATEST - end - d >= zero for d in (zero, *delays))

    first = period_start(scheme, FIRST_DAY)
    while not fits(first):
        first = Partition(scheme, first).last_day + timedelta(days=1)
        while scheme == "day" and first.weekday() >= 5:  # a weekend: periods are weekdays
            first += timedelta(days=1)
    last = period_start(scheme, LAST_DAY)
    while not fits(last):
        last = period_start(scheme, last - timedelta(days=1))
    return first, last


def _check_range(
    scheme: Scheme, start: date, delays: tuple[timedelta, ...] = (), whose: str = ""
) -> None:
    """ValueError naming the supported periods when the one starting on `start` is not one."""
    first, last = supported(scheme, delays)
    if not first <= start <= last:
        keys = [Partition(scheme, d).period for d in (start, first, last)]
        raise ValueError(
            f"period {keys[0]} is out of range: {whose or f'the {scheme} scheme'} supports "
            f"periods from {keys[1]} to {keys[2]} (their days and times must be {RANGE_NOTE})"
        )


@dataclass(frozen=True)
class Freshness:
    """When a partition is due and when it is late, counted from the end of its period.

    `due_after`: when the publisher is expected to have it (FINRA: weeks after the
    week), by second key where they differ (`by_key2`). `grace`: how long past
    that it may still be missing before it is `late`.
    """

    due_after: timedelta = timedelta(0)
    grace: timedelta = timedelta(days=1)
    by_key2: Mapping[str, timedelta] = field(default_factory=dict)

    def due_at(self, partition: Partition, tz: tzinfo = UTC) -> datetime:
        end = datetime.combine(partition.last_day + timedelta(days=1), time(0), tz)
        return end + self.by_key2.get(partition.key2 or "", self.due_after)

    def late_at(self, partition: Partition, tz: tzinfo = UTC) -> datetime:
        return self.due_at(partition, tz) + self.grace


@dataclass(frozen=True)
class Upstream:
    """A dataset this one is computed from, and how their partitions map."""

    dataset: str
    mapping: PartitionMapping = "same_key"


@dataclass(frozen=True)
class Dataset:
    """A dataset as its domain declares it.

    `params(partition, path)` gives the `pipeline`'s params that materialize one
    partition from its landed file (`path`, relative to SPINE_DATA_DIR, or None).
    `landing` is the path pattern of its input under SPINE_DATA_DIR (see
    `app.engine.landing`); a dataset without one is observed: its
    materializations are recorded by the loads that touch it, never scanned.
    `key2_names` maps the names files and APIs use for a second key to the key
    itself (FINRA's `otc`, `OTCE` -> `OTC`); `propagate`: re-materialize it
    by itself when an upstream partition changes. `remote`: where its partitions
    are fetched from (`app.engine.sources`); its materializing execution then
    fetches into the landing area first (`app.engine.remote`).
    """

    name: str
    description: str
    scheme: Scheme
    pipeline: str
    params: Callable[[Partition, str | None], dict[str, Any]]
    start: date
    key2: tuple[str, ...] = ()
    key2_names: Mapping[str, str] = field(default_factory=dict)
    landing: str | None = None
    upstreams: tuple[Upstream, ...] = ()
    freshness: Freshness = field(default_factory=Freshness)
    propagate: bool = True
    observed: bool = False
    """Materialized only as a side effect of loads (OTC's trades): a backfill has no
    source for it, and a scan has no pattern."""
    remote: RemoteSource | None = None
    trading_days: bool = False
    """A `day` partition exists only on days the NYSE trades: one on a market holiday
    has no data (its state is `no_data`, never `late`; app.engine.market_calendar)."""

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"dataset {self.name}: unknown scheme {self.scheme!r}")
        self.period(Partition(self.scheme, self.start).period)
        for name, key2 in self.key2_names.items():
            if key2 not in self.key2:
                raise ValueError(f"dataset {self.name}: {name!r} names no second key")
        if list(self.key2) != sorted(set(self.key2)):  # pages compare keys as text
            raise ValueError(
                f"dataset {self.name}: second keys must be distinct and in text order, "
                f"not {self.key2}"
            )

    def key2_of(self, name: str) -> str:
        """The second key a file or API name stands for (its own ids are names too)."""
        if name in self.key2:
            return name
        found = self.key2_names.get(name)
        if found is None:
            raise ValueError(f"dataset {self.name}: unknown second key {name!r}")
        return found

    def key2_name(self, key2: str | None) -> str:
        """The name the dataset's files give a second key (the first of `key2_names`
        naming it, else the key): `{key2}` in a remote source's templates."""
        if key2 is None:
            return ""
        return next((name for name, k in self.key2_names.items() if k == key2), key2)

    @functools.cached_property
    def _delays(self) -> tuple[timedelta, ...]:
        """Its partitions' due and late times, from their period's end."""
        fresh = self.freshness
        dues = {fresh.due_after, *fresh.by_key2.values()}
        return tuple(sorted({t for due in dues for t in (due, due + fresh.grace)}))

    @property
    def period_range(self) -> tuple[date, date]:
        """Its first and last periods whose days and times can be computed (`supported`)."""
        return supported(self.scheme, self._delays)

    def period(self, text: str) -> date:
        """A period key as its first day, or ValueError saying what is wrong: `parse_period`,
        and refused too when its due or late times would be out of range."""
        start = _parse_period(self.scheme, text)
        _check_range(self.scheme, start, self._delays, self.name)
        return start

    def partition(self, key: str) -> Partition:
        """A key (`2025-12-15/OTC`) as a partition, or ValueError saying what is wrong."""
        period, _, key2 = key.partition("/")
        start = self.period(period)
        if bool(key2) != bool(self.key2):
            if self.key2:
                like = f"{period}/{self.key2[0]}"
                raise ValueError(f"dataset {self.name} needs a second key: {key!r} (like {like})")
            raise ValueError(f"dataset {self.name} has no second key: {key!r} (like {period})")
        if key2 and key2 not in self.key2:
            raise ValueError(f"dataset {self.name}: unknown second key {key2!r}")
        return Partition(self.scheme, start, key2 or None)

    def partitions(
        self, first: date, last: date, *, key2: str | None = None, at_most: int | None = None
    ) -> list[Partition]:
        """Every partition whose period starts from `first` to `last` (period starts),
        every second key unless one is given, in key order; ValueError when the period
        holding `last` is out of range (`period`). `at_most`: a range someone asked for
        (a page, a backfill) may hold no more (RangeTooLarge, before any is listed)."""
        keys2: Sequence[str | None] = [self.key2_of(key2)] if key2 else (list(self.key2) or [None])
        start = period_start(self.scheme, max(first, self.start))
        if start <= last:
            _check_range(self.scheme, period_start(self.scheme, last), self._delays, self.name)
            most = _periods_at_most(self.scheme, start, last) * len(keys2)
            if at_most is not None and most > at_most:
                raise RangeTooLarge(
                    f"{start.isoformat()}..{last.isoformat()} holds up to {most:,} partitions "
                    f"of {self.name}; at most {at_most:,} in one range: narrow it"
                )
        return [
            Partition(self.scheme, day, k2)
            for day in periods(self.scheme, start, last)
            for k2 in keys2
        ]

    def partitions_of_period(self, period: str) -> list[Partition]:
        """Every partition (each second key) of one period key."""
        start = parse_period(self.scheme, period)
        keys2: Sequence[str | None] = list(self.key2) or [None]
        return [Partition(self.scheme, start, k2) for k2 in keys2]


def logical_key(dataset: str, key: str) -> str:
    """The logical key of a partition's execution: at most one is active at a time."""
    return f"dataset:{dataset}:{key}"


class DatasetCatalog:
    """The datasets of the app's domains, by name, with who depends on whom."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self._by_name: dict[str, Dataset] = {}
        for d in datasets:
            if d.name in self._by_name:
                raise ValueError(f"dataset {d.name} is declared twice")
            self._by_name[d.name] = d
        for d in datasets:
            for up in d.upstreams:
                if up.dataset not in self._by_name:
                    raise ValueError(f"dataset {d.name}: unknown upstream {up.dataset}")

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Dataset:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise LookupError(f"unknown dataset {name!r}; datasets: {known}") from None

    def downstream(self, name: str) -> list[tuple[Dataset, Upstream]]:
        """The datasets computed from `name`, each with its mapping."""
        return [(d, up) for d in self for up in d.upstreams if up.dataset == name]

    def downstream_keys(self, name: str, key: str) -> list[tuple[Dataset, str]]:
        """The downstream partitions (dataset, key) an upstream partition maps to."""
        period = key.partition("/")[0]
        found: list[tuple[Dataset, str]] = []
        for d, up in self.downstream(name):
            if up.mapping == "same_key":
                found.append((d, key))
            else:
                found.extend((d, p.key) for p in d.partitions_of_period(period))
        return found
