"""A scan of 10,000 unchanged landed files reads stats only: nothing hashed, nothing
submitted, every file found, run after run.

How fast it is, and a backfill's drain against a plain one, are measured in
`python -m bench --only datasets` beside their floors (docs/benchmarks.md),
not asserted here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import scans
from app.engine.backends import make_backend
from app.engine.datasets import Dataset, Partition

Conn = psycopg.Connection[dict[str, Any]]
LIVE = (
    "SELECT count(*) AS n FROM workers"
    " WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '30 seconds'"
)
KEY2 = tuple(f"V{i:02d}" for i in range(10))


def _noop_params(p: Partition, path: str | None) -> dict[str, Any]:
    return {}


def _dataset(**kw: Any) -> Dataset:
    base: dict[str, Any] = {
        "name": "bench",
        "description": "bench",
        "scheme": "day",
        "pipeline": "noop",
        "params": _noop_params,
        "start": date(2020, 1, 1),
    }
    return Dataset(**{**base, **kw})


@pytest.mark.slow
def test_a_scan_of_10000_unchanged_files_hashes_and_submits_nothing(
    database_url: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    (landing / "bench").mkdir(parents=True)
    monkeypatch.setenv("SPINE_DATA_DIR", str(landing))
    get_settings.cache_clear()
    dataset = _dataset(key2=KEY2, landing="bench/{key2}_{day:%Y%m%d}.txt")
    parts = dataset.partitions(date(2020, 1, 1), date(2023, 12, 31))[:10_000]
    assert len(parts) == 10_000
    rows = []
    for p in parts:
        name = f"bench/{p.key2}_{p.start:%Y%m%d}.txt"
        path = landing / name
        path.write_bytes(b"x")
        st = path.stat()
        rows.append((p.key, name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY dataset_materializations (dataset, partition_key, source_path, source_bytes,"
            " source_mtime, source_sha256, content_changed) FROM STDIN"
        ) as copy,
    ):
        for key, name, size, mtime in rows:
            copy.write_row(("bench", key, name, size, mtime, "sha", True))
    settings = get_settings()

    async def once() -> scans.ScanResult:
        async with await db.aconnect(database_url) as c:
            return await scans.scan(
                c, default_registry(), settings, make_backend(settings), dataset
            )

    for _ in range(2):
        found = asyncio.run(once())
        assert (found.files, found.hashed, found.submitted, found.joined) == (10_000, 0, [], [])
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 0}
