"""finra_weekly_ingest against a real PostgreSQL: the real files, restatements, bad lines.

Expected values come from the file itself (Python `csv`), never from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.files import InvalidInputFile
from app.finra import reads
from tests.finra_support import (
    WEEK_FILES,
    Loader,
    data_lines,
    open_loader,
    read_file,
    symbol_of,
    totals,
    venues_of,
)

Conn = psycopg.Connection[dict[str, Any]]
WEEK = date(2025, 12, 15)


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    yield from open_loader(database_url, tmp_path)


def _check_invariant(summary: dict[str, Any]) -> None:
    accounted = summary["inserted"] + summary["changed"] + summary["unchanged"]
    assert summary["rows_read"] == accounted + summary["rejected"]
    assert sum(summary["rejects_by_reason"].values()) == summary["rejected"]


def _stored(conn: Conn, week: date) -> dict[tuple[str, str], tuple[int, int]]:
    rows = conn.execute(
        "SELECT symbol, mpid, shares, trades FROM finra_weekly_volume WHERE week_start = %s",
        (week,),
    ).fetchall()
    return {(r["symbol"], r["mpid"]): (r["shares"], r["trades"]) for r in rows}


def _from_file(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (r["issueSymbolIdentifier"], r["MPID"]): (
            int(r["totalWeeklyShareQuantity"]),
            int(r["totalWeeklyTradeCount"]),
        )
        for r in read_file(path)
    }


def test_three_real_weeks_load_whole_and_fast(loader: Loader, conn: Conn) -> None:
    seconds: list[float] = []
    for week, path in WEEK_FILES.items():
        summary = loader.ingest(path)
        rows = len(read_file(path))
        lines = len(data_lines(path))
        assert summary["week"] == summary["last_update_date"] == week.isoformat()
        assert (summary["rows_read"], summary["inserted"]) == (lines, rows)
        # As published: 2025-12-29 has one line without a symbol (PPEX, 1 share, 1 trade).
        empty = {"empty_symbol": lines - rows} if lines > rows else {}
        assert summary["rejects_by_reason"] == empty
        assert summary["changed"] == summary["removed"] == summary["unchanged"] == 0
        seconds.append(summary["db_seconds"])
        assert _stored(conn, week) == _from_file(path)
    # About 5,000 rows a week: 0.1-0.2 s of database time on a quiet machine, COPY through
    # the upsert. The speed is `python -m bench --only ingest`'s to measure; here the load
    # reports its time, and a bound no stall of a shared CI machine reaches.
    assert all(0 < s < 10 for s in seconds), seconds
    stored = conn.execute(
        "SELECT week_start, tier, sum(shares) AS shares, sum(trades) AS trades"
        " FROM finra_weekly_volume GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    expected = [(w, "OTC", *totals(read_file(p))) for w, p in WEEK_FILES.items()]
    assert [(r["week_start"], r["tier"], r["shares"], r["trades"]) for r in stored] == expected


def test_the_same_file_twice_is_all_unchanged(loader: Loader, conn: Conn) -> None:
    path = WEEK_FILES[WEEK]
    first = loader.ingest(path)
    before = conn.execute("SELECT xmin::text AS x FROM finra_weekly_volume LIMIT 1").fetchone()
    again = loader.ingest(path)
    rows = len(read_file(path))
    assert (again["inserted"], again["changed"], again["removed"]) == (0, 0, 0)
    assert again["unchanged"] == again["rows_read"] == rows
    assert again["load_id"] != first["load_id"]
    after = conn.execute("SELECT xmin::text AS x FROM finra_weekly_volume LIMIT 1").fetchone()
    assert before == after  # not even rewritten
    assert conn.execute("SELECT count(*) AS n FROM finra_weekly_volume").fetchone() == {"n": rows}


def _doctored(loader: Loader, name: str, last_update: str) -> tuple[Path, dict[str, Any]]:
    """The week of 2025-12-15 with 3 rows changed, 2 removed, 1 added, a new lastUpdateDate."""
    lines = [
        line.replace("|2025-12-15", f"|{last_update}") for line in data_lines(WEEK_FILES[WEEK])
    ]
    changes: dict[str, Any] = {"changed": [], "removed": []}
    for index in (0, 100, 200):  # shares + 1000 and trades + 1
        f = lines[index].split("|")
        f[5], f[6] = str(int(f[5]) + 1000), str(int(f[6]) + 1)
        lines[index] = "|".join(f)
        changes["changed"].append((f[1], f[4], int(f[5]), int(f[6])))
    for index in (301, 300):
        f = lines.pop(index).split("|")
        changes["removed"].append((f[1], f[4]))
    lines.append(f"OTC|ZZZZQ|Test Issue Corp|Test Venue ATS|TEST|12345|6|{last_update}")
    return loader.write(name, lines), changes


def test_a_restatement_reports_exactly_its_changes(loader: Loader, conn: Conn) -> None:
    loader.ingest(WEEK_FILES[WEEK])
    path, changes = _doctored(loader, "restated.csv", "2025-12-19")
    with pytest.raises(InvalidInputFile, match="not a Monday"):
        loader.ingest(path)  # the week cannot come from a Friday's date
    summary = loader.ingest(path, week=WEEK)
    _check_invariant(summary)
    assert {k: summary[k] for k in ("inserted", "changed", "removed", "rejected")} == {
        "inserted": 1,
        "changed": 3,
        "removed": 2,
        "rejected": 0,
    }
    assert summary["unchanged"] == summary["rows_read"] - 4
    assert (summary["week"], summary["last_update_date"]) == ("2025-12-15", "2025-12-19")
    stored = _stored(conn, WEEK)
    assert stored == _from_file(path)
    for symbol, mpid, shares, trades in changes["changed"]:
        assert stored[(symbol, mpid)] == (shares, trades)
    assert all(key not in stored for key in changes["removed"])
    assert stored[("ZZZZQ", "TEST")] == (12345, 6)
    days = conn.execute(
        "SELECT DISTINCT last_update_date AS d FROM finra_weekly_volume WHERE week_start = %s",
        (WEEK,),
    ).fetchall()
    assert days == [{"d": date(2025, 12, 19)}]
    # The analytics follow: every venue and each touched symbol, as computed from the file.
    doctored = read_file(path)
    venues = loader.read(lambda c: reads.venues(c, WEEK, limit=100))
    assert [
        (
            v.mpid,
            v.shares,
            v.trades,
            v.symbols,
            v.share_of_shares_pct,
            v.share_of_trades_pct,
            v.rank,
        )
        for v in venues
    ] == [
        (
            e.mpid,
            e.shares,
            e.trades,
            e.symbols,
            e.share_of_shares_pct,
            e.share_of_trades_pct,
            e.rank,
        )
        for e in venues_of(doctored)
    ]
    for symbol, *_ in [*changes["changed"], ("ZZZZQ",)]:
        [got] = loader.read(partial(reads.symbols, week=WEEK, symbol=symbol))
        want = symbol_of(doctored, symbol)
        assert (got.shares, got.trades, got.venues, got.top_mpid) == (
            want.shares,
            want.trades,
            want.venues,
            want.top_mpid,
        )
        assert (got.hhi, got.top_mpid_share_pct) == (want.hhi, want.top_mpid_share_pct)


def test_an_older_restatement_is_refused_and_changes_nothing(loader: Loader, conn: Conn) -> None:
    newer, _ = _doctored(loader, "newer.csv", "2025-12-19")
    loader.ingest(newer, week=WEEK)
    before = _stored(conn, WEEK)
    older, _ = _doctored(loader, "older.csv", "2025-12-17")
    with pytest.raises(InvalidInputFile, match=r"loaded from lastUpdateDate 2025-12-19.*older"):
        loader.ingest(older, week=WEEK)
    with pytest.raises(InvalidInputFile, match="older"):
        loader.ingest(WEEK_FILES[WEEK])  # the original publication is older too
    assert _stored(conn, WEEK) == before
    loads = conn.execute("SELECT count(*) AS n FROM finra_loads").fetchone()
    assert loads == {"n": 1}  # the refused loads left nothing behind


def test_ten_kinds_of_bad_line_each_with_its_reason(loader: Loader, conn: Conn) -> None:
    good = data_lines(WEEK_FILES[WEEK])[:20]
    bad = {
        "empty_line": "",
        "wrong_column_count": "OTC|AAAA|Issue|Venue|MPID|10|1",
        "empty_tier": " |AAAB|Issue|Venue|OTCN|10|1|2025-12-15",
        "empty_symbol": "OTC||Issue|Venue|OTCN|10|1|2025-12-15",
        "empty_mpid": "OTC|AAAC|Issue|Venue||10|1|2025-12-15",
        "negative_shares": "OTC|AAAD|Issue|Venue|OTCN|-10|1|2025-12-15",
        "bad_shares": "OTC|AAAE|Issue|Venue|OTCN|1.5|1|2025-12-15",
        "negative_trades": "OTC|AAAF|Issue|Venue|OTCN|10|-1|2025-12-15",
        "bad_trades": "OTC|AAAG|Issue|Venue|OTCN|10|99999999999999999999|2025-12-15",
        "bad_date": "OTC|AAAH|Issue|Venue|OTCN|10|1|2025-02-30",
        "duplicate_key": good[3],
    }
    path = loader.write("bad.csv", [*good, *bad.values()])
    summary = loader.ingest(path)
    _check_invariant(summary)
    assert summary["rejects_by_reason"] == dict.fromkeys(sorted(bad), 1)
    assert (summary["rows_read"], summary["inserted"], summary["rejected"]) == (31, 20, 11)
    rejects = conn.execute(
        "SELECT line_no, reason FROM finra_weekly_rejects ORDER BY line_no"
    ).fetchall()
    # Line 1 is the header, the 20 good lines are 2..21, the bad ones follow in order.
    assert [(r["line_no"], r["reason"]) for r in rejects] == [
        (22 + i, reason) for i, reason in enumerate(bad)
    ]
    raw = conn.execute("SELECT count(*) AS n FROM finra_weekly_raw").fetchone()
    assert raw == {"n": 31}


def test_invalid_bytes_are_a_reason_too(loader: Loader) -> None:
    path = loader.tmp / "bytes.csv"
    header = WEEK_FILES[WEEK].read_text(encoding="utf-8").splitlines()[0]
    good = data_lines(WEEK_FILES[WEEK])[0]
    path.write_bytes(
        f"{header}\r\n{good}\r\n".encode()
        + b"OTC|AB\xff|Issue|Venue|OTCN|1|1|2025-12-15\r\n"
        + b"   \r\n"  # blank
        + b"\\.\n"  # COPY's end-of-data marker on its own: a line like any other
        + b"OTC|ABC|Issue|Venue|OTCN|1|1|2025-12-15\x00"  # NUL, and no final newline
    )
    summary = loader.ingest(path)
    _check_invariant(summary)
    assert (summary["rows_read"], summary["inserted"]) == (5, 1)
    assert summary["rejects_by_reason"] == {
        "invalid_bytes": 2,
        "empty_line": 1,
        "wrong_column_count": 1,
    }


def test_mixed_dates_and_bad_headers_are_refused(loader: Loader, conn: Conn) -> None:
    lines = data_lines(WEEK_FILES[WEEK])[:5]
    lines[2] = lines[2].replace("2025-12-15", "2025-12-22")
    with pytest.raises(InvalidInputFile, match="mixes lastUpdateDate"):
        loader.ingest(loader.write("mixed.csv", lines))
    with pytest.raises(InvalidInputFile, match="wrong header"):
        loader.ingest(loader.write("header.csv", lines, header="a|b|c"))
    with pytest.raises(InvalidInputFile, match="not a Monday"):
        loader.ingest(loader.write("week.csv", lines[:2]), week=date(2025, 12, 16))
    assert conn.execute("SELECT count(*) AS n FROM finra_weekly_volume").fetchone() == {"n": 0}


def test_a_retried_execution_returns_its_committed_summary(loader: Loader, conn: Conn) -> None:
    first = loader.ingest(WEEK_FILES[WEEK], execution_id="same")
    again = loader.ingest(WEEK_FILES[WEEK], execution_id="same")
    assert again == first
    assert conn.execute("SELECT count(*) AS n FROM finra_loads").fetchone() == {"n": 1}
