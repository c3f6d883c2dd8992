"""The FINRA routes on the three real weeks, each checked against the files themselves.

The weeks are loaded through the engine (submit, claim, run), then read over
HTTP; expected numbers come from tests.finra_support (Python `csv` and exact
Fractions over the file), never from the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from app.config import get_settings
from app.web.pagination import encode_cursor
from tests.api_support import Client, api_client, problem
from tests.finra_support import WEEK_FILES, read_file, rounded, symbol_of, totals, venues_of
from tests.support import ROOT, run_inline

BASE = "/api/v1/finra"
FIRST = "2025-12-15"
NAMED_SYMBOLS = ["FNMA", "DIDIY", "AABB", "TCEHY", "FMCC"]


@pytest.fixture
async def loaded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    for path in WEEK_FILES.values():
        params = {"file": f"finra/{path.name}"}
        execution = await run_inline(database_url, "finra_weekly_ingest", params)
        assert execution.status == "completed", execution.error
    async with api_client() as client:
        yield client


async def get(client: Client, url: str) -> Any:
    """The JSON body, with every number (and numeric string) as an exact Decimal-able value."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def dec(value: Any) -> Decimal | None:
    """A percentage or HHI from the API as a Decimal, whether sent as a number or a string."""
    return None if value is None else Decimal(str(value))


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


async def test_weeks_match_the_files(loaded: Client) -> None:
    weeks = await get(loaded, f"{BASE}/weeks")
    expected = []
    for week, path in WEEK_FILES.items():
        rows = read_file(path)
        shares, trades = totals(rows)
        expected.append(
            {
                "week": week.isoformat(),
                "tier": "OTC",
                "rows": len(rows),
                "symbols": len({r["issueSymbolIdentifier"] for r in rows}),
                "venues": len({r["MPID"] for r in rows}),
                "shares": shares,
                "trades": trades,
                "last_update_date": week.isoformat(),
                "venue_kinds": ["non_ats"],
            }
        )
    assert weeks == expected
    paged, pages = await follow(loaded, f"{BASE}/weeks?limit=1")
    assert (paged, pages) == (json.loads(json.dumps(expected)), 3)


async def test_top_five_venues_of_the_first_week(loaded: Client) -> None:
    venues = await get(loaded, f"{BASE}/weeks/{FIRST}/venues?limit=5")
    expected = venues_of(read_file(WEEK_FILES[min(WEEK_FILES)]))[:5]
    assert [v["mpid"] for v in venues] == [e.mpid for e in expected]
    for got, want in zip(venues, expected, strict=True):
        assert (got["shares"], got["trades"], got["symbols"], got["rank"]) == (
            want.shares,
            want.trades,
            want.symbols,
            want.rank,
        )
        assert dec(got["share_of_shares_pct"]) == want.share_of_shares_pct
        assert dec(got["share_of_trades_pct"]) == want.share_of_trades_pct
    assert set(venues[0]) == {
        "week", "mpid", "participant_name", "shares", "trades", "symbols",
        "share_of_shares_pct", "share_of_trades_pct", "rank",
    }  # fmt: skip
    every, pages = await follow(loaded, f"{BASE}/weeks/{FIRST}/venues?limit=4")
    assert [v["rank"] for v in every] == list(range(1, len(every) + 1)) and pages >= 2
    total = sum((dec(v["share_of_shares_pct"]) or Decimal(0) for v in every), Decimal(0))
    assert abs(total - 100) < Decimal("0.001")


async def test_hhi_and_top_venue_of_five_named_symbols(loaded: Client) -> None:
    rows = read_file(WEEK_FILES[min(WEEK_FILES)])
    for name in NAMED_SYMBOLS:
        [got] = await get(loaded, f"{BASE}/weeks/{FIRST}/symbols?symbol={name.lower()}")
        want = symbol_of(rows, name)
        assert (got["symbol"], got["top_mpid"], got["venues"]) == (name, want.top_mpid, want.venues)
        assert (got["shares"], got["trades"]) == (want.shares, want.trades)
        assert dec(got["hhi"]) == want.hhi, name
        assert dec(got["top_mpid_share_pct"]) == want.top_mpid_share_pct, name
        assert want.hhi is not None and Decimal(0) < want.hhi <= Decimal(10000)


async def test_symbols_sort_filter_and_page(loaded: Client) -> None:
    rows = read_file(WEEK_FILES[min(WEEK_FILES)])
    by_hhi, pages = await follow(loaded, f"{BASE}/weeks/{FIRST}/symbols?sort=hhi&limit=500")
    symbols = {r["issueSymbolIdentifier"] for r in rows}
    assert len(by_hhi) == len(symbols) and pages == -(-len(symbols) // 500)
    keys = [(-(dec(s["hhi"]) or Decimal(-1)), s["symbol"]) for s in by_hhi]
    assert keys == sorted(keys)
    by_trades, _ = await follow(loaded, f"{BASE}/weeks/{FIRST}/symbols?sort=trades&limit=300")
    assert [(-s["trades"], s["symbol"]) for s in by_trades] == sorted(
        (-s["trades"], s["symbol"]) for s in by_trades
    )
    at_arca = await get(loaded, f"{BASE}/weeks/{FIRST}/symbols?mpid=arca&limit=500")
    traded = {r["issueSymbolIdentifier"] for r in rows if r["MPID"] == "ARCA"}
    assert {s["symbol"] for s in at_arca} <= traded and len(at_arca) == min(500, len(traded))
    big = await get(loaded, f"{BASE}/weeks/{FIRST}/symbols?min_shares=100000000")
    assert [s["symbol"] for s in big] == ["ECOX", "OZSC", "EARI"]  # 259M, 123M, 114M shares


async def test_symbol_and_venue_history_with_week_over_week_change(loaded: Client) -> None:
    history = await get(loaded, f"{BASE}/symbols/fnma/history")
    files = [read_file(p) for p in WEEK_FILES.values()]
    shares = [symbol_of(f, "FNMA").shares for f in files]
    assert [h["week"] for h in history] == [w.isoformat() for w in WEEK_FILES]
    assert [h["shares"] for h in history] == shares
    assert history[0]["shares_change_pct"] is None  # no week before the first
    for h, before, now in zip(history[1:], shares[:-1], shares[1:], strict=True):
        change = rounded(Fraction(100 * (now - before), before), 4)
        assert dec(h["shares_change_pct"]) == change
    venue = await get(loaded, f"{BASE}/venues/OTCN/history")
    expected = [next(v for v in venues_of(f) if v.mpid == "OTCN") for f in files]
    assert [(v["shares"], v["rank"]) for v in venue] == [(e.shares, e.rank) for e in expected]
    assert [dec(v["share_of_shares_pct"]) for v in venue] == [
        e.share_of_shares_pct for e in expected
    ]
    assert venue[0]["shares_change_pct"] is None
    for v, last, this in zip(venue[1:], expected[:-1], expected[1:], strict=True):
        change = rounded(Fraction(100 * (this.shares - last.shares), last.shares), 4)
        assert dec(v["shares_change_pct"]) == change


async def test_unknown_weeks_symbols_and_foreign_cursors(loaded: Client) -> None:
    assert (
        "no FINRA data"
        in problem(await loaded.get(f"{BASE}/weeks/2025-12-08/venues"), 404)["detail"]
    )
    problem(await loaded.get(f"{BASE}/weeks/2025-12-08/symbols"), 404)
    problem(await loaded.get(f"{BASE}/symbols/NOPE/history"), 404)
    problem(await loaded.get(f"{BASE}/venues/NOPE/history"), 404)
    problem(await loaded.get(f"{BASE}/weeks/2025-13-01/venues"), 400)
    for url in [f"{BASE}/weeks/2025-12-16/venues", f"{BASE}/weeks/2025-12-21/symbols"]:
        assert "is not a Monday" in problem(await loaded.get(url), 422)["detail"]
    problem(await loaded.get(f"{BASE}/symbols/A_B/history"), 400)
    problem(await loaded.get(f"{BASE}/venues/bad$$/history"), 400)
    problem(await loaded.get(f"{BASE}/weeks/{FIRST}/symbols?sort=volume"), 400)
    problem(await loaded.get(f"{BASE}/weeks/{FIRST}/symbols?min_shares=-1"), 400)
    shares_cursor = encode_cursor("finra_symbols_shares", "100", "AABB")
    problem(await loaded.get(f"{BASE}/weeks/{FIRST}/symbols?sort=hhi&cursor={shares_cursor}"), 400)
    problem(await loaded.get(f"{BASE}/weeks?cursor=garbage"), 400)
    empty = await get(loaded, f"{BASE}/weeks/{FIRST}/symbols?symbol=ZZZZZZ")
    assert empty == []  # a filter that matches nothing is an empty page, not a 404


async def test_ingest_params_are_checked_at_submit(loaded: Client) -> None:
    url = "/api/v1/executions"
    good = {"file": "finra/finra_otc_weekly_otc_20251215.csv"}
    ok = await loaded.post(url, json={"pipeline": "finra_weekly_ingest", "params": good})
    assert ok.status_code == 202, ok.text
    for params, message in [
        ({"file": "../pyproject.toml"}, "'..'"),
        ({"file": "/etc/passwd"}, "outside the data directory"),
        ({"file": "finra/missing.csv"}, "does not exist"),
        ({**good, "week": "2025-12-16"}, "not a Monday"),
        ({**good, "week": "someday"}, "week"),
        ({**good, "tier": "OTC"}, "tier"),
        ({}, "file"),
    ]:
        response = await loaded.post(
            url, json={"pipeline": "finra_weekly_ingest", "params": params}
        )
        assert message in problem(response, 422)["detail"], params


async def test_a_refused_restatement_fails_its_execution_with_the_reason(
    loaded: Client, database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = WEEK_FILES[min(WEEK_FILES)].read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("2025-12-15", "2025-12-22")
    (tmp_path / "mixed.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    final = await run_inline(database_url, "finra_weekly_ingest", {"file": "mixed.csv"})
    assert final.status == "failed"
    assert final.error is not None and "mixes lastUpdateDate" in final.error
    weeks = await get(loaded, f"{BASE}/weeks")
    assert len(weeks) == 3  # nothing of the refused file was kept
