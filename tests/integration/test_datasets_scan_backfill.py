"""Scans and backfills through real worker pools, on FINRA's real files and the OTC sample.

- Two of the three FINRA weeks landed and scanned: exactly two executions,
  two `loaded` partitions with the files' sha256, the third `late` past its
  deadline; scanning again creates nothing; a doctored restatement is picked
  up by the next scan with its inserted, changed and removed counts.
- Two identical `--only all` backfills of otc_metrics_daily at once create
  one execution per day; `--only failed` re-runs only the failed days.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import DOMAINS, default_registry
from app.config import get_settings
from app.engine import backfills, partitions, scans
from app.engine.backends import make_backend
from app.engine.backfills import Backfill
from app.engine.scans import ScanResult
from app.otc.pipelines import ingest_file
from tests.finra_support import WEEK_FILES
from tests.support import status_counts, wait_until, worker_pool

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[dict[str, Any]]
DATASETS = DOMAINS.datasets()
FINRA = DATASETS.get("finra_otc_weekly")
METRICS = DATASETS.get("otc_metrics_daily")
AFTER_DEADLINES = datetime(2026, 2, 10, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    landing = tmp_path / "landing"
    (landing / "finra").mkdir(parents=True)
    monkeypatch.setenv("SPINE_DATA_DIR", str(landing))
    get_settings.cache_clear()
    return landing


@pytest.fixture
def runner(database_url: str) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


def _scan(runner: asyncio.Runner, url: str) -> ScanResult:
    async def go() -> ScanResult:
        settings = get_settings()
        async with await db.aconnect(url) as conn:
            return await scans.scan(
                conn, default_registry(), settings, make_backend(settings), FINRA
            )

    return runner.run(go())


def _completed(conn: Conn, n: int) -> bool:
    counts = status_counts(conn)
    return counts.get("completed", 0) == n and sum(counts.values()) == n


def _states(runner: asyncio.Runner, url: str, dataset: Any, keys: list[str]) -> dict[str, str]:
    async def go() -> list[partitions.PartitionRow]:
        async with await db.aconnect(url) as conn:
            parts = [dataset.partition(k) for k in keys]
            return await partitions.states(conn, dataset, parts, now=AFTER_DEADLINES)

    return {r.key: r.state for r in runner.run(go())}


def test_scans_materialize_each_change_of_a_landed_file_once(
    database_url: str, data_dir: Path, conn: Conn, runner: asyncio.Runner, tmp_path: Path
) -> None:
    weeks = sorted(WEEK_FILES)
    for week in weeks[:2]:
        shutil.copy2(WEEK_FILES[week], data_dir / "finra" / WEEK_FILES[week].name)
    first = _scan(runner, database_url)
    assert (first.files, first.hashed) == (2, 0)
    assert first.submitted == [f"{w}/OTC" for w in weeks[:2]]
    env = {"SPINE_DATA_DIR": str(data_dir)}
    with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log", **env):
        wait_until(lambda: _completed(conn, 2))
        keys = [f"{w}/OTC" for w in weeks]
        assert _states(runner, database_url, FINRA, keys) == {
            keys[0]: "loaded", keys[1]: "loaded", keys[2]: "late",
        }  # fmt: skip
        shas = conn.execute(
            "SELECT partition_key, source_sha256 FROM dataset_materializations ORDER BY 1"
        ).fetchall()
        assert [r["source_sha256"] for r in shas] == [
            hashlib.sha256(WEEK_FILES[w].read_bytes()).hexdigest() for w in weeks[:2]
        ]
        again = _scan(runner, database_url)
        assert (again.submitted, again.joined, again.hashed) == ([], [], 0)
        assert status_counts(conn) == {"completed": 2}

        # FINRA republishes the first week: one row changed, one dropped, one new.
        landed = data_dir / "finra" / WEEK_FILES[weeks[0]].name
        lines = landed.read_text(encoding="utf-8").splitlines()
        rows = [r.replace("|2025-12-15", "|2025-12-19") for r in lines[1:]]
        fields = rows[0].split("|")
        fields[5] = str(int(fields[5]) + 7)
        new_row = "OTC|ZZZZ|Made Up Inc|NEW VENUE|ZZZZ|10|1|2025-12-19"
        body = [lines[0], "|".join(fields), *rows[2:], new_row]
        landed.write_text("".join(f"{line}\n" for line in body), encoding="utf-8")
        restated = _scan(runner, database_url)
        assert (restated.submitted, restated.hashed) == ([keys[0]], 1)
        wait_until(lambda: _completed(conn, 3))
    lineage = conn.execute(
        "SELECT inserted, changed, removed, source_sha256, superseded_id IS NOT NULL AS sup"
        " FROM dataset_materializations WHERE partition_key = %s ORDER BY id DESC",
        (keys[0],),
    ).fetchall()
    assert lineage[0] == {
        "inserted": 1,
        "changed": 1,
        "removed": 1,
        "source_sha256": hashlib.sha256(landed.read_bytes()).hexdigest(),
        "sup": True,
    }
    assert len(lineage) == 2


def _backfill(runner: asyncio.Runner, url: str, first: str, last: str, only: Any) -> Backfill:
    async def one() -> Backfill:
        settings = get_settings()
        async with await db.aconnect(url) as conn:
            return await backfills.create(
                conn,
                default_registry(),
                settings,
                make_backend(settings),
                METRICS,
                from_key=first,
                to_key=last,
                only=only,
            )

    return runner.run(one())


def test_concurrent_identical_backfills_create_each_execution_once(
    database_url: str, conn: Conn, runner: asyncio.Runner, tmp_path: Path
) -> None:
    async def load_sample() -> None:
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            await ingest_file(
                pool,
                execution_id="sample",
                path=ROOT / "data" / "otc_sample.csv",
                source_file="otc_sample.csv",
                market_tz="America/New_York",
            )
        finally:
            await pool.close()

    runner.run(load_sample())
    days = [
        str(r["partition_key"])
        for r in conn.execute(
            "SELECT DISTINCT partition_key FROM dataset_materializations"
            " WHERE dataset = 'otc_metrics_daily' ORDER BY 1"
        ).fetchall()
    ]
    first, last = days[0], days[-1]
    weekdays = [
        p.key for p in METRICS.partitions(date.fromisoformat(first), date.fromisoformat(last))
    ]

    async def both() -> list[Backfill]:
        settings = get_settings()

        async def one() -> Backfill:
            async with await db.aconnect(database_url) as c:
                return await backfills.create(
                    c, default_registry(), settings, make_backend(settings), METRICS,
                    from_key=first, to_key=last, only="all",
                )  # fmt: skip

        return list(await asyncio.gather(one(), one()))

    a, b = runner.run(both())
    if a.id == b.id:  # asked at once: one submitted, the other joined that backfill
        assert [a.joined, b.joined].count(True) == 1
    else:  # the second asked only after the first had committed: it joins its executions
        later = max(a, b, key=lambda backfill: backfill.created_at)
        assert {i.outcome for i in later.items} == {"joined"}
    assert sorted(i.key for i in a.items) == weekdays
    made = conn.execute(
        "SELECT logical_key, count(*) AS n FROM executions WHERE lane = 'backfill'"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [r["logical_key"] for r in made] == [f"dataset:otc_metrics_daily:{d}" for d in weekdays]
    assert {r["n"] for r in made} == {1}

    # Two days fail (made to fail before any pool runs them); the rest complete.
    failing = weekdays[1:3]
    conn.execute(
        "UPDATE executions SET status = 'failed', completed_at = now() WHERE logical_key = ANY(%s)",
        ([f"dataset:otc_metrics_daily:{d}" for d in failing],),
    )
    with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log"):
        n = len(weekdays)
        wait_until(lambda: status_counts(conn) == {"completed": n - 2, "failed": 2})
        states = _states(runner, database_url, METRICS, weekdays)
        assert {k for k, s in states.items() if s == "failed"} == set(failing)
        retry = _backfill(runner, database_url, first, last, "failed")
        assert sorted(i.key for i in retry.items) == failing
        assert {i.outcome for i in retry.items} == {"submitted"}
        wait_until(lambda: status_counts(conn) == {"completed": n, "failed": 2})
    assert set(_states(runner, database_url, METRICS, weekdays).values()) == {"loaded"}
