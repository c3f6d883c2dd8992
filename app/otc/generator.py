"""Synthetic OTC trade files: deterministic, realistic enough, fast.

The same arguments always give the same bytes (a seeded `random.Random`, no
clock, no hash-ordered sets), so a file can be regenerated instead of stored
and a benchmark can be reproduced. The output is the ingest contract's CSV
(`trade_id,symbol,executed_at,price,size,side,venue`):

- trading days are weekdays from `start_date`; each day's trades are in time
  order, mostly in the regular session (09:30-16:00 in the market time zone),
  some pre-market and after-hours (after-hours trades late enough fall on the
  next UTC date but still belong to their market date);
- each symbol's price follows a random walk in its own tick size (sub-penny
  for penny stocks), sizes are mostly round lots, venues are real OTC MPIDs;
- most timestamps are UTC (`Z`), some carry the market's own UTC offset.

Trade ids are `<prefix><yyyymmdd>-<n>`. The prefix defaults to
`G<seed>.<start yyyymmdd>-`, so files made with another seed or start date
never reuse each other's ids (nor the committed sample's `T...` ids): loading
one never "corrects" another's trades. Pass the same `ids` prefix with two
seeds to get the same trades with other values, i.e. corrections.

`generate()` is the only entry point; the `spine data generate` command wraps
it. About 1M rows in a few seconds: per row it does a handful of integer
operations and one f-string, and writes in large chunks.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO, TypeVar
from zoneinfo import ZoneInfo

from app.time_bounds import DAYS_NOTE, days_out_of_range

__all__ = [
    "HEADER",
    "SAMPLE_BAD_LINES",
    "SAMPLE_DAYS",
    "SAMPLE_START",
    "after_sample",
    "default_ids",
    "generate",
    "trading_days",
    "write_sample",
]

HEADER = "trade_id,symbol,executed_at,price,size,side,venue"

# Real reporting venues seen in FINRA's OTC transparency data, with rough weights.
_VENUES = (("OTCN", 45), ("OTCX", 30), ("ARCA", 15), ("PPEX", 8), ("PROS", 1), ("ALTS", 1))
# Trade sizes: mostly round lots, some odd lots and blocks (weights by repetition).
_SIZES = (
    (100, 30), (200, 12), (300, 6), (500, 10), (1000, 12), (2000, 5), (2500, 2),
    (5000, 4), (10000, 3), (25000, 1), (50, 4), (25, 3), (10, 3), (1, 1), (73, 1),
    (150, 2), (400, 2), (750, 1),
)  # fmt: skip
# Named symbols come first, in this order; more are made up deterministically.
_NAMED_SYMBOLS = (
    "ACME", "BLTX", "CRWD.F", "DYNA", "EMRL", "FRGO", "GLXY-W", "HLIO", "INTK", "JUNO",
    "KRLX", "LUMA.Y", "MNRV", "NOVA", "OPTX", "PRXL",
)  # fmt: skip

T = TypeVar("T")

_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_CHUNK_ROWS = 20_000

# Deliberately bad lines appended to the committed sample so its rejects show.
SAMPLE_BAD_LINES: tuple[str, ...] = (
    "X-BAD-01,ACME,2026-01-05T15:00:00Z,abc,100,B,OTCN",  # bad price
    "X-BAD-02,ACME,2026-01-05T15:00:01Z,-1.25,100,S,OTCN",  # non-positive price
    "X-BAD-03,ACME,2026-01-05T15:00:02Z,1.1234567,100,B,OTCN",  # more than 6 decimals
    "X-BAD-04,ACME,2026-01-05T15:00:03Z,1.25,0,B,OTCN",  # non-positive size
    "X-BAD-05,ACME,2026-01-05 10:00:04,1.25,100,B,OTCN",  # timestamp without offset
    "X-BAD-06,ACME,2026-01-32T15:00:05Z,1.25,100,B,OTCN",  # no such date
    "X-BAD-07,ACME,2026-01-05T15:00:06Z,1.25,100,X,OTCN",  # bad side
    "X-BAD-08,acme!,2026-01-05T15:00:07Z,1.25,100,B,OTCN",  # bad symbol
    "X-BAD-09,ACME,2026-01-05T15:00:08Z,1.25,100,B,otc",  # bad venue
    "X-BAD-10,ACME,2026-01-05T15:00:09Z,,100,B,OTCN",  # missing price
    "X-BAD-11,ACME,2026-01-05T15:00:10Z,1.25,100,B",  # a column short
    ",ACME,2026-01-05T15:00:11Z,1.25,100,B,OTCN",  # missing trade id
)


# The committed sample (`write_sample`): its first trading day and how many it has.
SAMPLE_START = date(2026, 1, 5)
SAMPLE_DAYS = 5


def after_sample() -> date:
    """The first weekday after the sample's last day: generated trades there leave the
    sample's metrics alone (the default start of `spine data generate`)."""
    last = trading_days(SAMPLE_START, SAMPLE_DAYS)[-1]
    return trading_days(last + timedelta(days=1), 1)[0]


def trading_days(start: date, count: int) -> list[date]:
    """The first `count` weekdays on or after `start` (holidays are not modelled), or
    ValueError when one is out of `app.time_bounds`' range: its trades' times would be too."""
    days: list[date] = []
    day = start
    while len(days) < count:
        if days_out_of_range(day):
            raise ValueError(f"{count} trading days from {start} leave the range {DAYS_NOTE}")
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def generate(
    out: Path | TextIO,
    rows: int,
    symbols: int = 10,
    days: int = 5,
    seed: int = 1,
    *,
    start_date: date = SAMPLE_START,
    market_tz: str = "America/New_York",
    extra_lines: Sequence[str] = (),
    ids: str | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write a trades CSV with `rows` trades (plus `extra_lines`); returns the data lines written.

    `out` is a path (written as UTF-8 with LF line ends) or an open text stream.
    `ids` is the trade id prefix (default: from seed and start date); `on_rows`
    hears the running count of rows written, once per chunk (progress).
    """
    if rows < 0 or symbols < 1 or days < 1:
        raise ValueError("rows must be >= 0, symbols and days >= 1")
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as stream:
            return generate(
                stream, rows, symbols, days, seed,
                start_date=start_date, market_tz=market_tz, extra_lines=extra_lines,
                ids=ids, on_rows=on_rows,
            )  # fmt: skip
    out.write(HEADER + "\n")
    written = 0
    prefix = default_ids(seed, start_date) if ids is None else ids
    tape = _Tape(symbols, seed, ZoneInfo(market_tz), prefix)
    for chunk in tape.chunks(rows, trading_days(start_date, days)):
        out.write(chunk)
        written += chunk.count("\n")
        if on_rows is not None:
            on_rows(written)
    if extra_lines:
        out.write("".join(line + "\n" for line in extra_lines))
        written += len(extra_lines)
    return written


def default_ids(seed: int, start_date: date) -> str:
    """The trade id prefix of a generated file: unique per (seed, start date)."""
    return f"G{seed}.{start_date:%Y%m%d}-"


def write_sample(path: Path) -> int:
    """(Re)write the committed data/otc_sample.csv: 4,000 trades, 8 symbols, 5 days."""
    return generate(
        path, 4000, symbols=8, days=SAMPLE_DAYS, seed=20260105,
        start_date=SAMPLE_START, extra_lines=_sample_extras(), ids="T",
    )  # fmt: skip


def _sample_extras() -> list[str]:
    # A repeated line (a duplicate within the file), a later line correcting an
    # earlier one's price, and the bad lines.
    return [
        "T20260105-R0000001,ACME,2026-01-05T16:01:00Z,12.50,100,B,OTCN",
        "T20260105-R0000001,ACME,2026-01-05T16:01:00Z,12.50,100,B,OTCN",
        "T20260106-C0000001,ACME,2026-01-06T16:02:00Z,12.50,200,S,OTCX",
        "T20260106-C0000001,ACME,2026-01-06T16:02:00Z,12.55,200,S,OTCX",
        *SAMPLE_BAD_LINES,
    ]


class _Symbol:
    """One symbol's state while generating: its name, tick size and current price in ticks."""

    __slots__ = ("anchor", "decimals", "name", "scale", "ticks", "volatility")

    def __init__(self, name: str, price: float, rng: random.Random) -> None:
        self.name = name
        # Sub-dollar OTC stocks quote in sub-pennies; the cheapest in millionths.
        self.decimals = 6 if price < 0.01 else 4 if price < 1 else 2
        self.scale = 10**self.decimals
        self.ticks = self.anchor = max(1, round(price * self.scale))
        # Typical move per trade, in ticks: a few basis points of the price.
        self.volatility = max(1, round(self.ticks * rng.uniform(0.0003, 0.0015)))


def _symbol_names(count: int, rng: random.Random) -> list[str]:
    names = list(_NAMED_SYMBOLS[:count])
    taken = set(names)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while len(names) < count:
        name = "".join(letters[int(rng.random() * 26)] for _ in range(3 + int(rng.random() * 3)))
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _weighted_table(pairs: Sequence[tuple[T, int]]) -> list[T]:
    return [value for value, weight in pairs for _ in range(weight)]


class _Tape:
    """The trades of consecutive trading days, as CSV text in chunks."""

    def __init__(self, symbol_count: int, seed: int, tz: ZoneInfo, ids: str) -> None:
        self.ids = ids
        # Synthetic data, not security: a seeded PRNG is the point.
        self.rng = random.Random(seed)  # noqa: S311
        self.tz = tz
        names = _symbol_names(symbol_count, self.rng)
        # Log-uniform starting prices from half a cent to a few hundred dollars; ACME at $12.50.
        low = math.log(0.005)
        self.symbols = [
            _Symbol(
                name, 12.5 if name == "ACME" else math.exp(self.rng.uniform(low, 6.0)), self.rng
            )
            for name in names
        ]
        # Activity: a Zipf-like spread, so a few symbols trade most.
        self.cumulative = list(
            itertools.accumulate(1.0 / rank for rank in range(1, symbol_count + 1))
        )
        self.venues = _weighted_table(_VENUES)
        self.sizes = _weighted_table(_SIZES)

    def chunks(self, rows: int, days: list[date]) -> Iterator[str]:
        per_day, extra = divmod(rows, len(days))
        lines: list[str] = []
        for index, day in enumerate(days):
            for line in self._day(day, per_day + (1 if index < extra else 0)):
                lines.append(line)
                if len(lines) >= _CHUNK_ROWS:
                    yield "".join(lines)
                    lines = []
        if lines:
            yield "".join(lines)

    def _times(self, n: int) -> list[int]:
        """Sorted local times of day in microseconds (whole ms): 90% regular session,
        6% after hours (16:00-20:00), 4% pre-market (04:00-09:30)."""
        rand = self.rng.random
        times = []
        for _ in range(n):
            u = rand()
            if u < 0.90:
                start, span = 9 * _HOUR_US + _HOUR_US // 2, 6 * _HOUR_US + _HOUR_US // 2
            elif u < 0.96:
                start, span = 16 * _HOUR_US, 4 * _HOUR_US
            else:
                start, span = 4 * _HOUR_US, 5 * _HOUR_US + _HOUR_US // 2
            times.append(start + int(rand() * span) // 1000 * 1000)
        times.sort()
        return times

    def _day(self, day: date, n: int) -> Iterator[str]:
        rand = self.rng.random
        offset = datetime(day.year, day.month, day.day, 12, tzinfo=self.tz).utcoffset()
        assert offset is not None
        to_utc_us = -int(offset.total_seconds()) * 1_000_000
        offset_text = _offset_text(-to_utc_us)
        local_day = day.isoformat()
        utc_days = {shift: (day + timedelta(days=shift)).isoformat() for shift in (-1, 0, 1)}
        stamp = self.ids + day.strftime("%Y%m%d")
        times = self._times(n)
        chosen = self.rng.choices(self.symbols, cum_weights=self.cumulative, k=n)
        venues, n_venues = self.venues, len(self.venues)
        sizes, n_sizes = self.sizes, len(self.sizes)
        for seq in range(n):
            symbol = chosen[seq]
            # Random walk in ticks, pulled gently back towards the start so prices stay plausible.
            ticks = symbol.ticks
            ticks += int((rand() - 0.5) * 4.0 * symbol.volatility + (symbol.anchor - ticks) / 512)
            symbol.ticks = ticks if ticks > 0 else 1
            size = sizes[int(rand() * n_sizes)]
            if symbol.decimals == 6:
                size *= 100  # penny stocks trade in large blocks
            side = "B" if rand() < 0.5 else "S"
            venue = venues[int(rand() * n_venues)]
            local_us = times[seq]
            if rand() < 0.8:
                shift, utc_us = divmod(local_us + to_utc_us, _DAY_US)
                executed_at = f"{utc_days[shift]}T{_clock(utc_us)}Z"
            else:
                executed_at = f"{local_day}T{_clock(local_us)}{offset_text}"
            price = _format_price(symbol.ticks, symbol.scale, symbol.decimals)
            trade_id = f"{stamp}-{seq + 1:07d}"
            yield f"{trade_id},{symbol.name},{executed_at},{price},{size},{side},{venue}\n"


def _format_price(ticks: int, scale: int, decimals: int) -> str:
    whole, frac = divmod(ticks, scale)
    return f"{whole}.{frac:0{decimals}d}"


def _clock(us: int) -> str:
    seconds, micros = divmod(us, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{micros // 1000:03d}"


def _offset_text(offset_us: int) -> str:
    sign = "+" if offset_us >= 0 else "-"
    minutes = abs(offset_us) // 60_000_000
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
