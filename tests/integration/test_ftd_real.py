"""The FTD routes on two real half-months (2022-12b, 2023-01a), checked against the files.

The files are loaded once for the module through the engine (submit, claim, run);
expected numbers come from tests.ftd_support (Python `csv` and `Decimal` over the
files), never from the database. All five half-months: test_ftd_all_periods.py (slow).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from app.cli import main as cli
from tests.api_support import Client, api_client
from tests.ftd_support import (
    FILES,
    consecutive_days,
    module_database,
    persistent,
    read_file,
    top_by_value,
)
from tests.support import run_inline

BASE = "/api/v1/ftd"
PERIODS = ("2022-12b", "2023-01a")


@pytest.fixture(scope="module")
def loaded() -> Iterator[str]:
    with module_database() as url:
        for period in PERIODS:
            params = {"file": f"ftd/{FILES[period].name}"}
            execution = asyncio.run(run_inline(url, "sec_ftd_ingest", params))
            assert execution.status == "completed", execution.error
        yield url


@pytest.fixture(scope="module")
def rows() -> list[Any]:
    return [r for p in PERIODS for r in read_file(FILES[p]).rows]


async def get(client: Client, url: str) -> Any:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


async def follow(client: Client, url: str) -> list[dict[str, Any]]:
    """Every row of a paginated listing, following Link headers."""
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        found += json.loads(response.text, parse_float=Decimal)
        link = response.headers.get("link")
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
        next_url = match.group(1) if match else None
    return found


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def test_each_file_count_and_total_equal_its_trailers_and_what_was_loaded(
    loaded: str,
) -> None:
    async with api_client() as client:
        periods = {p["period"]: p for p in await get(client, f"{BASE}/periods")}
    assert list(periods) == list(PERIODS)
    for period in PERIODS:
        file = read_file(FILES[period])
        count, total = len(file.rows), sum(r.quantity for r in file.rows)
        assert (count, total) == (file.trailer_count, file.trailer_total)
        got = periods[period]
        assert (got["rows"], got["total_quantity"]) == (count, total)
        assert (got["trailer_record_count"], got["trailer_total_quantity"]) == (count, total)
        assert got["trailer_matches"] is True and got["rejected"] == 0
        assert got["securities"] == len({r.cusip for r in file.rows})
        assert got["settlement_dates"] == len({r.settlement_date for r in file.rows})
    # 2022-12b starts on the 15th: the SEC's halves, and the dataset's partitions.
    assert periods["2022-12b"]["first_date"] == "2022-12-15"


@pytest.mark.parametrize("day", [date(2022, 12, 15), date(2022, 12, 30), date(2023, 1, 3)])
async def test_the_top_10_fails_by_value(loaded: str, rows: list[Any], day: date) -> None:
    async with api_client() as client:
        got = await get(client, f"{BASE}/dates/{day}/fails?sort=value&limit=10")
    expected = top_by_value(rows, day, 10)
    assert [
        (g["cusip"], g["symbol"], g["quantity"], dec(g["price"]), dec(g["fail_value"])) for g in got
    ] == [(r.cusip, r.symbol, r.quantity, r.price, r.value) for r in expected]
    assert all(g["settlement_date"] == day.isoformat() for g in got)


async def test_fails_page_through_every_row_with_unknown_prices_last(
    loaded: str, rows: list[Any]
) -> None:
    day = date(2023, 1, 3)
    async with api_client() as client:
        got = await follow(client, f"{BASE}/dates/{day}/fails?limit=500")
        big = await follow(client, f"{BASE}/dates/{day}/fails?min_value=1000000&limit=7")
        by_quantity = await get(client, f"{BASE}/dates/{day}/fails?sort=quantity&limit=5")
    expected = top_by_value(rows, day, 100_000)
    assert [g["cusip"] for g in got] == [r.cusip for r in expected]
    unknown = [g for g in got if g["price"] is None]
    assert unknown and all(g["fail_value"] is None for g in unknown)
    assert got[-len(unknown) :] == unknown  # an unknown value sorts last, never as zero
    assert [g["cusip"] for g in big] == [
        r.cusip for r in expected if r.value is not None and r.value >= 1_000_000
    ]
    mine = sorted(
        (r for r in rows if r.settlement_date == day), key=lambda r: (-r.quantity, r.cusip)
    )
    assert [g["cusip"] for g in by_quantity] == [r.cusip for r in mine[:5]]


async def test_a_dot_price_is_null_never_zero(loaded: str, rows: list[Any]) -> None:
    dot = next(r for r in rows if r.price is None)
    async with api_client() as client:
        got = await follow(client, f"{BASE}/dates/{dot.settlement_date}/fails?limit=500")
    row = next(g for g in got if g["cusip"] == dot.cusip)
    assert row["price"] is None and row["fail_value"] is None
    with psycopg.connect(loaded) as conn:
        stored = conn.execute(
            "SELECT count(*) FILTER (WHERE price IS NULL), count(*) FILTER (WHERE price = 0) "
            "FROM ftd_fails"
        ).fetchone()
    assert stored == (sum(1 for r in rows if r.price is None), 0)


@pytest.mark.parametrize("symbol", ["EURN", "NOPE", "ZVSAW"])
async def test_consecutive_days_on_a_named_date(loaded: str, rows: list[Any], symbol: str) -> None:
    day = date(2023, 1, 5)
    expected = consecutive_days(rows, symbol, day)
    async with api_client() as client:
        history = await follow(client, f"{BASE}/symbols/{symbol}/history")
        one = await get(client, f"{BASE}/symbols/{symbol}/history?start_date={day}&end_date={day}")
    assert [h["consecutive_days"] for h in one] == [expected]
    assert [h["settlement_date"] for h in history] == sorted(
        {r.settlement_date.isoformat() for r in rows if r.symbol == symbol}
    )
    for h in history:
        d = date.fromisoformat(h["settlement_date"])
        assert h["consecutive_days"] == consecutive_days(rows, symbol, d)


async def test_a_run_crosses_the_gap_between_loaded_periods(loaded: str, rows: list[Any]) -> None:
    """EURN failed on every loaded date: its run on 2023-01-05 counts the 11 dates of
    2022-12b and 2023-01-03 to 05 (the holidays and the new year do not break it)."""
    assert consecutive_days(rows, "EURN", date(2023, 1, 5)) == 14
    assert consecutive_days(rows, "NOPE", date(2023, 1, 5)) == 1


async def test_the_persistent_fails_of_a_period(loaded: str, rows: list[Any]) -> None:
    period = "2022-12b"
    mine = read_file(FILES[period]).rows
    expected = persistent(mine, 5)
    async with api_client() as client:
        got = await follow(client, f"{BASE}/periods/{period}/persistent?min_days=5&limit=500")
    assert [
        (g["cusip"], g["days"], g["total_quantity"], g["max_quantity"], dec(g["max_value"]))
        for g in got
    ] == [(p.cusip, p.days, p.total_quantity, p.max_quantity, p.max_value) for p in expected]
    assert {g["period_days"] for g in got} == {11}


def test_the_cli_prints_the_apis_objects(loaded: str) -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli,
        ["query", "ftd", "persistent", "--period", "2022-12b", "--limit", "20", "--format", "json"],
    )
    assert done.exit_code == 0, done.output

    async def from_the_api() -> Any:
        async with api_client() as client:
            return await get(client, f"{BASE}/periods/2022-12b/persistent?min_days=5&limit=20")

    api = asyncio.run(from_the_api())
    assert json.loads(done.stdout, parse_float=Decimal) == api
    table = runner.invoke(cli, ["query", "ftd", "fails", "--date", "2022-12-15", "--limit", "3"])
    assert table.exit_code == 0 and "fail_value" in table.stdout
    missing = runner.invoke(cli, ["query", "ftd", "cusip", "000000000"])
    assert missing.exit_code != 0 and "no SEC fails-to-deliver for CUSIP" in missing.output


async def test_each_load_is_a_materialization_of_its_half_month(loaded: str) -> None:
    async with api_client() as client:
        lineage = await get(client, "/api/v1/datasets/sec_ftd/partitions/2022-12b")
        missing = await get(client, "/api/v1/datasets/sec_ftd/partitions/2022-12a")
    assert lineage["state"] == "loaded"
    newest = lineage["materializations"][0]
    sha = hashlib.sha256(FILES["2022-12b"].read_bytes()).hexdigest()
    assert newest["source_sha256"] == sha
    assert newest["source_path"] == "ftd/cnsfails202212b.TXT"
    assert newest["inserted"] == read_file(FILES["2022-12b"]).trailer_count
    assert missing["state"] in {"missing", "late"}


async def test_unknown_dates_periods_symbols_and_cusips_are_404(loaded: str) -> None:
    async with api_client() as client:
        for url in [
            f"{BASE}/dates/2022-12-24/fails",
            f"{BASE}/periods/2022-12a/persistent",
            f"{BASE}/symbols/eurn/history",  # symbols are as published: case counts
            f"{BASE}/cusips/000000000",
        ]:
            response = await client.get(url)
            assert response.status_code == 404, (url, response.text)
        bad = await client.get(f"{BASE}/dates/2022-13-01/fails")
        assert bad.status_code == 400
        month = await client.get(f"{BASE}/periods/2022-13a/persistent")
        assert month.status_code == 422
        # Dates in the wrong order are the client's mistake, as on every other range.
        backwards = await client.get(
            f"{BASE}/symbols/EURN/history?start_date=2023-01-01&end_date=2022-01-01"
        )
        assert backwards.status_code == 422, backwards.text
        assert "start_date 2023-01-01 is after end_date 2022-01-01" in backwards.json()["detail"]


async def test_the_page_charts_a_symbol_and_lists_a_periods_persistent_fails(
    loaded: str, rows: list[Any]
) -> None:
    async with api_client() as client:
        page = await client.get("/ui/ftd?period=2022-12b&min_days=5&symbol=EURN")
        default = await client.get("/ui/ftd")
        bad = await client.get("/ui/ftd?period=2022-13b")
    assert page.status_code == 200, page.text
    chart = re.search(r'<script type="application/json" id="ftd-data">(.*?)</script>', page.text)
    assert chart is not None
    data = json.loads(chart.group(1))
    eurn = sorted((r for r in rows if r.symbol == "EURN"), key=lambda r: r.settlement_date)
    assert data["symbol"] == "EURN"
    assert data["quantity"] == [r.quantity for r in eurn]
    assert len(data["x"]) == len(data["value"]) == len(eurn)
    listed = re.findall(r'<tr data-cusip="([^"]+)">', page.text)
    assert listed == [p.cusip for p in persistent(read_file(FILES["2022-12b"]).rows, 5)][:50]
    assert default.status_code == 200 and 'id="ftd-chart"' in default.text  # its top symbol
    assert bad.status_code == 400
