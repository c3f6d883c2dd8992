"""otc_ingest keeps the worker's memory bounded whatever the file holds.

Measured on a real worker child: its peak resident set (VmHWM in
/proc/<pid>/status) after ingesting 3M lines that all fail the connector's
fast check, so every one of them is flagged for the full parse.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.support import status_counts, submit_many, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, object]]

pytestmark = pytest.mark.slow

LINES = 3_000_000
PEAK_LIMIT_MB = 100


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_3m_flagged_lines_ingest_under_100_mb(
    conn: Conn, database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "flagged.csv", "wb") as f:
        f.write(b"trade_id,symbol,executed_at,price,size,side,venue\n")
        f.write(b"x,y\n" * LINES)  # too few fields: each fails the fast check
    submit_many(conn, "otc_ingest", 1, '{"file": "flagged.csv"}')
    with worker_pool(database_url, 1, tmp_path / "pool.log", SPINE_DATA_DIR=str(data)):
        wait_until(
            lambda: set(status_counts(conn)) <= {"completed", "failed"}, timeout=300, interval=0.5
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
    assert result["rows_read"] == result["rejected"] == LINES
    assert peak < PEAK_LIMIT_MB, f"worker peak RSS {peak:.0f} MB"
