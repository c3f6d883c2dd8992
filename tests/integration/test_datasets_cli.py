"""The datasets' CLI: `spine db init` creates the paused scans, `spine datasets ...`,
`spine backfill` and `spine backfills ...` on FINRA's real files (no pool: the
executions are followed as created, then cancelled)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.finra_support import WEEK_FILES
from tests.support import finra_landing, spine_cli

Conn = psycopg.Connection[dict[str, Any]]


spine = spine_cli


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    return finra_landing(tmp_path, monkeypatch)


def test_scan_backfill_follow_and_cancel(landing: Path, conn: Conn) -> None:
    init = spine("db", "init")
    assert init.exit_code == 0, init.output
    assert "created schedule dataset-scan:finra_otc_weekly (paused)" in init.output
    schedules = spine("schedules", "list")
    assert "dataset-scan:finra_otc_weekly" in schedules.output
    assert "created schedule" not in spine("db", "init").output  # once

    weeks = sorted(WEEK_FILES)
    shutil.copy2(WEEK_FILES[weeks[0]], landing / "finra" / WEEK_FILES[weeks[0]].name)
    scanned = spine("datasets", "scan", "finra_otc_weekly", "--format", "json")
    assert scanned.exit_code == 0, scanned.output
    assert json.loads(scanned.output)["submitted"] == [f"{weeks[0]}/OTC"]

    shutil.copy2(WEEK_FILES[weeks[1]], landing / "finra" / WEEK_FILES[weeks[1]].name)
    made = spine(
        "backfill", "finra_otc_weekly", "--from", str(weeks[0]), "--to", str(weeks[2]),
        "--key2", "otc", "--only", "all", "--format", "json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    backfill = json.loads(made.output)
    items = {i["key"]: i for i in backfill["items"]}
    # The first week's scan holds its key: joined, not doubled. The third has no file
    # landed: the dataset's remote source fetches it (issue 27), no longer `no_source`.
    assert items[f"{weeks[0]}/OTC"]["outcome"] == "joined"
    assert items[f"{weeks[1]}/OTC"]["outcome"] == "submitted"
    assert items[f"{weeks[2]}/OTC"]["outcome"] == "submitted"
    fetch = conn.execute(
        "SELECT pipeline, params FROM executions WHERE id = %s",
        (items[f"{weeks[2]}/OTC"]["execution_id"],),
    ).fetchone()
    assert fetch == {
        "pipeline": "dataset_fetch",
        "params": {"dataset": "finra_otc_weekly", "key": f"{weeks[2]}/OTC"},
    }
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 3}
    lane = conn.execute(
        "SELECT lane FROM executions WHERE id = %s", (items[f"{weeks[1]}/OTC"]["execution_id"],)
    ).fetchone()
    assert lane == {"lane": "backfill"}

    listed = spine("datasets", "partitions", "finra_otc_weekly", "--state", "pending")
    assert listed.exit_code == 0, listed.output
    assert f"{weeks[0]}/OTC" in listed.output and f"{weeks[1]}/OTC" in listed.output
    overview = spine("datasets", "list", "--format", "json")
    names = {d["name"] for d in json.loads(overview.output)}
    assert {"finra_otc_weekly", "otc_trades", "otc_metrics_daily"} <= names

    shown = spine("backfills", "show", backfill["id"])
    assert shown.exit_code == 0 and backfill["id"] in shown.output
    cancelled = spine("backfills", "cancel", backfill["id"], "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    statuses = {i["key"]: i["execution_status"] for i in json.loads(cancelled.output)["items"]}
    assert statuses[f"{weeks[0]}/OTC"] == statuses[f"{weeks[1]}/OTC"] == "cancelled"
    assert backfill["id"] in spine("backfills", "list").output

    bad = spine("backfill", "finra_otc_weekly", "--from", "2025-12-16", "--to", "2025-12-29")
    assert bad.exit_code != 0 and "not a Monday" in bad.output
    unknown = spine("datasets", "show", "nope")
    assert unknown.exit_code != 0 and "unknown dataset" in unknown.output


def test_lineage_names_the_related_partitions_with_their_states(landing: Path) -> None:
    shown = spine("datasets", "lineage", "otc_metrics_daily", "2026-01-09")
    assert shown.exit_code == 0, shown.output
    assert "never materialized" in shown.output
    assert "upstream: otc_trades 2026-01-09 (" in shown.output
    as_json = json.loads(
        spine("datasets", "lineage", "otc_trades", "2026-01-09", "--format", "json").output
    )
    assert as_json["materializations"] == []
    assert [(d["dataset"], d["key"]) for d in as_json["downstream"]] == [
        ("otc_metrics_daily", "2026-01-09")
    ]
    bad = spine("datasets", "lineage", "otc_trades", "2026-01-10")
    assert bad.exit_code != 0 and "not a weekday" in bad.output
    assert "Traceback" not in bad.output


def test_scan_with_remote_fetches_what_the_publisher_should_have(landing: Path, conn: Conn) -> None:
    """`--remote` does what the dataset's scheduled scan does: the landing area, then a
    fetch of each recent due partition that is not loaded (not run here: no pool)."""
    weeks = sorted(WEEK_FILES)
    shutil.copy2(WEEK_FILES[weeks[0]], landing / "finra" / WEEK_FILES[weeks[0]].name)
    first = spine("datasets", "scan", "finra_otc_weekly", "--remote", "--format", "json")
    assert first.exit_code == 0, first.output
    scanned = json.loads(first.output)
    assert scanned["submitted"] == [f"{weeks[0]}/OTC"]  # the landed file
    remote = scanned["remote"]
    assert remote["window"] and remote["submitted"] == [
        k for k in remote["window"] if k != f"{weeks[0]}/OTC"
    ]
    fetches = conn.execute(
        "SELECT params->>'key' AS key FROM executions WHERE pipeline = 'dataset_fetch' "
        "AND params->>'dataset' = 'finra_otc_weekly' ORDER BY 1"
    ).fetchall()
    assert [f["key"] for f in fetches] == sorted(remote["submitted"])

    again = spine("datasets", "scan", "finra_otc_weekly", "--remote")
    assert again.exit_code == 0, again.output
    assert "fetching 0: -; already running: " + ", ".join(remote["submitted"]) in again.output

    landing_only = spine("datasets", "scan", "otc_metrics_daily", "--remote")
    assert landing_only.exit_code != 0
    assert landing_only.output.strip().splitlines() == [
        "Error: dataset otc_metrics_daily has no remote source to fetch from"
    ]
