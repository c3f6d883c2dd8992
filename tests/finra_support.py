"""FINRA test helpers: a loader on one event loop, and an independent computation of the
analytics straight from a file (Python `csv` and exact Fractions, rounded half up like
PostgreSQL's round(numeric))."""

from __future__ import annotations

import asyncio
import csv
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from app import db
from app.config import get_settings
from app.finra.pipelines import ingest_file
from app.finra.venue_kinds import VenueKind

ROOT = Path(__file__).resolve().parent.parent
FINRA_DIR = ROOT / "data" / "finra"
WEEK_FILES = {
    date(2025, 12, 15): FINRA_DIR / "finra_otc_weekly_otc_20251215.csv",
    date(2025, 12, 22): FINRA_DIR / "finra_otc_weekly_otc_20251222.csv",
    date(2025, 12, 29): FINRA_DIR / "finra_otc_weekly_otc_20251229.csv",
}
T = TypeVar("T")
HEADER = (
    "tierDescription|issueSymbolIdentifier|issueName|marketParticipantName|MPID|"
    "totalWeeklyShareQuantity|totalWeeklyTradeCount|lastUpdateDate"
)


class Loader:
    """Runs ingest_file on one event loop and pool for the whole test."""

    def __init__(self, runner: asyncio.Runner, pool: db.AsyncPool, tmp: Path) -> None:
        self.runner = runner
        self.pool = pool
        self.tmp = tmp
        self._ids = itertools.count(1)

    def write(self, name: str, lines: list[str], header: str = HEADER) -> Path:
        path = self.tmp / name
        path.write_text("".join(f"{line}\n" for line in (header, *lines)), encoding="utf-8")
        return path

    def ingest(
        self,
        path: Path,
        week: date | None = None,
        execution_id: str | None = None,
        venue_kind: VenueKind = "non_ats",
    ) -> dict[str, Any]:
        return self.runner.run(
            ingest_file(
                self.pool,
                execution_id=execution_id or f"exec-{next(self._ids)}",
                path=path,
                source_file=path.name,
                week=week,
                venue_kind=venue_kind,
            )
        )

    def read(self, query: Callable[[db.AsyncConn], Awaitable[T]]) -> T:
        """Run one read (say, an app.finra.reads function) on the test's pool."""

        async def run() -> T:
            async with self.pool.connection() as conn:
                return await query(conn)

        return self.runner.run(run())


def open_loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    """The body of each test module's `loader` fixture."""
    with asyncio.Runner() as runner:
        pool = runner.run(db.open_async_pool(database_url, get_settings()))
        try:
            yield Loader(runner, pool, tmp_path)
        finally:
            runner.run(pool.close())


def data_lines(path: Path) -> list[str]:
    """The file's lines after the header, without newlines."""
    return path.read_text(encoding="utf-8").splitlines()[1:]


def rounded(value: Fraction, places: int) -> Decimal:
    """`value` rounded half away from zero (values here are >= 0 or exact), like round()."""
    with localcontext() as ctx:
        ctx.prec = 80
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Venue:
    mpid: str
    shares: int
    trades: int
    symbols: int
    share_of_shares_pct: Decimal
    share_of_trades_pct: Decimal
    rank: int


@dataclass(frozen=True)
class Symbol:
    symbol: str
    shares: int
    trades: int
    venues: int
    top_mpid: str
    top_mpid_share_pct: Decimal | None
    hhi: Decimal | None


def read_file(path: Path) -> list[dict[str, str]]:
    """The file's rows that have a symbol and an MPID.

    FINRA's file for 2025-12-29 has one line with an empty symbol (and issue
    name), which the ingest rejects as `empty_symbol`; the others are clean.
    """
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="|"))
    return [r for r in rows if r["issueSymbolIdentifier"].strip() and r["MPID"].strip()]


def totals(rows: list[dict[str, str]]) -> tuple[int, int]:
    return (
        sum(int(r["totalWeeklyShareQuantity"]) for r in rows),
        sum(int(r["totalWeeklyTradeCount"]) for r in rows),
    )


def venues_of(rows: list[dict[str, str]]) -> list[Venue]:
    shares: dict[str, int] = defaultdict(int)
    trades: dict[str, int] = defaultdict(int)
    symbols: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        shares[r["MPID"]] += int(r["totalWeeklyShareQuantity"])
        trades[r["MPID"]] += int(r["totalWeeklyTradeCount"])
        symbols[r["MPID"]].add(r["issueSymbolIdentifier"])
    total_shares, total_trades = totals(rows)
    order = sorted(shares, key=lambda m: (-shares[m], m))
    return [
        Venue(
            mpid=m,
            shares=shares[m],
            trades=trades[m],
            symbols=len(symbols[m]),
            share_of_shares_pct=rounded(Fraction(100 * shares[m], total_shares), 4),
            share_of_trades_pct=rounded(Fraction(100 * trades[m], total_trades), 4),
            rank=i + 1,
        )
        for i, m in enumerate(order)
    ]


def symbol_of(rows: list[dict[str, str]], symbol: str) -> Symbol:
    mine = [r for r in rows if r["issueSymbolIdentifier"] == symbol]
    by_venue = {r["MPID"]: int(r["totalWeeklyShareQuantity"]) for r in mine}
    total = sum(by_venue.values())
    top = min(by_venue, key=lambda m: (-by_venue[m], m))
    return Symbol(
        symbol=symbol,
        shares=total,
        trades=sum(int(r["totalWeeklyTradeCount"]) for r in mine),
        venues=len(by_venue),
        top_mpid=top,
        top_mpid_share_pct=rounded(Fraction(100 * by_venue[top], total), 4) if total else None,
        hhi=(
            rounded(sum((Fraction(100 * v, total) ** 2 for v in by_venue.values()), Fraction(0)), 2)
            if total
            else None
        ),
    )


ATS_ONLY_SYMBOL = "ZZATS"


def ats_lines(non_ats: Path, every: int = 7) -> list[str]:
    """An ATS week in FINRA's file format, made up beside a real non-ATS file: for every
    `every`-th of its symbols, two ATS venues (ATSA, ATSB; ATSB sometimes with 0 shares),
    and one symbol no non-ATS venue traded. No real ATS file is committed (too large)."""
    rows = read_file(non_ats)
    day = rows[0]["lastUpdateDate"]
    tier = rows[0]["tierDescription"]
    symbols = sorted({r["issueSymbolIdentifier"] for r in rows})[::every]
    names = {r["issueSymbolIdentifier"]: r["issueName"] for r in rows}
    lines = []
    for i, symbol in enumerate(symbols):
        a = (i * 7919) % 100_003 + 1
        b = 0 if i % 5 == 0 else (i * 104_729) % 50_021
        lines.append(f"{tier}|{symbol}|{names[symbol]}|ATS ALPHA LLC|ATSA|{a}|{i % 9 + 1}|{day}")
        lines.append(f"{tier}|{symbol}|{names[symbol]}|ATS BETA LLC|ATSB|{b}|{i % 4}|{day}")
    lines.append(f"{tier}|{ATS_ONLY_SYMBOL}|Only On ATS Inc|ATS ALPHA LLC|ATSA|4242|3|{day}")
    return lines


def ats_share_pct(
    non_ats: list[dict[str, str]], ats: list[dict[str, str]]
) -> dict[str, Decimal | None]:
    """Each symbol's 100 x ATS shares / (ATS + non-ATS shares), in Decimal arithmetic with
    enough digits to be exact before rounding half up to 4 places; None for 0 shares."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, rows in enumerate((non_ats, ats)):
        for r in rows:
            totals[r["issueSymbolIdentifier"]][kind] += int(r["totalWeeklyShareQuantity"])
    out: dict[str, Decimal | None] = {}
    with localcontext() as ctx:
        ctx.prec = 60
        for symbol, (other, on_ats) in totals.items():
            whole = other + on_ats
            out[symbol] = (
                (Decimal(100 * on_ats) / Decimal(whole)).quantize(
                    Decimal("0.0001"), rounding=ROUND_HALF_UP
                )
                if whole
                else None
            )
    return out
