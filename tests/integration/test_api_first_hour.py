"""The API one step off the README's path (issue 13): index, offline docs, exact money, loads.

Through the real app (AsyncTestClient) on a fresh migrated database.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from app.config import get_settings
from tests.api_support import Client, api_client, problem
from tests.support import ROOT, run_inline

Conn = psycopg.Connection[dict[str, object]]


@pytest.fixture
async def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    async with api_client() as c:
        yield c


@pytest.fixture
async def ingested(client: Client, database_url: str) -> Client:
    execution = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert execution.status == "completed", execution.error
    return client


# ------------------------------------------------------------------ 13: index and offline docs


@pytest.mark.parametrize("path", ["/", "/api/v1"])
async def test_the_urls_make_up_prints_are_an_index(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    links = response.json()["links"]
    for key in ("docs", "health", "executions", "events", "metrics", "trades", "loads", "rejects"):
        assert key in links
    assert links["docs"]["href"] == "/schema"
    for key in ("docs", "redoc", "openapi", "health", "pipelines", "loads"):
        followed = await client.get(links[key]["href"])
        assert followed.status_code == 200, (key, followed.text[:200])


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger", "/schema/redoc"])
async def test_docs_pages_load_nothing_from_elsewhere(client: Client, page: str) -> None:
    html = (await client.get(page)).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert urls
    assert [u for u in urls if re.match(r"(https?:)?//", u)] == []
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000


async def test_openapi_bounds_are_integers_money_is_exact_and_filters_are_described(
    client: Client,
) -> None:
    text = (await client.get("/schema/openapi.json")).text
    bounds = re.findall(
        r'"(?:minimum|maximum|exclusiveMinimum|exclusiveMaximum)":\s*([^,}]+)', text
    )
    assert bounds
    assert [b for b in bounds if not re.fullmatch(r"-?\d+", b)] == []
    assert "9223372036854775807" in text
    document = json.loads(text)
    schemas = document["components"]["schemas"]
    for name, field in (("DailyMetricResponse", "total_notional"), ("TradeResponse", "price")):
        money = schemas[name]["properties"][field]
        assert (money["type"], money["format"]) == ("number", "decimal")
        assert "Exact" in money["description"]
        assert money["examples"]
    listing = document["paths"]["/api/v1/executions"]["get"]["parameters"]
    described = {p["name"]: p.get("description", "") for p in listing}
    for name in ("status", "pipeline", "lane", "limit", "cursor"):
        assert described[name], name
    assert "pending" in described["status"]
    example = schemas["ExecutionResponse"]["properties"]["pipeline"]["examples"]
    assert example == ["otc_ingest"]
    for path in ("/api/v1/otc/loads", "/api/v1/otc/loads/{load_id}/rejects"):
        assert path in document["paths"]


# ------------------------------------------------------------------ 12: money exact in JSON


async def test_money_keeps_every_digit(client: Client, conn: Conn) -> None:
    conn.execute(
        """
        INSERT INTO otc_metrics_daily (symbol, trade_date, trade_count, total_volume,
                                       total_notional, vwap, high_price, low_price)
        VALUES ('BIG', '2026-01-06', 3, 1000000, 12826574092641.901999,
                12826574.092641901999, 1.100000, 0.000001)
        """
    )
    response = await client.get("/api/v1/otc/metrics/daily", params={"symbol": "big"})
    assert response.status_code == 200, response.text
    assert '"total_notional":12826574092641.901999' in response.text
    assert '"vwap":12826574.092641901999' in response.text
    assert '"high_price":1.1,' in response.text  # no trailing zeros, not "1.100000"
    assert '"low_price":0.000001' in response.text  # no exponent
    (metric,) = json.loads(response.content, parse_float=Decimal)
    assert metric["total_notional"] == Decimal("12826574092641.901999")


# ------------------------------------------------------------------ 6: loads and rejects


async def test_loads_and_their_rejects_page_by_page(ingested: Client) -> None:
    loads = (await ingested.get("/api/v1/otc/loads")).json()
    assert len(loads) == 1
    load: dict[str, Any] = loads[0]
    assert load["source_file"] == "otc_sample.csv"
    assert load["rejected"] == 12
    assert load["rows_read"] == (
        load["inserted"] + load["duplicates"] + load["corrections"] + load["rejected"]
    )
    url: str | None = f"/api/v1/otc/loads/{load['id']}/rejects?limit=5"
    rejects: list[dict[str, Any]] = []
    pages = 0
    while url:
        page = await ingested.get(url)
        assert page.status_code == 200, page.text
        rejects += page.json()
        pages += 1
        link = page.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None  # type: ignore[union-attr]
    assert pages == 3
    assert len(rejects) == 12
    assert [r["line_no"] for r in rejects] == sorted(r["line_no"] for r in rejects)
    first = rejects[0]
    assert first["reason"] == "bad_price"
    assert first["line"].startswith("X-BAD-01,ACME")
    assert set(first) == {"line_no", "reason", "line"}


async def test_rejects_of_a_missing_load_is_404(client: Client) -> None:
    body = problem(await client.get("/api/v1/otc/loads/424242/rejects"), 404)
    assert "no load 424242" in body["detail"]
    problem(await client.get("/api/v1/otc/loads/0/rejects"), 400)


async def test_a_long_rejected_line_is_cut(client: Client, conn: Conn) -> None:
    load = conn.execute(
        "INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz) "
        "VALUES ('e-long', 'x.csv', 1, 'UTC') RETURNING id"
    ).fetchone()
    assert load is not None
    conn.execute(
        "INSERT INTO otc_trades_rejects (load_id, line_no, reason, line) "
        "VALUES (%s, 2, 'wrong_column_count', %s)",
        (load["id"], "y" * 1000),
    )
    (reject,) = (await client.get(f"/api/v1/otc/loads/{load['id']}/rejects")).json()
    assert reject["line"] == "y" * 300 + "…"
    (listed,) = (await client.get("/api/v1/otc/loads")).json()
    assert listed["finished_at"] is None and listed["rows_read"] is None
