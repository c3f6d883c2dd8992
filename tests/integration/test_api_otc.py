"""GET /api/v1/otc/metrics/daily and /otc/trades after ingesting the committed sample."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from app import db
from app.config import get_settings
from app.otc import reads
from app.otc.schemas import DailyMetricResponse
from app.web.fields import to_json
from app.web.pagination import encode_cursor
from tests.api_support import Client, api_client, problem
from tests.support import ROOT, run_inline

METRICS = "/api/v1/otc/metrics/daily"
TRADES = "/api/v1/otc/trades"


@pytest.fixture
def data_dir(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()


@pytest.fixture
async def client(data_dir: None) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


@pytest.fixture
async def ingested(database_url: str, data_dir: None) -> AsyncIterator[Client]:
    execution = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert execution.status == "completed", execution.error
    async with api_client() as c:
        yield c


async def follow(client: Client, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every row of a paginated listing, following Link headers; (rows, pages)."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        rows += response.json()
        pages += 1
        link = response.headers.get("link")
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
        next_url = match.group(1) if match else None
    return rows, pages


async def test_acme_metrics_for_the_sample_week_are_there_and_exact(
    ingested: Client, conn: psycopg.Connection[dict[str, object]]
) -> None:
    """The seed's test: after ingesting the sample, ACME 2026-01-06..2026-01-10 is non-empty."""
    query = {"symbol": "ACME", "start_date": "2026-01-06", "end_date": "2026-01-10"}
    response = await ingested.get(METRICS, params=query)
    assert response.status_code == 200, response.text
    metrics = json.loads(response.content, parse_float=Decimal)
    assert metrics
    assert {m["symbol"] for m in metrics} == {"ACME"}
    dates = [m["date"] for m in metrics]
    assert dates == sorted(dates)
    assert all("2026-01-06" <= d <= "2026-01-10" for d in dates)
    rows = conn.execute(
        """
        SELECT trade_date, trade_count, total_volume, total_notional, vwap, high_price, low_price
          FROM otc_metrics_daily
         WHERE symbol = 'ACME' AND trade_date BETWEEN '2026-01-06' AND '2026-01-10'
         ORDER BY trade_date
        """
    ).fetchall()
    assert len(rows) == len(metrics)
    for row, metric in zip(rows, metrics, strict=True):
        assert metric["date"] == str(row["trade_date"])
        assert metric["trade_count"] == row["trade_count"]
        assert metric["total_volume"] == int(str(row["total_volume"]))
        for field in ("total_notional", "vwap", "high_price", "low_price"):
            value = row[field]
            assert isinstance(value, Decimal)
            assert isinstance(metric[field], Decimal)  # a JSON number, not a string
            assert metric[field] == value  # every digit: no double in between
        assert metric["low_price"] <= metric["vwap"] <= metric["high_price"]


async def test_symbols_are_case_insensitive(ingested: Client) -> None:
    upper = (await ingested.get(METRICS, params={"symbol": "ACME"})).json()
    lower = (await ingested.get(METRICS, params={"symbol": "acme"})).json()
    assert upper == lower != []


async def test_all_metrics_are_ordered_by_symbol_then_date_across_pages(ingested: Client) -> None:
    everything = (await ingested.get(METRICS, params={"limit": 500})).json()
    assert len(everything) > 7
    keys = [(m["symbol"], m["date"]) for m in everything]
    assert keys == sorted(keys)
    paged, pages = await follow(ingested, f"{METRICS}?limit=7")
    assert paged == everything
    assert pages == -(-len(everything) // 7)
    only_one_day, _ = await follow(
        ingested, f"{METRICS}?start_date=2026-01-07&end_date=2026-01-07&limit=3"
    )
    assert only_one_day and {m["date"] for m in only_one_day} == {"2026-01-07"}


async def test_trades_of_a_day_add_up_to_its_metrics(ingested: Client) -> None:
    day = {"symbol": "ACME", "start_date": "2026-01-06", "end_date": "2026-01-06"}
    metric = (await ingested.get(METRICS, params=day)).json()[0]
    trades, pages = await follow(ingested, f"{TRADES}?symbol=ACME&start_date=2026-01-06"
                                           "&end_date=2026-01-06&limit=100")  # fmt: skip
    assert pages > 1
    assert len(trades) == metric["trade_count"]
    assert len({t["trade_id"] for t in trades}) == len(trades)
    assert sum(t["size"] for t in trades) == metric["total_volume"]
    assert max(t["price"] for t in trades) == metric["high_price"]
    keys = [(t["trade_date"], t["executed_at"], t["trade_id"]) for t in trades]
    assert keys == sorted(keys)
    first = trades[0]
    assert set(first) == {
        "trade_id", "symbol", "trade_date", "executed_at", "price", "size", "side", "venue",
    }  # fmt: skip
    assert first["symbol"] == "ACME" and first["side"] in {"B", "S"}


async def test_metrics_json_written_by_the_database_is_what_the_typed_rows_encode_to(
    client: Client, conn: psycopg.Connection[dict[str, object]], database_url: str
) -> None:
    """The API sends PostgreSQL's JSON for daily metrics; it must be the typed path's, digit
    for digit: whole numbers, tiny fractions, long VWAPs, zeros."""
    conn.execute(
        """
        INSERT INTO otc_metrics_daily (symbol, trade_date, trade_count, total_volume,
                                       total_notional, vwap, high_price, low_price)
        VALUES ('ZED', '2026-01-05', 1, 100, 1250.000000, 12.500000000000000000, 12.5, 12.5),
               ('ZED', '2026-01-06', 3, 9000000000, 123456789012345.678900,
                13.71742100137174211248285322359396433470507544581618655692729766803840877914951989,
                100.000000, 0.000001),
               ('ZED', '2026-01-07', 2, 2, 0.000000, 0.00000000, 0.000000, 0.000000),
               ('ZED', '2026-01-08', 1, 1, 1E+3, 1000, 999999999999.999999, 10)
        """
    )
    response = await client.get(METRICS, params={"symbol": "ZED", "limit": 3})
    assert response.status_code == 200, response.text
    sent = json.loads(response.content, parse_float=Decimal)
    async with await db.aconnect(database_url) as aconn:
        typed = await reads.daily_metrics(aconn, symbol="ZED", limit=3)
    expected = json.loads(
        to_json([DailyMetricResponse.from_row(r) for r in typed]), parse_float=Decimal
    )
    assert sent == expected and len(sent) == 3
    assert str(sent[1]["vwap"]).endswith("877914951989")  # more digits than a default Decimal
    assert (
        sent[0]["total_notional"] == Decimal(1250) and b'"total_notional":1250,' in response.content
    )
    assert b'"low_price":0.000001' in response.content and b'"vwap":0,' in response.content
    next_page, pages = await follow(client, f"{METRICS}?symbol=ZED&limit=3")
    assert pages == 2 and [m["date"] for m in next_page][3:] == ["2026-01-08"]


async def test_metrics_pages_follow_whatever_the_servers_date_style(
    data_dir: None, conn: psycopg.Connection[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor's date is ISO even when the connections' DateStyle is not."""
    conn.execute(
        """
        INSERT INTO otc_metrics_daily (symbol, trade_date, trade_count, total_volume,
                                       total_notional, vwap, high_price, low_price)
        SELECT 'ZED', d, 1, 10, 125, 12.5, 12.5, 12.5
        FROM generate_series(date '2026-01-05', date '2026-01-07', interval '1 day') AS d
        """
    )
    monkeypatch.setenv("PGDATESTYLE", "SQL, DMY")  # libpq's default for the API's pool
    async with api_client() as client:
        rows, pages = await follow(client, f"{METRICS}?symbol=ZED&limit=1")
    assert pages == 3
    assert [m["date"] for m in rows] == ["2026-01-05", "2026-01-06", "2026-01-07"]


async def test_nothing_ingested_means_empty_lists(client: Client) -> None:
    for url in (METRICS, f"{TRADES}?symbol=ACME"):
        response = await client.get(url)
        assert response.status_code == 200
        assert response.json() == []
        assert "link" not in response.headers


@pytest.mark.parametrize("url", [METRICS, f"{TRADES}?symbol=ACME&"])
async def test_start_after_end_is_400_naming_it(client: Client, url: str) -> None:
    sep = "&" if "?" in url else "?"
    response = await client.get(f"{url}{sep}start_date=2026-01-10&end_date=2026-01-06")
    body = problem(response, 400)
    assert body["errors"][0]["field"] == "start_date"
    assert "2026-01-10 is after end_date 2026-01-06" in body["detail"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{METRICS}?start_date=2026-13-01", "start_date"),
        (f"{METRICS}?end_date=yesterday", "end_date"),
        (f"{METRICS}?symbol=AC%20ME!", "symbol"),
        (f"{METRICS}?symbol=ABCDEFGHIJKLM", "symbol"),
        (f"{METRICS}?limit=0", "limit"),
        (f"{METRICS}?limit=501", "limit"),
        (TRADES, "symbol"),  # trades are listed per symbol
        (f"{TRADES}?symbol=ACME&limit=-1", "limit"),
    ],
)
async def test_bad_query_parameters_are_400_naming_them(
    client: Client, url: str, field: str
) -> None:
    body = problem(await client.get(url), 400)
    assert body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("url", "cursor"),
    [
        (METRICS, encode_cursor("otc_trades", "2026-01-06", "2026-01-06T00:00:00Z", "T1")),
        (METRICS, encode_cursor("otc_metrics", "ACME", "not-a-date")),
        (f"{TRADES}?symbol=ACME", encode_cursor("otc_metrics", "ACME", str(date(2026, 1, 6)))),
        (f"{TRADES}?symbol=ACME", encode_cursor("executions", "2026-01-06T00:00:00Z", "x")),
    ],
)
async def test_a_cursor_from_another_listing_is_400(client: Client, url: str, cursor: str) -> None:
    sep = "&" if "?" in url else "?"
    body = problem(await client.get(f"{url}{sep}cursor={cursor}"), 400)
    assert body["errors"][0]["field"] == "cursor"


async def test_ingest_is_submitted_over_http_and_files_outside_the_data_dir_are_422(
    client: Client,
) -> None:
    ok = await client.post(
        "/api/v1/executions", json={"pipeline": "otc_ingest", "params": {"file": "otc_sample.csv"}}
    )
    assert ok.status_code == 202, ok.text
    for name in ("../pyproject.toml", "/etc/passwd", "missing.csv"):
        response = await client.post(
            "/api/v1/executions", json={"pipeline": "otc_ingest", "params": {"file": name}}
        )
        body = problem(response, 422)
        assert "file" in body["detail"]
