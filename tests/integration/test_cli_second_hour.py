"""The CLI's query output (issue 31, item 11), through real `spine` subprocesses.

Every list cut off by `--limit` says so on stderr, a reader that leaves early
is no error, every table has a header row, and `--format json` everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app.config import get_settings
from tests.finra_support import WEEK_FILES
from tests.support import ROOT, run_inline, run_sync, spine_env, wait_until

SPINE = [sys.executable, "-m", "app.cli"]
CUT = "(more rows: showing the first 1; use --limit to see more)"


def spine(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPINE, *args],
        env=spine_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_executions_list_has_a_header_says_when_cut_and_speaks_json(database_url: str) -> None:
    for _ in range(2):
        assert spine(database_url, "run", "noop").returncode == 0
    cut = spine(database_url, "executions", "list", "--limit", "1")
    assert cut.returncode == 0, cut.stderr
    lines = cut.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "status",
        "pipeline",
        "created_at",
        "attempt",
        "next_run",
        "timeout",
        "last_error",
    ]
    assert len(lines) == 2 and "noop" in lines[1] and "0/3" in lines[1]
    assert cut.stderr.strip() == CUT
    whole = spine(database_url, "executions", "list", "--limit", "2", "--format", "json")
    assert whole.stderr == ""
    assert [e["pipeline"] for e in json.loads(whole.stdout)] == ["noop", "noop"]


def test_finra_venues_and_symbols_say_when_cut(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    path = WEEK_FILES[max(WEEK_FILES)]
    params = {"file": f"finra/{path.name}"}
    final = run_sync(run_inline(database_url, "finra_weekly_ingest", params))
    assert final.status == "completed", final.error
    for what in ("venues", "symbols"):
        cut = spine(database_url, "query", "finra", what, "--limit", "1", "--format", "csv")
        assert cut.returncode == 0, cut.stderr
        assert len(cut.stdout.splitlines()) == 2  # the header and one row
        assert cut.stderr.strip() == CUT, what


def test_a_reader_that_leaves_early_is_no_error(database_url: str) -> None:
    """`spine executions list | head -1`: exit 0 and no "Broken pipe"."""
    assert spine(database_url, "run", "noop").returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = subprocess.run(
            [*SPINE, "executions", "list"],
            env=spine_env(database_url),
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    shell = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{' '.join(SPINE)} executions list | head -1"],
        env=spine_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shell.returncode == 0 and "Broken pipe" not in shell.stderr, shell.stderr
    assert shell.stdout.startswith("id ")


def test_db_status_is_a_table_with_a_header(database_url: str) -> None:
    lines = spine(database_url, "db", "status").stdout.splitlines()
    assert lines[0].split() == ["state", "migration", "applied_at"]
    assert lines[1].startswith("applied") and any(line.endswith("0 pending") for line in lines)
    assert lines[-1].startswith("backend: local")  # then the backend, and its broker if any


def test_schedules_list_writes_params_as_json_and_has_a_header(database_url: str) -> None:
    added = spine(
        database_url, "schedules", "add", "nap", "sleep", "--every", "1h", "-p", "seconds=2"
    )
    assert added.returncode == 0, added.stderr
    csv_lines = spine(database_url, "schedules", "list", "--format", "csv").stdout.splitlines()
    assert csv_lines[0].startswith("name,pipeline,params,")
    assert csv_lines[1].startswith('nap,sleep,"{""seconds"":2.0}",')
    table = spine(database_url, "schedules", "list").stdout.splitlines()
    assert table[0].split() == ["name", "pipeline", "state", "next_fire_at", "when"]
    paused = spine(database_url, "schedules", "pause", "nap", "--format", "json")
    assert json.loads(paused.stdout)["enabled"] is False
    shown = json.loads(spine(database_url, "schedules", "show", "nap", "--format", "json").stdout)
    assert shown["params"] == {"seconds": 2} and shown["recent_fires"] == []


# ------------------------------------------------------------------ item 14: data generate

METRICS = "SELECT symbol, trade_date, trade_count, total_notional FROM otc_metrics_daily"


def test_generated_trades_by_default_leave_the_samples_metrics_alone(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    final = run_sync(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    assert final.status == "completed", final.error
    with psycopg.connect(database_url) as conn:
        sample = set(conn.execute(METRICS).fetchall())
    last_day = max(row[1] for row in sample)

    out = tmp_path / "gen.csv"
    made = spine(database_url, "data", "generate", "--rows", "3000", "--symbols", "8", str(out))
    assert made.returncode == 0, made.stderr
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    final = run_sync(run_inline(database_url, "otc_ingest", {"file": out.name}))
    assert final.status == "completed", final.error
    with psycopg.connect(database_url) as conn:
        after = set(conn.execute(METRICS).fetchall())
    assert after > sample  # the generated days were added; no metric of the sample's changed
    first_generated = min(row[1] for row in after - sample)
    assert first_generated > last_day and first_generated.weekday() < 5
    helped = spine(database_url, "data", "generate", "--help").stdout
    assert "first weekday after the sample's last day" in " ".join(helped.split())


# ------------------------------------------------------------------ item 12: run --wait


def test_ingest_progress_names_each_step_and_the_summary_says_changed_of_total(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free trades lock is not "waited for"; each normalize step shows (none is
    throttled away behind the one before it); metrics rows: changed, and the total."""
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    first = run_sync(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    again = run_sync(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    with psycopg.connect(database_url) as conn:
        messages = [
            row[0]
            for row in conn.execute(
                "SELECT payload ->> 'message' FROM execution_events"
                " WHERE execution_id = %s AND event_type = 'progress' ORDER BY id",
                (first.id,),
            )
        ]
        summaries = [
            conn.execute(
                "SELECT payload -> 'result' FROM execution_events"
                " WHERE execution_id = %s AND event_type = 'completed'",
                (e.id,),
            ).fetchone()[0]  # type: ignore[index]
            for e in (first, again)
        ]
    assert "waiting for the trades lock" not in messages
    steps = [m for m in messages if m.startswith(("checking", "inserting", "resolving"))]
    assert [s.split()[0] for s in steps] == ["checking", "inserting", "resolving"], messages
    assert (summaries[0]["metrics_rows_changed"], summaries[0]["metrics_rows_total"]) == (40, 40)
    assert (summaries[1]["metrics_rows_changed"], summaries[1]["metrics_rows_total"]) == (0, 40)
    assert "metrics_rows" not in summaries[1]


def test_waiting_for_the_trades_lock_is_said_while_another_holds_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.otc.metrics import TRADES_LOCK

    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    waiting = (
        "SELECT 1 FROM execution_events WHERE event_type = 'progress'"
        " AND payload ->> 'message' = 'waiting for the trades lock'"
    )
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (TRADES_LOCK,))
        with ThreadPoolExecutor(1) as thread:
            ingest = run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
            done = thread.submit(run_sync, ingest)
            try:
                wait_until(lambda: holder.execute(waiting).fetchone() is not None, timeout=60)
                assert not done.done()  # it waits for the lock, as it says
            finally:
                holder.execute("SELECT pg_advisory_unlock(%s)", (TRADES_LOCK,))
            final = done.result(timeout=120)
    assert final.status == "completed", final.error
