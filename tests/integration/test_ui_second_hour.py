"""The dashboard's rough edges (issue 31, item 15), over real HTTP and a real database.

Errors are pages with the navigation, FINRA weeks follow the API's rule, money
reads as the API sends it, the overview's failed count matches its chart, a
pipeline that is never retried does not say "1 / 3", tracebacks are text.
(Layout at phone width and the chart edges are in test_ui_browser.py.)
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.config import get_settings
from tests.api_support import api_client
from tests.support import ROOT, run_inline, spine_env, wait_until, worker_pool

NAV = 'id="menu"'


def _chart(page: str, block: str) -> dict[str, list[int]]:
    found = re.search(rf'id="{block}">(.*?)</script>', page, re.S)
    assert found, block
    data: dict[str, list[int]] = json.loads(found.group(1))
    return data


@pytest.mark.usefixtures("database_url")
async def test_errors_are_pages_with_the_navigation() -> None:
    async with api_client() as client:
        bad = await client.get("/ui/executions", params={"status": "bogus"})
        missing = await client.get("/ui/executions/no-such-execution")
        nowhere = await client.get("/ui/no/such/page")
    for response, status in ((bad, 400), (missing, 404), (nowhere, 404)):
        assert response.status_code == status
        assert response.headers["content-type"].startswith("text/html")
        assert NAV in response.text and 'href="/ui/executions"' in response.text
        assert "content-security-policy" in response.headers
    assert "`status` must be one of pending" in html.unescape(bad.text)
    assert "no execution with id &#39;no-such-execution&#39;" in missing.text


@pytest.mark.usefixtures("database_url")
async def test_a_week_that_is_not_a_monday_is_refused_as_by_the_api_and_the_cli(
    database_url: str,
) -> None:
    async with api_client() as client:
        page = await client.get("/ui/finra", params={"week": "2025-12-23"})
        api = await client.get("/api/v1/finra/weeks/2025-12-23/venues")
    cli = subprocess.run(
        [sys.executable, "-m", "app.cli", "query", "finra", "venues", "--week", "2025-12-23"],
        env=spine_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    refusal = "week 2025-12-23 is not a Monday (weeks start on Monday)"
    assert api.status_code == 422 and api.json()["detail"] == refusal
    assert cli.returncode == 2 and refusal in cli.stderr
    assert page.status_code == api.status_code and refusal in page.text and NAV in page.text
    assert "No FINRA rows" not in page.text


async def test_money_reads_as_the_api_sends_it_with_thousands_separators(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    loaded = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert loaded.status == "completed", loaded.error
    async with api_client() as client:
        rows = (await client.get("/api/v1/otc/metrics/daily", params={"symbol": "ACME"})).json()
        page = (await client.get("/ui/market", params={"symbol": "ACME"})).text
    cells = re.findall(r'<td class="num">([^<]*)</td>', page)
    assert cells and not [c for c in cells if re.search(r"\.\d*0$", c)]  # no trailing zeros
    for row in rows:
        for field in ("vwap", "high_price", "low_price", "total_notional"):
            sent = Decimal(str(row[field]))  # as the API sends it: 13.09, not 13.090000
            assert f"{sent:,f}" in cells, (field, sent)
    big = max(Decimal(str(r["total_notional"])) for r in rows)
    assert big >= 1000 and f"{big:,f}" in cells and "," in f"{big:,f}"


def test_the_failed_count_matches_the_chart_and_fail_is_not_one_of_three(
    database_url: str, tmp_path: Path
) -> None:
    def spine(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=spine_env(database_url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def status() -> str:
        return str(json.loads(spine("executions", "show", execution_id))["status"])

    execution_id = spine("run", "fail").split()[1]
    with worker_pool(database_url, processes=1, log_path=tmp_path / "pool.log"):
        wait_until(lambda: status() == "failed", timeout=60)
        spine("executions", "retry", execution_id)  # by hand: it fails again
        wait_until(lambda: status() == "failed", timeout=60)

    async def pages() -> tuple[str, str]:
        async with api_client() as client:
            overview = (await client.get("/ui")).text
            detail = (await client.get(f"/ui/executions/{execution_id}")).text
        return overview, detail

    overview, detail = asyncio.run(pages())
    chart = _chart(overview, "throughput-data")
    assert sum(chart["failed"]) == 1  # one execution, failed twice
    assert "0 completed · 1 failed" in overview
    failed_cells = re.search(r"status-failed\">failed</span>(.*?)</tr>", overview, re.S)
    assert failed_cells, overview
    assert sum(int(n) for n in re.findall(r">(\d+)</a>", failed_cells.group(1))) == 1

    attempts = re.search(r'<dd id="attempts">(.*?)</dd>', detail, re.S)
    assert attempts and "/ 3" not in attempts.group(1) and "not retried" in attempts.group(1)
    # The traceback is text with its lines, not a JSON string with \n in it.
    assert '<pre class="traceback">Traceback (most recent call last):\n' in detail
    timeline = re.search(r'<ol id="timeline".*?</ol>', detail, re.S)
    assert timeline and "\\n" not in timeline.group(0)
    assert "PurposefulFailure" in timeline.group(0)
