"""FINRA reads on real PostgreSQL: the week-over-week change skips weeks never loaded, and
symbols and MPIDs are one key whatever their case in the file.

Expected values come from the files (Python `csv`, exact Fractions), never from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.finra import reads
from tests.finra_support import (
    WEEK_FILES,
    Loader,
    open_loader,
    read_file,
    rounded,
    symbol_of,
    venues_of,
)

Conn = psycopg.Connection[dict[str, Any]]
DEC15, DEC22, DEC29 = WEEK_FILES


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    yield from open_loader(database_url, tmp_path)


def change(before: int, now: int) -> Decimal:
    return rounded(Fraction(100 * (now - before), before), 4)


def test_the_change_is_against_the_previous_loaded_week(loader: Loader) -> None:
    files = {week: read_file(path) for week, path in WEEK_FILES.items()}
    symbols = {w: {r["issueSymbolIdentifier"] for r in rows} for w, rows in files.items()}
    loader.ingest(WEEK_FILES[DEC15])
    loader.ingest(WEEK_FILES[DEC29])  # 2025-12-22 is not loaded: a gap

    fnma = loader.read(lambda c: reads.symbol_history(c, "FNMA"))
    shares = {w: symbol_of(files[w], "FNMA").shares for w in (DEC15, DEC22, DEC29)}
    assert [(h.week, h.shares) for h in fnma] == [(DEC15, shares[DEC15]), (DEC29, shares[DEC29])]
    assert fnma[0].shares_change_pct is None
    assert fnma[1].shares_change_pct == change(shares[DEC15], shares[DEC29])

    otcn = loader.read(lambda c: reads.venue_history(c, "OTCN"))
    venue = {w: next(v for v in venues_of(files[w]) if v.mpid == "OTCN") for w in files}
    assert [v.week for v in otcn] == [DEC15, DEC29]
    assert otcn[1].shares_change_pct == change(venue[DEC15].shares, venue[DEC29].shares)

    new = min(symbols[DEC29] - symbols[DEC15])  # no row in the previous loaded week: null
    assert [h.shares_change_pct for h in loader.read(lambda c: reads.symbol_history(c, new))] == [
        None
    ]

    # The gap filled: 2025-12-29 now compares with 2025-12-22, never with 2025-12-15,
    # even for a symbol that skipped 2025-12-22.
    loader.ingest(WEEK_FILES[DEC22])
    fnma = loader.read(lambda c: reads.symbol_history(c, "FNMA"))
    assert [h.shares_change_pct for h in fnma] == [
        None,
        change(shares[DEC15], shares[DEC22]),
        change(shares[DEC22], shares[DEC29]),
    ]
    skipped = min((symbols[DEC15] & symbols[DEC29]) - symbols[DEC22])
    history = loader.read(lambda c: reads.symbol_history(c, skipped))
    assert [(h.week, h.shares_change_pct) for h in history] == [(DEC15, None), (DEC29, None)]


def test_symbols_and_mpids_are_stored_upper_case(loader: Loader, conn: Conn) -> None:
    path = loader.write(
        "cases.csv",
        [
            "OTC|aapl|Apple Inc.|Venue A|abcd|10|1|2025-12-15",
            "OTC|AAPL|Apple Inc.|Venue A|ABCD|5|1|2025-12-15",  # the same key: a duplicate
            "OTC| Msft |Microsoft|Venue B| OtCn |7|2|2025-12-15",
        ],
    )
    summary = loader.ingest(path)
    assert (summary["inserted"], summary["rejects_by_reason"]) == (2, {"duplicate_key": 1})
    stored = conn.execute(
        "SELECT symbol, mpid, shares FROM finra_weekly_volume ORDER BY symbol"
    ).fetchall()
    assert [tuple(r.values()) for r in stored] == [("AAPL", "ABCD", 10), ("MSFT", "OTCN", 7)]
    msft = loader.read(lambda c: reads.symbol_history(c, "MSFT"))
    assert [(h.symbol, h.top_mpid, h.shares) for h in msft] == [("MSFT", "OTCN", 7)]
    venue = loader.read(lambda c: reads.venue_history(c, "ABCD"))
    assert [(v.mpid, v.shares, v.rank) for v in venue] == [("ABCD", 10, 1)]
