"""finra_weekly_ingest keeps the worker's memory bounded whatever the file's size (issue 31).

It used to read the whole file (up to its 256 MiB cap): the worker child
peaked at 537 MB on a 250 MB file. Measured as in test_ingest_memory.py: the
peak resident set (VmHWM) of the real worker child that ran the ingest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.finra.connector import HEADER
from tests.integration.test_ingest_memory import PEAK_LIMIT_MB, peak_rss_mb
from tests.support import status_counts, submit_many, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, object]]

pytestmark = pytest.mark.slow

ROWS = 250_000
NAME_BYTES = 960  # about 1 KB a line: a 250 MB file of 250,000 valid rows


def _write_week(path: Path) -> int:
    """A valid week (2025-12-15) of ROWS symbols at one venue; returns the file's size."""
    name = "N" * NAME_BYTES
    with open(path, "wb") as f:
        f.write(HEADER.encode() + b"\n")
        for start in range(0, ROWS, 10_000):
            lines = (
                f"NMS Tier 1|S{i:07d}|{name}|Venue One|ONEV|{i + 1}|1|2025-12-15\n"
                for i in range(start, min(start + 10_000, ROWS))
            )
            f.write("".join(lines).encode())
    return path.stat().st_size


def _ingest_peak(conn: Conn, database_url: str, tmp_path: Path, data: Path) -> tuple[Any, float]:
    """Run the ingest of data/week.txt on a real worker child: (its summary, its peak MB)."""
    submit_many(conn, "finra_weekly_ingest", 1, '{"file": "week.txt"}')
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
    (data / "week.txt").unlink()
    assert isinstance(row["result"], dict)
    return row["result"], peak


def test_a_250_mb_week_ingests_under_100_mb(conn: Conn, database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    size = _write_week(data / "week.txt")
    assert 245_000_000 < size < 256 * 1024 * 1024
    result, peak = _ingest_peak(conn, database_url, tmp_path, data)
    assert result["rows_read"] == result["inserted"] == ROWS
    assert result["file_bytes"] == size
    print(f"\nworker peak RSS {peak:.0f} MB for a {size / 1e6:.0f} MB FINRA file")
    assert peak < PEAK_LIMIT_MB, f"worker peak RSS {peak:.0f} MB"


def test_a_million_invalid_lines_ingest_under_100_mb(
    conn: Conn, database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = 1_000_000
    (data / "week.txt").write_bytes(HEADER.encode() + b"\n" + b"not|a|row\n" * lines)
    result, peak = _ingest_peak(conn, database_url, tmp_path, data)
    assert result["rows_read"] == result["rejected"] == lines
    assert result["rejects_by_reason"] == {"wrong_column_count": lines}
    print(f"\nworker peak RSS {peak:.0f} MB for {lines:,} invalid lines")
    assert peak < PEAK_LIMIT_MB, f"worker peak RSS {peak:.0f} MB"
