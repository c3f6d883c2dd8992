"""The CLI one step off the README's path (issue 13), through real `spine` subprocesses.

Validation agrees with the API, `run --wait` explains itself, query output is
exact and complete, generated files never collide with the sample's trades.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.support import ROOT, run_inline, run_sync, spine_env, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, object]]
SPINE = [sys.executable, "-m", "app.cli"]


def spine(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPINE, *args],
        env=spine_env(database_url, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    return lines[-1]


# ------------------------------------------------------------------ 7: one line, not a traceback


def test_generate_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = spine("", "data", "generate", "--rows", "10", "/nonexistent/dir/x.csv")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: /nonexistent/dir is not a directory"


@pytest.mark.parametrize("command", [("db", "status"), ("db", "url"), ("executions", "list")])
def test_a_database_url_that_is_not_one_is_one_line_naming_it(command: tuple[str, ...]) -> None:
    result = spine("notaurl", *command)
    assert result.returncode == 1
    assert result.stdout == ""  # `db url` does not echo it
    assert result.stderr.startswith("Error: configuration: DATABASE_URL: not a PostgreSQL")
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ 8: the API's rules


def test_status_lane_and_symbol_are_checked_like_the_api(database_url: str, conn: Conn) -> None:
    status = spine(database_url, "executions", "list", "--status", "done")
    assert status.returncode == 2
    assert "'done' is not one of 'pending', 'queued', 'running'" in status.stderr
    assert "no executions" not in status.stdout
    lane = spine(database_url, "executions", "list", "--lane", "fast")
    assert lane.returncode == 2

    bad = spine(database_url, "query", "metrics", "--symbol", "bad sym!")
    assert bad.returncode == 2
    assert "'bad sym!' is not a symbol: 1-12 of A-Z 0-9 . -" in bad.stderr
    assert "no metrics" not in bad.stderr + bad.stdout

    lower = spine(database_url, "run", "otc_compute_metrics", "-p", "symbol=acme")
    assert lower.returncode == 0, lower.stderr
    execution_id = lower.stdout.split()[1]
    row = conn.execute("SELECT params FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None and row["params"] == {
        "symbol": "ACME",
        "start_date": None,
        "end_date": None,
    }
    refused = spine(database_url, "run", "otc_compute_metrics", "-p", "symbol=bad sym!")
    assert refused.returncode == 1
    assert "symbol" in one_line_error(refused)


# ------------------------------------------------------------------ 9 and 5: run --wait


def _sigint_as_from_a_terminal() -> None:
    """Ctrl-C reaches the command as in a terminal, even when the suite itself runs with
    SIGINT ignored (started with nohup or as a background job: children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_wait_without_a_worker_says_so_and_ctrl_c_says_what_is_pending(
    database_url: str, tmp_path: Path
) -> None:
    err = tmp_path / "stderr"
    with (
        err.open("w") as stderr,
        subprocess.Popen(
            [*SPINE, "run", "noop", "--wait"],
            env=spine_env(database_url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_sigint_as_from_a_terminal,  # noqa: PLW1509 (only a signal reset)
        ) as proc,
    ):
        try:
            wait_until(lambda: "no worker is running" in err.read_text(), timeout=30)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()  # a no-op when it exited; leaving `with` reaps it and closes its pipe
    execution_id = out.split()[1]
    text = err.read_text()
    assert "start one with `spine worker start`" in text
    assert f"stopped waiting: execution {execution_id} is still pending" in text
    assert "Traceback" not in text
    assert proc.returncode == 130


def test_wait_prints_phases_then_the_summary_as_json(database_url: str) -> None:
    with worker_pool(database_url, processes=1, SPINE_DATA_DIR=str(ROOT / "data")):
        result = spine(
            database_url,
            "run", "otc_ingest", "-p", "file=otc_sample.csv", "--wait",
            SPINE_DATA_DIR=str(ROOT / "data"),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d completed", lines[lines.index("{") - 1])
    execution_id = lines[0].split()[1]
    with psycopg.connect(database_url) as conn:
        phases = conn.execute(
            "SELECT DISTINCT payload ->> 'phase' FROM execution_events "
            "WHERE execution_id = %s AND event_type = 'progress'",
            (execution_id,),
        ).fetchall()
    assert {p for (p,) in phases} == {"copy", "normalize", "metrics"}  # the API's events too
    summary = json.loads("\n".join(lines[lines.index("{") :]))
    assert summary["rows_read"] == summary["inserted"] + summary["rejected"] + (
        summary["duplicates"] + summary["corrections"]
    )
    assert summary["rejected"] == 12
    # Not a terminal: plain lines, each phase named, no carriage-return bar.
    assert "\r" not in result.stderr
    progress = result.stderr.splitlines()
    for phase in ("copy", "normalize", "metrics"):
        assert any(line.startswith(f"{phase}: ") for line in progress), result.stderr
    assert "copying otc_sample.csv" in result.stderr
    assert "recomputing the daily metrics" in result.stderr


def test_a_failure_is_printed_once(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("not,the,header\n1,2,3\n")
    with worker_pool(database_url, processes=1, SPINE_DATA_DIR=str(tmp_path)):
        result = spine(
            database_url, "run", "otc_ingest", "-p", "file=bad.csv", "--wait",
            SPINE_DATA_DIR=str(tmp_path),
        )  # fmt: skip
    assert result.returncode == 1
    everything = result.stdout + result.stderr
    assert everything.count("wrong header") == 1, everything
    assert "error: " in result.stderr


# ------------------------------------------------------------------ 11 and 6: query output


@pytest.fixture
def ingested(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from app.config import get_settings

    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    final = run_sync(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    assert final.status == "completed", final.error
    return database_url


def test_empty_csv_still_has_its_header(database_url: str) -> None:
    result = spine(database_url, "query", "metrics", "--format", "csv")
    assert result.returncode == 0
    assert result.stdout == (
        "symbol,date,trade_count,total_volume,total_notional,vwap,high_price,low_price\n"
    )


def test_a_cut_off_result_says_so(ingested: str) -> None:
    cut = spine(ingested, "query", "metrics", "--limit", "3")
    assert len(cut.stdout.splitlines()) == 4
    assert "more rows" in cut.stderr and "--limit" in cut.stderr
    whole = spine(ingested, "query", "metrics", "--symbol", "acme", "--limit", "5")
    assert len(whole.stdout.splitlines()) == 6
    assert "more rows" not in whole.stderr


def test_tables_right_align_numbers_and_print_money_exactly(ingested: str, conn: Conn) -> None:
    table = spine(ingested, "query", "metrics", "--symbol", "ACME").stdout.splitlines()
    header, rows = table[0], table[1:]
    end = header.index("trade_count") + len("trade_count")
    assert all(row[end - 1].isdigit() for row in rows), table  # right edges line up
    stored = conn.execute(
        "SELECT total_notional, vwap FROM otc_metrics_daily WHERE symbol = 'ACME' "
        "ORDER BY trade_date LIMIT 1"
    ).fetchone()
    assert stored is not None
    notional, vwap = (Decimal(str(stored[k])) for k in ("total_notional", "vwap"))
    first = rows[0].split()
    assert Decimal(first[4]) == notional and Decimal(first[5]) == vwap
    as_json = spine(ingested, "query", "metrics", "--symbol", "ACME", "--format", "json")
    metric = json.loads(as_json.stdout, parse_float=Decimal)[0]
    assert metric["total_notional"] == notional and metric["vwap"] == vwap
    assert "e+" not in as_json.stdout.lower()


def test_loads_and_their_rejects(ingested: str) -> None:
    loads = json.loads(spine(ingested, "query", "loads", "--format", "json").stdout)
    assert len(loads) == 1
    load = loads[0]
    assert load["source_file"] == "otc_sample.csv"
    assert load["rejected"] == 12
    assert load["rows_read"] == (
        load["inserted"] + load["duplicates"] + load["corrections"] + load["rejected"]
    )
    table = spine(ingested, "query", "rejects", "--load", str(load["id"]))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["line_no", "reason", "line"]
    assert len(lines) == 13
    assert "bad_price" in table.stdout and "X-BAD-01" in table.stdout
    missing = spine(ingested, "query", "rejects", "--load", "999999")
    assert one_line_error(missing) == "Error: no load 999999 (`spine query loads` lists them)"


# ------------------------------------------------------------------ 4: generated files


def test_generated_files_keep_the_samples_trades_and_refuse_to_overwrite(
    ingested: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    before = conn.execute(
        "SELECT trade_count FROM otc_metrics_daily "
        "WHERE symbol = 'ACME' AND trade_date = '2026-01-06'"
    ).fetchone()
    out = tmp_path / "gen.csv"
    made = spine(ingested, "data", "generate", "--rows", "2000", "--symbols", "3", str(out))
    assert made.returncode == 0, made.stderr
    again = spine(ingested, "data", "generate", "--rows", "10", str(out))
    assert one_line_error(again) == f"Error: {out} exists: use --force to overwrite it"
    assert len(out.read_text().splitlines()) == 2001
    forced = spine(ingested, "data", "generate", "--rows", "10", "--force", str(out))
    assert forced.returncode == 0
    assert len(out.read_text().splitlines()) == 11
    moved = spine(
        ingested, "data", "generate", "--rows", "2000", "--symbols", "3", "--force",
        "--start-date", "2026-01-06", str(out),
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    final = run_sync(run_inline(ingested, "otc_ingest", {"file": out.name}))
    assert final.status == "completed", final.error
    after = conn.execute(
        "SELECT trade_count FROM otc_metrics_daily "
        "WHERE symbol = 'ACME' AND trade_date = '2026-01-06'"
    ).fetchone()
    assert before is not None and after is not None
    summary = conn.execute("SELECT summary FROM otc_loads ORDER BY id DESC LIMIT 1").fetchone()
    assert summary is not None
    assert summary["summary"]["corrections"] == 0  # type: ignore[index]
    assert summary["summary"]["duplicates"] == 0  # type: ignore[index]
    assert int(after["trade_count"]) > int(before["trade_count"])  # type: ignore[call-overload]


def test_generated_data_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "data/trades_1000000.csv", "data/sub/x.csv"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ignored.stdout.split() == ["data/trades_1000000.csv", "data/sub/x.csv"]
    sample = subprocess.run(
        ["git", "check-ignore", "data/otc_sample.csv"], cwd=ROOT, capture_output=True, check=False
    )
    assert sample.returncode == 1  # tracked, not ignored


def test_run_format_json_gives_the_id_for_scripts(database_url: str, conn: Conn) -> None:
    result = spine(database_url, "run", "noop", "--format", "json")
    assert result.returncode == 0, result.stderr
    execution = json.loads(result.stdout)
    assert execution["status"] == "pending" and execution["pipeline"] == "noop"
    row = conn.execute("SELECT id FROM executions").fetchone()
    assert row is not None and execution["id"] == row["id"]
    both = spine(database_url, "run", "noop", "--format", "json", "--wait")
    assert both.returncode == 2 and "drop --wait" in both.stderr
