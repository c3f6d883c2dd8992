"""All five real half-months (about 300,000 rows), and the worker's memory on a big file.

Slow: the module loads the five files once, through the engine, and reads them
many times; expected numbers come from the files (Python `csv` and `Decimal`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.ftd import reads
from tests.api_support import api_client
from tests.ftd_support import FILES, HEADER, consecutive_days, module_database, read_file
from tests.integration.test_ftd_real import get
from tests.integration.test_ingest_memory import PEAK_LIMIT_MB, peak_rss_mb
from tests.support import (
    run_inline,
    status_counts,
    submit_many,
    wait_until,
    worker_pid,
    worker_pool,
)

pytestmark = pytest.mark.slow
BASE = "/api/v1/ftd"


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """The five files loaded through the engine, with each execution's summary."""
    with module_database() as url:
        summaries: dict[str, dict[str, Any]] = {}
        for period, path in FILES.items():
            params = {"file": f"ftd/{path.name}"}
            done = asyncio.run(run_inline(url, "sec_ftd_ingest", params))
            assert done.status == "completed", done.error
            summaries[period] = summary_of(url, done.id)
        yield url, summaries


def summary_of(url: str, execution_id: str) -> dict[str, Any]:
    """The summary the execution's load committed (what the execution returned)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT summary FROM ftd_loads WHERE execution_id = %s", (execution_id,)
        ).fetchone()
    assert row is not None and isinstance(row[0], dict)
    return row[0]


@pytest.fixture(scope="module")
def rows() -> list[Any]:
    return [r for path in FILES.values() for r in read_file(path).rows]


async def test_every_file_count_and_total_equal_its_trailers_and_what_was_loaded(
    loaded: tuple[str, dict[str, dict[str, Any]]],
) -> None:
    _, summaries = loaded
    async with api_client() as client:
        periods = {p["period"]: p for p in await get(client, f"{BASE}/periods")}
    assert list(periods) == list(FILES)
    for period, path in FILES.items():
        file = read_file(path)
        count, total = len(file.rows), sum(r.quantity for r in file.rows)
        assert (count, total) == (file.trailer_count, file.trailer_total)
        summary = summaries[period]
        assert (summary["loaded_rows"], summary["loaded_quantity"]) == (count, total)
        assert summary["rejected"] == 0 and summary["rejects_by_reason"] == {}
        assert (periods[period]["rows"], periods[period]["total_quantity"]) == (count, total)
        assert periods[period]["trailer_matches"] is True
        print(f"\n{path.name}: {count} rows, db_seconds {summary['db_seconds']}")


@pytest.mark.parametrize("symbol", ["EURN", "NOPE", "AAPJ"])
async def test_consecutive_days_over_every_period(
    loaded: tuple[str, dict[str, dict[str, Any]]], rows: list[Any], symbol: str
) -> None:
    day = date(2023, 2, 14)
    expected = consecutive_days(rows, symbol, day)
    async with api_client() as client:
        got = await get(client, f"{BASE}/symbols/{symbol}/history?start_date={day}")
    assert [(g["settlement_date"], g["consecutive_days"]) for g in got] == (
        [(day.isoformat(), expected)] if expected else []
    )


async def test_a_cusip_keeps_every_symbol_it_had(
    loaded: tuple[str, dict[str, dict[str, Any]]], rows: list[Any]
) -> None:
    cusip = "G73268149"
    mine = sorted((r for r in rows if r.cusip == cusip), key=lambda r: r.settlement_date)
    runs: list[list[Any]] = []
    for r in mine:
        if runs and (runs[-1][0], runs[-1][1]) == (r.symbol, r.description):
            runs[-1][3], runs[-1][4] = r.settlement_date.isoformat(), runs[-1][4] + 1
        else:
            runs.append(
                [
                    r.symbol,
                    r.description,
                    r.settlement_date.isoformat(),
                    r.settlement_date.isoformat(),
                    1,
                ]
            )
    async with api_client() as client:
        got = await get(client, f"{BASE}/cusips/{cusip}")
    assert [
        [g["symbol"], g["description"], g["first_date"], g["last_date"], g["settlement_dates"]]
        for g in got
    ] == runs
    assert len({g["symbol"] for g in got}) > 1


def test_the_same_file_again_changes_nothing(
    loaded: tuple[str, dict[str, dict[str, Any]]],
) -> None:
    url, _ = loaded
    path = FILES["2023-01b"]
    done = asyncio.run(run_inline(url, "sec_ftd_ingest", {"file": f"ftd/{path.name}"}))
    result = summary_of(url, done.id)
    count = read_file(path).trailer_count
    counts = {k: result[k] for k in ("inserted", "changed", "removed", "unchanged")}
    assert counts == {"inserted": 0, "changed": 0, "removed": 0, "unchanged": count}

    async def latest() -> date | None:
        async with await db.aconnect(url) as conn:
            return await reads.latest_date(conn)

    assert asyncio.run(latest()) == date(2023, 2, 14)


ROWS = 60_000
DESCRIPTION_BYTES = 1_000  # about 1 KB a line: a 60 MB file of 60,000 valid rows


def test_a_60_mb_half_month_ingests_under_the_memory_bound(
    conn: psycopg.Connection[dict[str, object]], database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "ftd").mkdir(parents=True)
    path = data / "ftd" / "cnsfails202301a.txt"
    description = "D" * DESCRIPTION_BYTES
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for i in range(ROWS):
            f.write(f"2023010{3 + i % 7}|{_cusip(i)}|S{i}|{i + 1}|{description}|1.25\n")
        f.write(f"Trailer record count {ROWS}\n")
        f.write(f"Trailer total quantity of shares {ROWS * (ROWS + 1) // 2}\n")
    size = path.stat().st_size
    submit_many(conn, "sec_ftd_ingest", 1, '{"file": "ftd/cnsfails202301a.txt"}')
    with worker_pool(database_url, 1, tmp_path / "pool.log", SPINE_DATA_DIR=str(data)):
        wait_until(
            lambda: set(status_counts(conn)) <= {"completed", "failed"}, timeout=600, interval=0.5
        )
        row = conn.execute(
            "SELECT e.status, e.worker_id, e.error, ev.payload -> 'result' AS result "
            "FROM executions e LEFT JOIN execution_events ev "
            "ON ev.execution_id = e.id AND ev.event_type = 'completed'"
        ).fetchone()
        assert row is not None and row["status"] == "completed", row
        peak = peak_rss_mb(worker_pid(str(row["worker_id"])))
    result = row["result"]
    assert isinstance(result, dict)
    assert result["loaded_rows"] == ROWS and result["file_bytes"] == size
    print(f"\nworker peak RSS {peak:.0f} MB for a {size / 1e6:.0f} MB FTD file")
    assert peak < PEAK_LIMIT_MB, f"worker peak RSS {peak:.0f} MB"


def _cusip(i: int) -> str:
    """A valid CUSIP for each i (eight digits of i, then its check digit)."""
    body = f"{i:08d}"
    total = 0
    for n, ch in enumerate(body):
        v = int(ch) * (2 if n % 2 else 1)
        total += v // 10 + v % 10
    return body + str((10 - total % 10) % 10)
