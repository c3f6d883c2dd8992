"""OTC ingest against a real PostgreSQL: counts, duplicates, corrections, trade dates, metrics.

Metrics are checked against an independent computation in Python (Fraction
and Decimal over the file), to the last digit.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app import db
from app.config import get_settings
from app.otc import metrics as otc_metrics
from app.otc import reads
from app.otc.generator import SAMPLE_BAD_LINES, generate
from app.otc.pipelines import ingest_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "otc_sample.csv"
HEADER = "trade_id,symbol,executed_at,price,size,side,venue"
NY = ZoneInfo("America/New_York")
Conn = psycopg.Connection[dict[str, Any]]


class Loader:
    """Runs ingest_file on one event loop and pool for the whole test."""

    def __init__(self, runner: asyncio.Runner, pool: db.AsyncPool, tmp: Path) -> None:
        self.runner = runner
        self.pool = pool
        self.tmp = tmp
        self._ids = itertools.count(1)

    def write(self, name: str, *lines: str, header: str = HEADER) -> Path:
        path = self.tmp / name
        path.write_text("".join(f"{line}\n" for line in (header, *lines)), encoding="utf-8")
        return path

    def ingest(self, path: Path, execution_id: str | None = None) -> dict[str, Any]:
        return self.runner.run(
            ingest_file(
                self.pool,
                execution_id=execution_id or f"exec-{next(self._ids)}",
                path=path,
                source_file=path.name,
                market_tz="America/New_York",
            )
        )

    def recompute_all(self) -> int:
        async def run() -> int:
            async with self.pool.connection() as conn:
                return await otc_metrics.recompute(conn)

        return self.runner.run(run())


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    with asyncio.Runner() as runner:
        pool = runner.run(db.open_async_pool(database_url, get_settings()))
        try:
            yield Loader(runner, pool, tmp_path)
        finally:
            runner.run(pool.close())


def trades(conn: Conn) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT trade_id, symbol, executed_at, trade_date, price, size, side, venue, load_id,"
        " line_no FROM otc_trades"
    ).fetchall()
    return {row["trade_id"]: row for row in rows}


def metrics(conn: Conn) -> dict[tuple[str, date], dict[str, Any]]:
    rows = conn.execute("SELECT * FROM otc_metrics_daily").fetchall()
    return {(row["symbol"], row["trade_date"]): row for row in rows}


def assert_accounted(summary: dict[str, Any]) -> None:
    parts = ("inserted", "duplicates", "corrections", "rejected")
    assert summary["rows_read"] == sum(summary[p] for p in parts), summary
    assert sum(summary["rejects_by_reason"].values()) == summary["rejected"]


# --- an independent computation of the metrics ---------------------------------


def expected_metrics(path: Path) -> dict[tuple[str, date], dict[str, Any]]:
    """Metrics of a file per the contract, computed in Python: the last line per trade id wins."""
    final: dict[str, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["trade_id"] and not row["trade_id"].startswith("X-BAD"):
                final[row["trade_id"]] = row
    groups: dict[tuple[str, date], list[tuple[Decimal, int]]] = defaultdict(list)
    for row in final.values():
        when = datetime.fromisoformat(row["executed_at"].replace("Z", "+00:00"))
        groups[row["symbol"], when.astimezone(NY).date()].append(
            (Decimal(row["price"]), int(row["size"]))
        )
    result = {}
    for key, items in groups.items():
        volume = sum(size for _, size in items)
        notional = sum(price * size for price, size in items)
        # Half up to 10 places, exactly: floor(q * 10^10 + 1/2).
        scaled = math.floor(Fraction(notional) * 10**10 / volume + Fraction(1, 2))
        result[key] = {
            "trade_count": len(items),
            "total_volume": volume,
            "total_notional": notional,
            "vwap": Decimal(scaled).scaleb(-10),
            "high_price": max(price for price, _ in items),
            "low_price": min(price for price, _ in items),
        }
    return result


def assert_metrics_match(conn: Conn, path: Path) -> None:
    stored = metrics(conn)
    expected = expected_metrics(path)
    assert stored.keys() == expected.keys()
    for key, want in expected.items():
        got = stored[key]
        for name, value in want.items():
            assert got[name] == value, (key, name, got[name], value)
        # Same digits too, not only the same value (vwap has exactly 10 decimals).
        assert str(got["vwap"]) == str(want["vwap"]), key


# --- the sample ------------------------------------------------------------------


def test_sample_loads_with_rejects_and_exact_metrics(loader: Loader, conn: Conn) -> None:
    summary = loader.ingest(SAMPLE)
    assert_accounted(summary)
    assert summary["rows_read"] == 4_000 + 4 + len(SAMPLE_BAD_LINES)
    # 4,000 generated trades plus the repeated and the self-corrected id.
    assert summary["inserted"] == 4_002
    assert summary["duplicates"] == 1  # the identical repeated line
    assert summary["corrections"] == 1  # the earlier line of the id the file corrects
    assert summary["rejected"] == len(SAMPLE_BAD_LINES)
    assert summary["rejects_by_reason"] == {
        "bad_executed_at": 1,
        "bad_price": 1,
        "bad_side": 1,
        "bad_symbol": 1,
        "bad_venue": 1,
        "executed_at_without_offset": 1,
        "missing_price": 1,
        "missing_trade_id": 1,
        "non_positive_price": 1,
        "non_positive_size": 1,
        "price_too_precise": 1,
        "wrong_column_count": 1,
    }
    assert summary["metrics_rows_changed"] == len(metrics(conn)) == 8 * 5
    assert_metrics_match(conn, SAMPLE)
    # The last line for the corrected id won.
    assert trades(conn)["T20260106-C0000001"]["price"] == Decimal("12.55")
    # Every line is in raw, numbered as in the file (the header is line 1).
    raw = conn.execute(
        "SELECT count(*) AS n, min(line_no) AS first, max(line_no) AS last FROM otc_trades_raw"
    ).fetchone()
    assert raw == {"n": summary["rows_read"], "first": 2, "last": summary["rows_read"] + 1}
    lines = SAMPLE.read_text().splitlines()
    rejects = conn.execute("SELECT line_no, reason, line FROM otc_trades_rejects").fetchall()
    assert len(rejects) == len(SAMPLE_BAD_LINES)
    for reject in rejects:
        assert lines[reject["line_no"] - 1] == reject["line"]
    view = conn.execute(
        "SELECT execution_id, source_file, fields FROM otc_trades_raw_lines WHERE line_no = 2"
    ).fetchone()
    assert view == {
        "execution_id": "exec-1",
        "source_file": "otc_sample.csv",
        "fields": lines[1].split(","),
    }


def test_ingesting_the_sample_twice_changes_nothing(loader: Loader, conn: Conn) -> None:
    first = loader.ingest(SAMPLE)
    before_trades, before_metrics = trades(conn), metrics(conn)
    second = loader.ingest(SAMPLE)
    assert_accounted(second)
    assert second["inserted"] == 0
    assert second["duplicates"] == first["inserted"] + first["duplicates"]
    assert second["corrections"] == first["corrections"]  # the file still corrects itself
    assert second["rejected"] == first["rejected"]
    assert second["metrics_rows_changed"] == 0
    assert trades(conn) == before_trades  # not even provenance moved
    assert metrics(conn) == before_metrics  # computed_at included
    assert loader.recompute_all() == 0


def test_a_retried_execution_does_not_load_twice(loader: Loader, conn: Conn) -> None:
    first = loader.ingest(SAMPLE, execution_id="same-execution")
    again = loader.ingest(SAMPLE, execution_id="same-execution")
    assert again == first
    assert conn.execute("SELECT count(*) AS n FROM otc_loads").fetchone() == {"n": 1}
    count = conn.execute("SELECT count(*) AS n FROM otc_trades_raw").fetchone()
    assert count == {"n": first["rows_read"]}


def test_a_failed_load_leaves_nothing(loader: Loader, conn: Conn) -> None:
    async def fail(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    path = loader.write("a.csv", "T1,ACME,2026-01-05T15:00:00Z,10,100,B,OTCN")
    with pytest.raises(RuntimeError, match="stop here"):
        loader.runner.run(
            ingest_file(
                loader.pool,
                execution_id="doomed",
                path=path,
                source_file="a.csv",
                market_tz="America/New_York",
                progress=fail,
            )
        )
    for table in ("otc_loads", "otc_trades_raw", "otc_trades", "otc_metrics_daily"):
        assert conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone() == {"n": 0}
    assert loader.ingest(path, execution_id="doomed")["inserted"] == 1


# --- trade dates -------------------------------------------------------------------


def test_trade_date_is_the_new_york_calendar_date(loader: Loader, conn: Conn) -> None:
    cases = {
        "D1": ("2026-01-07T02:30:00Z", date(2026, 1, 6)),  # the contract's example
        "D2": ("2026-01-07T04:59:59.999999Z", date(2026, 1, 6)),
        "D3": ("2026-01-07T05:00:00Z", date(2026, 1, 7)),  # New York midnight (EST)
        "D4": ("2026-01-06T23:59:59-05:00", date(2026, 1, 6)),
        "D5": ("2026-01-07T00:00:00-05:00", date(2026, 1, 7)),
        "D6": ("2026-01-07T13:30:00+09:00", date(2026, 1, 6)),  # 04:30Z
        "D7": ("2026-01-06T20:30:00-0800", date(2026, 1, 6)),  # 23:30 in New York
        "D8": ("2026-01-06T21:30:00-08:00", date(2026, 1, 7)),  # 00:30 in New York
        "D9": ("2026-07-01T03:59:00Z", date(2026, 6, 30)),  # EDT: UTC-4
        "D10": ("2026-07-01T04:00:00Z", date(2026, 7, 1)),
        "D11": ("2026-01-07 02:30:00+00:00", date(2026, 1, 6)),  # a space instead of T
        "D12": ("2024-02-29T12:00:00Z", date(2024, 2, 29)),  # leap day (the full rules)
    }
    lines = [f"{tid},ACME,{ts},10.5,100,B,OTCN" for tid, (ts, _) in cases.items()]
    path = loader.write("dates.csv", *lines)
    summary = loader.ingest(path)
    assert summary["inserted"] == len(cases), summary
    stored = trades(conn)
    for tid, (_, expected) in cases.items():
        assert stored[tid]["trade_date"] == expected, tid
    assert_metrics_match(conn, path)


def test_metrics_match_python_on_a_generated_file(loader: Loader, conn: Conn) -> None:
    path = loader.tmp / "gen.csv"
    generate(path, 20_000, symbols=15, days=6, seed=99)
    summary = loader.ingest(path)
    assert summary["inserted"] == 20_000
    assert_metrics_match(conn, path)


# --- duplicates and corrections --------------------------------------------------------


def test_corrections_update_exactly_the_affected_metrics(loader: Loader, conn: Conn) -> None:
    first = loader.write(
        "day1.csv",
        "T1,ACME,2026-01-05T15:00:00Z,10.00,100,B,OTCN",
        "T2,ACME,2026-01-05T15:01:00Z,20.00,300,S,OTCN",
        "T3,BETA,2026-01-06T15:00:00Z,5.00,1000,B,OTCX",
        "T4,BETA,2026-01-06T15:30:00Z,5.50,1000,S,OTCX",
        "T5,GAMA,2026-01-06T16:00:00Z,1.25,400,B,ARCA",
        "T7,ZETA,2026-01-05T15:00:00Z,3.00,100,B,OTCN",  # untouched by the fixes
    )
    loader.ingest(first)
    before = metrics(conn)
    second = loader.write(
        "fixes.csv",
        "T1,ACME,2026-01-05T15:00:00Z,10.50,100,B,OTCN",  # price corrected
        "T2,ACME,2026-01-05T15:01:00Z,20.00,300,S,OTCN",  # identical: duplicate
        "T4,BETA,2026-01-07T15:30:00Z,5.50,1000,S,OTCX",  # moved to another date
        "T5,DELT,2026-01-06T16:00:00Z,1.25,400,B,ARCA",  # moved to another symbol
        "T6,ACME,2026-01-08T15:00:00Z,11.00,10,B,OTCN",  # new
    )
    summary = loader.ingest(second)
    assert_accounted(summary)
    assert summary["inserted"] == 1
    assert summary["duplicates"] == 1
    assert summary["corrections"] == 3
    after = metrics(conn)
    # ACME 01-05 and BETA 01-06 recomputed; GAMA 01-06 lost its only trade;
    # BETA 01-07, DELT 01-06, ACME 01-08 appeared.
    assert set(after) == {
        ("ACME", date(2026, 1, 5)),
        ("BETA", date(2026, 1, 6)),
        ("BETA", date(2026, 1, 7)),
        ("DELT", date(2026, 1, 6)),
        ("ACME", date(2026, 1, 8)),
        ("ZETA", date(2026, 1, 5)),
    }
    assert after["ZETA", date(2026, 1, 5)] == before["ZETA", date(2026, 1, 5)]
    assert summary["metrics_rows_changed"] == 6  # 2 updated, 3 inserted, 1 deleted
    acme = after["ACME", date(2026, 1, 5)]
    assert acme["total_notional"] == Decimal("10.50") * 100 + Decimal("20.00") * 300
    assert acme["vwap"] == Decimal("17.6250000000")
    assert after["BETA", date(2026, 1, 6)]["trade_count"] == 1
    assert after["BETA", date(2026, 1, 6)]["high_price"] == Decimal("5.00")
    assert after["BETA", date(2026, 1, 7)]["total_volume"] == 1000
    stored = trades(conn)
    assert stored["T2"]["load_id"] == 1  # a duplicate changes nothing
    assert stored["T1"]["load_id"] == 2
    assert stored["T1"]["line_no"] == 2
    assert stored["T4"]["trade_date"] == date(2026, 1, 7)
    assert loader.recompute_all() == 0  # what a full recompute would give


def test_repeated_ids_in_one_file_last_line_wins(loader: Loader, conn: Conn) -> None:
    loader.ingest(loader.write("base.csv", "OLD,ACME,2026-01-05T15:00:00Z,10,100,B,OTCN"))
    path = loader.write(
        "repeats.csv",
        "NEW,ACME,2026-01-05T15:00:00Z,1,100,B,OTCN",  # new id, corrected twice below
        "NEW,ACME,2026-01-05T15:00:00Z,2,100,B,OTCN",
        "OLD,ACME,2026-01-05T15:00:00Z,10,100,B,OTCN",  # same as stored, but not the last
        "NEW,ACME,2026-01-05T15:00:00Z,3,100,B,OTCN",
        "OLD,ACME,2026-01-05T15:00:00Z,11,100,B,OTCN",  # last OLD: corrects the stored one
        "ONE,ACME,2026-01-05T15:00:00Z,5,100,B,OTCN",
        "ONE,ACME,2026-01-05T15:00:00Z,5,100,B,OTCN",  # identical repeat of a new id
        "BAD,ACME,2026-01-05T15:00:00Z,0,100,B,OTCN",
    )
    summary = loader.ingest(path)
    assert_accounted(summary)
    # NEW: inserted once, its two earlier lines differ from its last (corrections).
    # OLD: the last line corrects the stored trade; the earlier one differs from the last.
    # ONE: inserted once, the other line identical to the last (a duplicate).
    assert (summary["inserted"], summary["duplicates"], summary["corrections"]) == (2, 1, 4)
    assert summary["rejected"] == 1
    stored = trades(conn)
    assert stored["NEW"]["price"] == 3
    assert stored["NEW"]["line_no"] == 5
    assert stored["OLD"]["price"] == 11
    assert stored["ONE"]["price"] == 5
    assert loader.recompute_all() == 0
    again = loader.ingest(path)
    # Now every final line matches its stored trade; earlier lines compare as before.
    assert (again["inserted"], again["duplicates"], again["corrections"]) == (0, 4, 3)
    assert again["metrics_rows_changed"] == 0
    assert trades(conn) == stored


def test_correction_onto_another_date_and_back(loader: Loader, conn: Conn) -> None:
    one = loader.write("one.csv", "T1,ACME,2026-01-06T20:00:00Z,10,100,B,OTCN")
    two = loader.write("two.csv", "T1,ACME,2026-01-07T03:00:00Z,10,100,B,OTCN")
    loader.ingest(one)
    assert set(metrics(conn)) == {("ACME", date(2026, 1, 6))}
    summary = loader.ingest(two)  # 22:00 New York on the 6th: same trade date
    assert summary["corrections"] == 1
    assert set(metrics(conn)) == {("ACME", date(2026, 1, 6))}
    three = loader.write("three.csv", "T1,ACME,2026-01-07T15:00:00Z,10,100,B,OTCN")
    loader.ingest(three)
    assert set(metrics(conn)) == {("ACME", date(2026, 1, 7))}
    loader.ingest(one)
    assert set(metrics(conn)) == {("ACME", date(2026, 1, 6))}
    assert loader.recompute_all() == 0


def test_identical_values_written_differently_are_duplicates(loader: Loader) -> None:
    loader.ingest(loader.write("a.csv", "T1,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN"))
    summary = loader.ingest(
        loader.write("b.csv", "T1, ACME ,2026-01-05T10:00:00.000-05:00,10.500000,0100,buy,OTCN")
    )
    assert (summary["duplicates"], summary["corrections"]) == (1, 0)
    assert summary["metrics_rows_changed"] == 0


def test_concurrent_loads_keep_metrics_consistent(loader: Loader, conn: Conn) -> None:
    base = loader.tmp / "base.csv"
    generate(base, 3_000, symbols=5, days=3, seed=1, ids="C")
    other = loader.tmp / "other.csv"
    generate(other, 3_000, symbols=5, days=3, seed=2, ids="C")  # same ids, other values

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                ingest_file(
                    loader.pool,
                    execution_id=f"c{i}",
                    path=path,
                    source_file=path.name,
                    market_tz="America/New_York",
                )
                for i, path in enumerate((base, other))
            )
        )

    results = loader.runner.run(both())
    assert sorted(r["inserted"] for r in results) == [0, 3_000]
    assert loader.recompute_all() == 0
    # The loads took turns on the trades lock: the one that found every id stored went second,
    # so its values are the ones that stand.
    second = (base, other)[[r["inserted"] for r in results].index(0)]
    assert_metrics_match(conn, second)


def test_range_recompute_restores_metrics(loader: Loader, conn: Conn) -> None:
    loader.ingest(SAMPLE)
    good = metrics(conn)
    conn.execute("UPDATE otc_metrics_daily SET vwap = 0 WHERE trade_date = '2026-01-06'")
    conn.execute(
        "INSERT INTO otc_metrics_daily (symbol, trade_date, trade_count, total_volume,"
        " total_notional, vwap, high_price, low_price)"
        " VALUES ('ZZZ', '2026-01-07', 1, 1, 1, 1, 1, 1)"
    )

    async def recompute(**kwargs: Any) -> int:
        async with loader.pool.connection() as c:
            return await otc_metrics.recompute(c, **kwargs)

    assert loader.runner.run(recompute(start_date=date(2026, 1, 8))) == 0
    acme_only = loader.runner.run(
        recompute(start_date=date(2026, 1, 6), end_date=date(2026, 1, 6), symbol="ACME")
    )
    assert acme_only == 1
    assert loader.runner.run(recompute(start_date=date(2026, 1, 6), end_date=date(2026, 1, 7))) == 8

    def values(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
        return {k: {n: v for n, v in row.items() if n != "computed_at"} for k, row in rows.items()}

    assert values(metrics(conn)) == values(good)


def test_read_queries_page_by_keyset(loader: Loader) -> None:
    loader.ingest(SAMPLE)

    async def pages() -> tuple[list[reads.DailyMetric], list[reads.Trade]]:
        async with loader.pool.connection() as c:
            seen: list[reads.DailyMetric] = []
            after = None
            while page := await reads.daily_metrics(c, limit=7, after=after):
                seen += page
                after = (page[-1].symbol, page[-1].date)
            acme: list[reads.Trade] = []
            key = None
            while page_t := await reads.trades(
                c, "ACME", start_date=date(2026, 1, 6), end_date=date(2026, 1, 7), limit=100,
                after=key,
            ):  # fmt: skip
                acme += page_t
                last = page_t[-1]
                key = (last.trade_date, last.executed_at, last.trade_id)
            return seen, acme

    seen, acme = loader.runner.run(pages())
    assert len(seen) == 40
    assert [(m.symbol, m.date) for m in seen] == sorted((m.symbol, m.date) for m in seen)
    assert isinstance(seen[0].total_volume, int)
    assert {t.trade_date for t in acme} == {date(2026, 1, 6), date(2026, 1, 7)}
    assert [(t.trade_date, t.executed_at, t.trade_id) for t in acme] == sorted(
        (t.trade_date, t.executed_at, t.trade_id) for t in acme
    )
    expected = expected_metrics(SAMPLE)
    count = sum(
        v["trade_count"] for (s, d), v in expected.items() if s == "ACME" and d.day in (6, 7)
    )
    assert len(acme) == count


def test_both_ways_of_leaving_out_flagged_lines_load_the_same(
    loader: Loader, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few flagged lines: a hashed NOT IN; many (past HASHED_EXCLUSION_MAX): anti join + sort."""
    from app.otc import normalize_steps as otc_repo

    def load(exclusion_max: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
        conn.execute("TRUNCATE otc_loads, otc_raw_chunks, otc_trades, otc_metrics_daily CASCADE")
        monkeypatch.setattr(otc_repo, "HASHED_EXCLUSION_MAX", exclusion_max)
        summary = loader.ingest(SAMPLE)
        # Both loads read the sample twice over: the second one exercises resolve_repeats.
        again = loader.ingest(SAMPLE)
        rows = conn.execute(
            "SELECT trade_id, symbol, executed_at, trade_date, price, size, side, venue, line_no"
            " FROM otc_trades ORDER BY trade_id"
        ).fetchall()
        daily = conn.execute(
            "SELECT symbol, trade_date, trade_count, total_volume, total_notional, vwap"
            " FROM otc_metrics_daily ORDER BY symbol, trade_date"
        ).fetchall()
        for key in ("load_id", "file_sha256"):
            summary.pop(key, None)
            again.pop(key, None)
        return {"first": summary, "again": again}, rows, daily

    assert len(SAMPLE_BAD_LINES) < otc_repo.HASHED_EXCLUSION_MAX
    few = load(otc_repo.HASHED_EXCLUSION_MAX)
    many = load(0)
    assert few == many
    assert few[0]["first"]["rejected"] == len(SAMPLE_BAD_LINES)
    assert few[0]["again"]["duplicates"] > 0
