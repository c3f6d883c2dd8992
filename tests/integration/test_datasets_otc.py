"""OTC loads record otc_trades and otc_metrics_daily for exactly the days they touch.

Days are trading days in the market time zone: a trade at 2026-01-10T00:20Z
belongs to Friday 2026-01-09 in New York.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app import db
from app.config import get_settings
from app.otc.pipelines import ingest_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "otc_sample.csv"
NY = ZoneInfo("America/New_York")
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def ingest(database_url: str) -> Iterator[Any]:
    with asyncio.Runner() as runner:
        pool = runner.run(db.open_async_pool(database_url, get_settings()))

        def run(path: Path, execution_id: str) -> dict[str, Any]:
            return runner.run(
                ingest_file(
                    pool,
                    execution_id=execution_id,
                    path=path,
                    source_file=path.name,
                    market_tz="America/New_York",
                )
            )

        try:
            yield run
        finally:
            runner.run(pool.close())


def _days_of(path: Path) -> set[str]:
    days = set()
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                at = datetime.fromisoformat(row["executed_at"])
            except (TypeError, ValueError):
                continue
            if at.tzinfo is not None:
                days.add(at.astimezone(NY).date().isoformat())
    return days


def _recorded(conn: Conn) -> dict[tuple[str, str], list[str | None]]:
    rows = conn.execute(
        "SELECT dataset, partition_key, execution_id FROM dataset_materializations ORDER BY id"
    ).fetchall()
    found: dict[tuple[str, str], list[str | None]] = {}
    for r in rows:
        found.setdefault((r["dataset"], r["partition_key"]), []).append(r["execution_id"])
    return found


def test_a_load_records_the_days_it_touched_then_a_correction_only_its_days(
    ingest: Any, conn: Conn, tmp_path: Path
) -> None:
    summary = ingest(SAMPLE, "first")
    # One set of row-count names, the old ones kept as aliases.
    assert (summary["changed"], summary["unchanged"]) == (
        summary["corrections"],
        summary["duplicates"],
    )
    days = _days_of(SAMPLE)
    recorded = _recorded(conn)
    assert {k for d, k in recorded if d == "otc_trades"} == days
    assert {k for d, k in recorded if d == "otc_metrics_daily"} == days
    assert all(ids == ["first"] for ids in recorded.values())

    with SAMPLE.open(newline="", encoding="utf-8") as f:
        first_row = next(csv.DictReader(f))
    corrected_day = datetime.fromisoformat(first_row["executed_at"]).astimezone(NY).date()
    first_row["price"] = str(float(first_row["price"]) + 1)
    fields = ["trade_id", "symbol", "executed_at", "price", "size", "side", "venue"]
    late_night = "TNEW-1,ACME,2026-01-10T00:20:00Z,10.00,100,B,PPEX"  # Friday in New York
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(
        ",".join(fields) + "\n" + ",".join(first_row[k] for k in fields) + "\n" + late_night + "\n",
        encoding="utf-8",
    )
    again = ingest(corrected, "second")
    assert (again["inserted"], again["changed"]) == (1, 1)
    touched = {corrected_day.isoformat(), date(2026, 1, 9).isoformat()}
    after = _recorded(conn)
    for (dataset, key), ids in after.items():
        assert ids == (["first", "second"] if key in touched & days else
                       ["second"] if key in touched else ["first"]), (dataset, key)  # fmt: skip
    (trades_day,) = conn.execute(
        "SELECT inserted, superseded_id IS NOT NULL AS supersedes FROM dataset_materializations"
        " WHERE dataset = 'otc_trades' AND partition_key = %s AND execution_id = 'second'",
        (corrected_day.isoformat(),),
    ).fetchall()
    assert trades_day == {"inserted": 1, "supersedes": True}
