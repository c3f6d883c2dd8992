"""Keys at the calendar's edges answer 4xx and one CLI line, not a 500 or a traceback.

`9999-12-31` passed validation, then computing its period's end or due time
raised OverflowError; a key before a dataset's start had a lineage (`late`)
though no partition list shows it. See tests/unit/test_period_bounds.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api_support import Client, api_client, problem
from tests.support import one_error_line, spine_env, spine_process

RANGE = "from 0001-01-02 to 9999-12-30 (UTC)"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/otc_trades/partitions/9999-12-31",
        "/api/v1/datasets/sec_ftd/partitions/9999-12b",
        "/api/v1/datasets/finra_otc_weekly/partitions/9999-12-27%2FOTC",
        "/api/v1/datasets/regsho_daily/partitions/9999-12-31%2FCNMS",
        "/api/v1/datasets/otc_trades/partitions?from=9999-12-30&to=9999-12-31",
        "/api/v1/datasets/sec_ftd/partitions?from=9999-12b&to=9999-12b",
    ],
)
async def test_api_refuses_a_key_whose_times_are_out_of_range(client: Client, url: str) -> None:
    body = problem(await client.get(url), 422)
    assert "out of range" in body["detail"] and RANGE in body["detail"]
    assert "\n" not in body["detail"]


@pytest.mark.parametrize(
    ("name", "period"), [("otc_trades", "9999-12-31"), ("finra_otc_weekly", "9999-12-27")]
)
async def test_api_refuses_a_backfill_out_of_range(client: Client, name: str, period: str) -> None:
    url = f"/api/v1/datasets/{name}/backfills"
    body = problem(await client.post(url, json={"from": period, "to": period}), 422)
    assert f"period {period} is out of range: {name} supports" in body["detail"]
    assert (await client.get("/api/v1/backfills")).json() == []


async def test_the_dashboard_answers_4xx_at_the_edges(client: Client) -> None:
    for url in ("/ui/datasets/otc_trades/partitions/9999-12-31", "/ui/finra?week=0001-01-01"):
        response = await client.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)


CLI_CASES = [
    (
        ["backfill", "otc_trades", "--from", "9999-12-31", "--to", "9999-12-31"],
        "otc_trades supports",
    ),
    (["backfill", "regsho_daily", "--from", "9999-12-31", "--to", "9999-12-31"], "9999-12-29"),
    (["backfill", "sec_ftd", "--from", "9999-12b", "--to", "9999-12b"], "period 9999-12b is out"),
    (["datasets", "lineage", "otc_trades", "9999-12-31"], "out of range"),
    (["datasets", "lineage", "sec_ftd", "9999-12b"], "out of range"),
    (
        ["data", "generate", "--rows", "10", "{tmp}/out.csv", "--start-date", "9999-12-31"],
        "9999-12-29",
    ),
    (
        ["data", "generate", "--rows", "10", "{tmp}/out.csv", "--start-date", "0001-01-01"],
        "0001-01-02",
    ),
]


@pytest.mark.parametrize(("args", "expected"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_refuses_edge_keys_in_one_line(
    database_url: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    done = spine_process([a.format(tmp=tmp_path) for a in args], spine_env(database_url))
    assert expected in one_error_line(done)
    assert not (tmp_path / "out.csv").exists()


async def test_a_range_too_large_is_refused_and_backfills_nothing(client: Client) -> None:
    listed = await client.get("/api/v1/datasets/otc_trades/partitions?to=9999-12-28&state=late")
    assert "at most 100,000 in one range" in problem(listed, 422)["detail"]
    asked = {"from": "2026-01-05", "to": "9999-12-28", "only": "all"}
    made = await client.post("/api/v1/datasets/otc_trades/backfills", json=asked)
    assert "narrow it" in problem(made, 422)["detail"]
    assert (await client.get("/api/v1/backfills")).json() == []
