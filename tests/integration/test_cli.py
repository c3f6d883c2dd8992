"""The `spine` command for operators: list, run, executions, db — through click's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from app.cli import main
from tests.support import ROOT, spine_env

Conn = psycopg.Connection[dict[str, object]]


def spine(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_list_shows_pipelines_with_params() -> None:
    result = spine("list")
    assert result.exit_code == 0
    assert "noop" in result.output
    assert "seconds: float = 1.0" in result.output


def test_run_then_inspect_and_cancel(database_url: str) -> None:
    submitted = spine("run", "sleep", "-p", "seconds=30", "--logical-key", "k1")
    assert submitted.exit_code == 0, submitted.output
    execution_id = submitted.output.split()[1]
    again = spine("run", "sleep", "-p", "seconds=30", "--logical-key", "k1")
    assert again.output.startswith(f"already active: {execution_id}")

    shown = spine("executions", "show", execution_id)
    assert json.loads(shown.output)["params"] == {"seconds": 30.0}
    assert execution_id in spine("executions", "list").output
    assert "created" in spine("executions", "events", execution_id).output

    cancelled = spine("executions", "cancel", execution_id)
    assert cancelled.exit_code == 0
    assert "cancelled" in cancelled.output
    twice = spine("executions", "cancel", execution_id)
    assert twice.exit_code == 1
    assert "already ended (cancelled)" in twice.output


@pytest.mark.usefixtures("database_url")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nope"), "unknown pipeline 'nope'; known pipelines:"),
        (("run", "sleep", "-p", "seconds"), "is not key=value"),
        (("run", "sleep", "-p", "seconds=-3"), "at `params.seconds`"),
        (("executions", "show", "missing"), "no execution missing"),
        (("executions", "events", "missing"), "no execution missing"),
        (("executions", "cancel", "missing"), "no execution missing"),
        (("executions", "prune", "--older-than", "soon"), "like 30d"),
    ],
)
def test_mistakes_are_one_clear_line(args: tuple[str, ...], message: str) -> None:
    result = spine(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_db_status_and_url(database_url: str) -> None:
    status = spine("db", "status")
    assert status.exit_code == 0
    assert "0 pending" in status.output
    assert spine("db", "url").output.strip() == database_url


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    get_settings.cache_clear()
    try:
        result = spine("db", "status")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.startswith("Error: database unavailable:")
    assert len(result.output.strip().splitlines()) == 1


def test_reset_asks_first(database_url: str, conn: Conn) -> None:
    conn.execute("INSERT INTO executions (pipeline, trigger_source) VALUES ('noop', 't')")
    refused = CliRunner().invoke(main, ["db", "reset"], input="n\n")
    assert refused.exit_code == 1
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 1}
    done = spine("db", "reset", "--yes")
    assert done.exit_code == 0, done.output
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 0}


def test_query_metrics_after_ingest(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings
    from tests.support import ROOT, run_inline, run_sync

    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    empty = spine("query", "metrics")
    assert "no metrics" in empty.output
    assert spine("query", "metrics", "--format", "json").output.strip() == "[]"
    final = run_sync(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    assert final.status == "completed", final.error
    result = spine("query", "metrics", "--symbol", "acme", "--start", "2026-01-06")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["symbol", "date", "trade_count"]
    assert all(line.startswith("ACME") for line in lines[1:])
    assert "2026-01-06" in lines[1]
    as_json = json.loads(
        spine(
            "query", "metrics", "--symbol", "ACME", "--end", "2026-01-06", "--format", "json"
        ).output
    )
    assert [m["date"] for m in as_json] == ["2026-01-05", "2026-01-06"]
    assert set(as_json[0]) == {
        "symbol", "date", "trade_count", "total_volume", "total_notional", "vwap",
        "high_price", "low_price",
    }  # fmt: skip
    as_csv = spine("query", "metrics", "--format", "csv", "--limit", "3").stdout.splitlines()
    assert as_csv[0].startswith("symbol,date,trade_count") and len(as_csv) == 4
    trades = spine("query", "trades", "--symbol", "ACME", "--limit", "2", "--format", "json")
    assert [t["symbol"] for t in json.loads(trades.stdout)] == ["ACME", "ACME"]


def test_data_generate_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    result = spine("data", "generate", "--rows", "500", "--symbols", "3", "--seed", "9", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 500 trades" in result.output
    assert len(out.read_text().splitlines()) == 501


_SHELL_SESSION = """\
async def go():
    async with await db.aconnect(db.database_url(settings)) as c:
        execution, created = await submit(c, "noop")
        print("submitted", execution.id, created)

asyncio.run(go())
print(type(registry).__name__, settings.max_attempts, executions.__name__, otc.__name__)
"""


def test_shell_preloads_what_it_names_and_can_submit(database_url: str, conn: Conn) -> None:
    """`spine shell` without IPython: the stdlib console, its namespace, a real submit."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "shell"],
        input=_SHELL_SESSION,
        env=spine_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        "Preloaded: asyncio, db, executions, finra, ftd, leases, otc, registry, regsho, settings, "
        "submit, workers" in done.stderr
    )
    assert "Traceback" not in done.stderr, done.stderr
    submitted = [line for line in done.stdout.splitlines() if "submitted" in line]
    assert len(submitted) == 1 and submitted[0].endswith(" True"), done.stdout
    execution_id = submitted[0].split()[-2]
    assert "Registry 3 app.engine.executions app.otc.reads" in done.stdout
    row = conn.execute(
        "SELECT pipeline, trigger_source FROM executions WHERE id = %s", (execution_id,)
    )
    assert row.fetchone() == {"pipeline": "noop", "trigger_source": "api"}
