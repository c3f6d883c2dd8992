"""`spine query finra ...`: tables, CSV, and JSON that is the API's objects, field for field."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner, Result

from app.cli import main
from app.config import get_settings
from tests.api_support import api_client
from tests.finra_support import WEEK_FILES, read_file, symbol_of
from tests.support import ROOT, run_sync, spine_env
from tests.support import run_inline as run_pipeline_inline


def spine(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def loaded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    for path in WEEK_FILES.values():
        params = {"file": f"finra/{path.name}"}
        final = run_sync(run_pipeline_inline(database_url, "finra_weekly_ingest", params))
        assert final.status == "completed", final.error
    return database_url


async def _api(url: str) -> Any:
    async with api_client() as client:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        return response.json()


def test_json_is_the_api_objects(loaded: str) -> None:
    cases = [
        (["weeks"], "/api/v1/finra/weeks"),
        (["venues", "--week", "2025-12-22"], "/api/v1/finra/weeks/2025-12-22/venues"),
        (["venues"], "/api/v1/finra/weeks/2025-12-29/venues"),  # the latest week
        (
            ["symbols", "--week", "2025-12-15", "--sort", "hhi", "--limit", "20"],
            "/api/v1/finra/weeks/2025-12-15/symbols?sort=hhi&limit=20",
        ),
        (["symbol", "didiy"], "/api/v1/finra/symbols/DIDIY/history"),
        (["venue", "ARCA"], "/api/v1/finra/venues/arca/history"),
    ]
    for args, url in cases:
        result = spine("query", "finra", *args, "--format", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == run_sync(_api(url)), args  # a cut hint is on stderr


def test_table_and_csv(loaded: str) -> None:
    table = spine("query", "finra", "venues", "--week", "2025-12-15").output.splitlines()
    assert table[0].split() == [
        "week", "mpid", "participant_name", "shares", "trades", "symbols",
        "share_of_shares_pct", "share_of_trades_pct", "rank",
    ]  # fmt: skip
    one_week = spine("query", "finra", "symbol", "FNMA", "--week", "2025-12-22", "--format", "csv")
    lines = one_week.output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("week,symbol,issue_name")
    row = dict(zip(lines[0].split(","), lines[1].split(","), strict=False))
    want = symbol_of(read_file(WEEK_FILES[date(2025, 12, 22)]), "FNMA")
    assert (int(row["shares"]), Decimal(row["hhi"])) == (want.shares, want.hhi)


def test_mistakes_are_one_line(loaded: str) -> None:
    # Exit 1: nothing found (the API's 404s); exit 2: bad input (the API's 400s).
    for args, code, expected in [
        (["venues", "--week", "2025-12-08"], 1, "no FINRA data loaded for the week of 2025-12-08"),
        (["symbol", "ZZZZ"], 1, "no FINRA data for symbol 'ZZZZ'"),
        (["venue", "nope"], 1, "no FINRA data for venue 'NOPE'"),
        (["symbol", "FNMA", "--week", "2025-12-08"], 1, "'FNMA' in the week of 2025-12-08"),
        (["symbols", "--week", "2025-13-01"], 2, "is not a date"),
        (["venues", "--week", "2025-12-16"], 2, "2025-12-16 is not a Monday"),
        (["symbols", "--sort", "volume"], 2, "'volume' is not one of"),
        (["symbols", "--mpid", "OT CN"], 2, "'OT CN' is not an MPID"),
        (["venue", "bad$$"], 2, "'bad$$' is not an MPID"),
        (["symbol", "A_B"], 2, "'A_B' is not a symbol"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "query", "finra", *args],
            env=spine_env(loaded),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, len(lines), done.stdout) == (code, 1, ""), (args, done.stderr)
        assert expected in lines[0], args


def test_nothing_loaded_says_so(database_url: str) -> None:
    assert "no FINRA week is loaded" in spine("query", "finra", "venues").output
    assert spine("query", "finra", "weeks", "--format", "json").output.strip() == "[]"
