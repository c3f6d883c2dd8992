"""Reg SHO on the real files (data/regsho: 4 days x 6 markets), checked against an
independent computation from the files (tests.regsho_support: `csv` and Fractions).

One database is loaded once for the module's read-only tests (24 files, 4 computed
days); the tests that change data (a refused trailer, bad lines, a republished
file) each get a fresh database.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app import db
from app.catalog import DOMAINS, default_registry
from app.cli import build_cli
from app.config import get_settings
from app.engine import partitions, sensors, workers
from app.engine.recording import record_batch
from app.files import InvalidInputFile
from app.regsho.datasets import SHORT_VOLUME_DAILY
from app.regsho.pipelines import compute, ingest_file
from tests.api_support import api_client
from tests.conftest import SERVER_ENV, TEMPLATE_ENV
from tests.regsho_support import (
    DAYS,
    FACILITIES,
    HEADER,
    MARKETS,
    NMS,
    history,
    path_of,
    ratio,
    read_file,
    summed,
)
from tests.support import run_held, run_inline

BASE = "/api/v1/regsho"
NAMED = ["AAPL", "BRK/A", "CpK", "SPY", "AITX"]  # AITX: an OTC equity (FORF)
WORKER = "regsho-test-worker"


async def _load_days(url: str) -> list[float]:
    """Every committed file loaded and every day computed; each day's ingest DB seconds."""
    pool = await db.open_async_pool(url, get_settings())
    seconds = []
    try:
        for day in DAYS:
            spent = 0.0
            for market in MARKETS:
                path = path_of(day, market)
                summary = await ingest_file(
                    pool, execution_id=f"load-{day}-{market}", path=path,
                    source_file=f"regsho/{path.name}", day=day, market=market,
                )  # fmt: skip
                spent += summary["db_seconds"]
            seconds.append(spent)
            await compute(pool, execution_id=f"compute-{day}", day=day)
    finally:
        await pool.close()
    return seconds


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[str, list[float]]]:
    """A database of the module's own with the four days loaded and computed."""
    server, template = os.environ[SERVER_ENV], os.environ[TEMPLATE_ENV]
    name = f"spine_t_regsho_{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_conninfo(server, dbname=name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            yield url, asyncio.run(_load_days(url))
        finally:
            get_settings.cache_clear()
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def api_url(loaded: tuple[str, list[float]], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", loaded[0])
    get_settings.cache_clear()
    return loaded[0]


async def _get(path: str) -> Any:
    async with api_client() as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def test_a_days_six_files_load_in_under_a_second_of_database_time(
    loaded: tuple[str, list[float]],
) -> None:
    # Reported, not asserted against the wall clock of a shared machine: the summary's
    # db_seconds of the 6 files of each day (docs/benchmarks.md has the measurement).
    print("regsho db seconds per day:", [round(s, 3) for s in loaded[1]])
    assert all(s > 0 for s in loaded[1])


async def test_each_days_totals_per_market_match_the_files(api_url: str) -> None:
    for day in DAYS:
        body = await _get(f"{BASE}/days/{day}/markets")
        got = {m["market"]: m for m in body["markets"]}
        assert sorted(got) == list(MARKETS)
        facility_total = sum(v[2] for m in FACILITIES for v in read_file(day, m).values())
        for market in MARKETS:
            rows = read_file(day, market).values()
            short, exempt, total = (sum(r[i] for r in rows) for i in range(3))
            m = got[market]
            assert (m["symbols"], m["short_volume"], m["short_exempt_volume"]) == (
                len(rows), short, exempt,
            )  # fmt: skip
            assert m["total_volume"] == total
            assert _dec(m["short_ratio_pct"]) == ratio(short, total)
            assert _dec(m["share_of_total_volume_pct"]) == ratio(total, facility_total)


async def test_the_reconciliation_is_clean_and_cnms_is_the_sum_of_the_facilities(
    api_url: str,
) -> None:
    days = await _get(f"{BASE}/days")
    assert [d["date"] for d in days] == [d.isoformat() for d in DAYS]
    for d, day in zip(days, DAYS, strict=True):
        # Independently: CNMS equals FNQC + FNSQ + FNYX + FNRA for every symbol and volume.
        assert read_file(day, "CNMS") == summed(day, NMS)
        assert (d["reconciliation"], d["mismatched_symbols"], d["stale"]) == ("clean", 0, False)
        all_rows = summed(day, FACILITIES)
        otc = read_file(day, "FORF")
        assert d["symbols"] == len(all_rows) and d["otc_symbols"] == len(otc)
        assert d["total_volume"] == sum(v[2] for v in all_rows.values())
        assert d["otc_total_volume"] == sum(v[2] for v in otc.values())
        markets = await _get(f"{BASE}/days/{day}/markets")
        assert markets["reconciliation"]["status"] == "clean"
        assert markets["reconciliation"]["mismatches"] == []


@pytest.mark.parametrize("symbol", NAMED)
async def test_ratio_and_five_day_ratio_of_named_symbols(api_url: str, symbol: str) -> None:
    expected = history(symbol)
    assert expected, symbol
    got = await _get(f"{BASE}/symbols/{quote(symbol, safe='')}/history")
    assert [r["symbol"] for r in got] == [symbol] * len(expected)
    for row, want in zip(got, expected, strict=True):
        assert row["date"] == want["date"]
        for field in ("short_volume", "short_exempt_volume", "total_volume"):
            assert row[field] == want[field], (symbol, field)
        for field in ("short_ratio_pct", "short_ratio_avg_5d_pct", "ratio_change_pp"):
            assert _dec(row[field]) == want[field], (symbol, row["date"], field)


async def test_one_market_and_case_sensitive_symbols(api_url: str) -> None:
    day = DAYS[0]
    fnsq = await _get(f"{BASE}/symbols/{quote('BRK/A', safe='')}/history?market=FNSQ")
    assert fnsq[0]["markets"] == ["FNSQ"]
    assert fnsq[0]["total_volume"] == read_file(day, "FNSQ")["BRK/A"][2]
    upper = await _get(f"{BASE}/symbols/CPK/history?end_date={day}")
    mixed = await _get(f"{BASE}/symbols/CpK/history?end_date={day}")
    both = summed(day, FACILITIES)
    assert (upper[0]["total_volume"], mixed[0]["total_volume"]) == (both["CPK"][2], both["CpK"][2])
    async with api_client() as client:
        assert (await client.get(f"{BASE}/symbols/cpk/history")).status_code == 404
    # The day's listing, all pages: exactly the facility files' symbols, each once.
    rows, url = [], f"{BASE}/days/{day}/symbols?sort=total_volume&limit=500"
    async with api_client() as client:
        while url:
            response = await client.get(url)
            assert response.status_code == 200
            rows += response.json()
            link = response.headers.get("link")
            url = link.split(">")[0].lstrip("<") if link else ""
    assert sorted(r["symbol"] for r in rows) == sorted(both)
    assert [r["total_volume"] for r in rows] == sorted((v[2] for v in both.values()), reverse=True)


def test_cli_reads_what_the_api_does(api_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        build_cli(DOMAINS), ["query", "regsho", "symbol", "BRK/A", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output, parse_float=Decimal)
    assert [_dec(r["short_ratio_avg_5d_pct"]) for r in rows] == [
        h["short_ratio_avg_5d_pct"] for h in history("BRK/A")
    ]
    markets = runner.invoke(
        build_cli(DOMAINS), ["query", "regsho", "markets", "--date", "2020-01-02"]
    )
    assert markets.exit_code == 0 and "reconciliation 2020-01-02: clean" in markets.output


# --- tests that change data: a database each -------------------------------------------


def _write(tmp: Path, name: str, lines: list[str], trailer: int | None = None) -> Path:
    path = tmp / "regsho" / name
    path.parent.mkdir(exist_ok=True)
    count = len(lines) if trailer is None else trailer
    path.write_bytes("".join(f"{x}\r\n" for x in (HEADER, *lines, str(count))).encode())
    return path


def _count(url: str, table: str) -> int:
    with db.connect(url) as conn:
        query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        n = row["n"]
        assert isinstance(n, int)
        return n


async def test_a_trailer_off_by_one_refuses_the_file_whole(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = path_of(DAYS[0], "FNQC").read_text(encoding="utf-8").splitlines()[1:-1]
    _write(tmp_path, "FNQCshvol20200102.txt", lines, trailer=len(lines) + 1)
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    done = await run_inline(database_url, "regsho_ingest", {"file": "regsho/FNQCshvol20200102.txt"})
    assert done.status == "failed" and done.attempt == 1  # permanent: no retry
    assert "trailer counts 2679 records but 2678" in str(done.error)
    for table in ("regsho_loads", "regsho_daily_volume", "regsho_files", "regsho_rejects"):
        assert _count(database_url, table) == 0, table


async def test_one_of_each_bad_line_is_rejected_with_its_reason(
    database_url: str, tmp_path: Path
) -> None:
    lines = [
        "20200102|GOOD|10|1|20|Q",
        "20200102|MIX|10|0",  # wrong_column_count
        "20200102||1|0|2|Q",  # empty_symbol
        "20200102|NUM|1x|0|2|Q",  # bad_volume
        "20200102|NEG|-1|0|2|Q",  # negative_volume
        "20200102|OVER|30|0|20|Q",  # short_over_total
        "20200102|EXEMPT|5|6|20|Q",  # exempt_over_short
        "20200103|DATE|1|0|2|Q",  # wrong_date
        "20200102|GOOD|11|1|20|Q",  # duplicate_symbol
        "20200102|good|11|1|20|Q",  # another symbol: case-sensitive
        "20200102|BRK/A|1.5|0|2|N",  # a fractional volume is a number
    ]
    path = _write(tmp_path, "FNSQshvol20200102.txt", lines)
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        s = await ingest_file(
            pool, execution_id="bad", path=path, source_file="regsho/" + path.name,
            day=DAYS[0], market="FNSQ",
        )  # fmt: skip
    finally:
        await pool.close()
    reasons = (
        "bad_volume", "duplicate_symbol", "empty_symbol", "exempt_over_short",
        "negative_volume", "short_over_total", "wrong_column_count", "wrong_date",
    )  # fmt: skip
    assert s["rejects_by_reason"] == dict.fromkeys(reasons, 1)
    assert (s["rows_read"], s["inserted"], s["rejected"]) == (11, 3, 8)
    assert s["rows_read"] == s["inserted"] + s["changed"] + s["unchanged"] + s["rejected"]
    assert _count(database_url, "regsho_rejects") == 8
    with db.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT symbol, short_volume FROM regsho_daily_volume ORDER BY symbol"
        ).fetchall()
    assert [(r["symbol"], r["short_volume"]) for r in rows] == [
        ("BRK/A", Decimal("1.5")), ("GOOD", 10), ("good", 11),
    ]  # fmt: skip


def _states(url: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with await db.aconnect(url) as conn:
            found = await partitions.states(
                conn, SHORT_VOLUME_DAILY, SHORT_VOLUME_DAILY.partitions(DAYS[0], DAYS[0]),
                now=datetime(2026, 1, 1, tzinfo=UTC),
            )  # fmt: skip
            return {r.key: r.state for r in found}

    return asyncio.run(go())


def test_a_republished_fnsq_file_makes_the_day_stale_then_recomputed(
    database_url: str, tmp_path: Path
) -> None:
    day = DAYS[0]
    registry = default_registry()

    async def setup() -> None:
        async with await db.aconnect(database_url) as conn:
            await sensors.sync(conn, registry, get_settings(), DOMAINS.datasets())
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            for market in MARKETS:
                p = path_of(day, market)
                await ingest_file(
                    pool, execution_id=f"first-{market}", path=p,
                    source_file=f"regsho/{p.name}", day=day, market=market,
                )  # fmt: skip
            await compute(pool, execution_id="first-compute", day=day)
        finally:
            await pool.close()

    async def drain() -> list[str]:
        ran: list[str] = []
        async with await db.aconnect(database_url) as conn:
            await workers.heartbeat(conn, WORKER, "test", os.getpid())
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            while True:
                _, claimed, _ = await record_batch(pool, WORKER, [], claim=1)
                if not claimed:
                    return ran
                ran.append(claimed[0].pipeline)
                await run_held(pool, claimed[0], WORKER, registry=registry)
        finally:
            await pool.close()

    asyncio.run(setup())
    assert set(asyncio.run(drain())) == {"dataset_propagate"}  # the first loads' passes
    assert _states(database_url) == {day.isoformat(): "loaded"}

    # FNSQ republished: AAPL's volumes changed, one symbol gone.
    lines = path_of(day, "FNSQ").read_text(encoding="utf-8").splitlines()[1:-1]
    gone = lines[0].split("|")[1]
    changed = [
        "|".join([*f[:2], str(int(f[2]) + 1000), f[3], str(int(f[4]) + 5000), f[5]])
        if f[1] == "AAPL" else "|".join(f)
        for f in (line.split("|") for line in lines[1:])
    ]  # fmt: skip
    path = _write(tmp_path, "FNSQshvol20200102.txt", changed)

    async def republish() -> dict[str, Any]:
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            return await ingest_file(
                pool, execution_id="again", path=path, source_file="regsho/" + path.name,
                day=day, market="FNSQ",
            )  # fmt: skip
        finally:
            await pool.close()

    s = asyncio.run(republish())
    assert (s["changed"], s["removed"]) == (1, 1)
    assert _states(database_url) == {day.isoformat(): "stale"}

    assert asyncio.run(drain()) == ["dataset_propagate", "regsho_compute"]
    assert _states(database_url) == {day.isoformat(): "loaded"}
    expected = summed(day, FACILITIES)
    with db.connect(database_url) as conn:
        aapl = conn.execute(
            "SELECT short_volume, total_volume FROM regsho_short_volume_daily "
            "WHERE trade_date = %s AND symbol = 'AAPL'",
            (day,),
        ).fetchone()
        missing = conn.execute(
            "SELECT reconciliation, mismatched_symbols FROM regsho_days WHERE trade_date = %s",
            (day,),
        ).fetchone()
    assert aapl == {"short_volume": expected["AAPL"][0] + 1000,
                    "total_volume": expected["AAPL"][2] + 5000}  # fmt: skip
    # CNMS no longer equals the facilities: AAPL and the symbol FNSQ dropped differ.
    assert missing == {"reconciliation": "mismatched", "mismatched_symbols": 2}, gone


async def test_a_file_cut_short_without_its_trailer_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "FORFshvol20200102.txt"
    path.write_bytes(path_of(DAYS[0], "FORF").read_bytes()[:5000])  # cut mid-file
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        with pytest.raises(InvalidInputFile, match="truncated"):
            await ingest_file(
                pool, execution_id="cut", path=path, source_file=path.name, day=DAYS[0],
                market="FORF",
            )  # fmt: skip
    finally:
        await pool.close()
    assert _count(database_url, "regsho_daily_volume") == _count(database_url, "regsho_loads") == 0
