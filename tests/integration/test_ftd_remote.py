"""SEC fails-to-deliver fetched from the SEC's URL layout (issue 29), zipped as the SEC
serves them, through a real HTTP publisher in the test process (tests/publishers.py)
and a real pool.

`spine backfill sec_ftd --from 2022-12a --to 2023-02a` with nothing landed fetches the
five zips, unzips each into the landing area (the SEC's bytes exactly) and loads the
five periods; the same backfill again transfers nothing (every fetch is a 304); a
corrupt zip is a permanent error, one line, and nothing lands.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import DOMAINS, default_registry
from app.config import get_settings
from app.engine import backfills, partitions
from app.engine.backends import make_backend
from tests.ftd_support import FILES
from tests.publishers import Publisher, serving
from tests.support import status_counts, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, Any]]
LAYOUT = "/files/data/fails-deliver-data"
PERIODS = sorted(FILES)


@pytest.fixture
def runner(database_url: str) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


def _zips(directory: Path) -> Path:
    """Each committed file zipped under the SEC's zip name, its member named as published."""
    directory.mkdir()
    for period, path in FILES.items():
        month, half = period[:7].replace("-", ""), period[-1]
        with zipfile.ZipFile(
            directory / f"cnsfails{month}{half}.zip", "w", zipfile.ZIP_DEFLATED
        ) as z:
            z.write(path, arcname=path.name)
    return directory


def _backfill(runner: asyncio.Runner, url: str, first: str, last: str) -> Any:
    async def go() -> backfills.Backfill:
        settings = get_settings()
        dataset = DOMAINS.datasets().get("sec_ftd")
        async with await db.aconnect(url) as conn:
            return await backfills.create(
                conn, default_registry(), settings, make_backend(settings), dataset,
                from_key=first, to_key=last, only="all", sources={},
            )  # fmt: skip

    return runner.run(go())


def _states(runner: asyncio.Runner, url: str) -> list[str]:
    async def go() -> list[str]:
        dataset = DOMAINS.datasets().get("sec_ftd")
        async with await db.aconnect(url) as conn:
            parts = [dataset.partition(p) for p in PERIODS]
            return [r.state for r in await partitions.states(conn, dataset, parts)]

    return runner.run(go())


def _ended(conn: Conn, n: int) -> bool:
    counts = status_counts(conn)
    return sum(counts.get(s, 0) for s in ("completed", "failed")) == n == sum(counts.values())


@pytest.mark.slow
def test_a_backfill_fetches_the_five_zipped_periods_then_nothing_then_refuses_a_bad_zip(
    database_url: str,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    zips = _zips(tmp_path / "sec")
    with serving(Publisher({LAYOUT: zips})) as publisher:
        env = {
            "SPINE_DATA_DIR": str(landing),
            "SPINE_SOURCE_SEC": publisher.url,
            "SPINE_HTTP_USER_AGENT": "Market Spine tests ops@example.com",
            "SPINE_RETRY_MAX_BACKOFF": "0",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        assert [p[:7] for p in PERIODS] and PERIODS[0] == "2022-12a" and PERIODS[-1] == "2023-02a"
        made = _backfill(runner, database_url, PERIODS[0], PERIODS[-1])
        assert [i.outcome for i in made.items] == ["submitted"] * 5
        with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log", **env):
            wait_until(lambda: _ended(conn, 5), timeout=300)
            assert _states(runner, database_url) == ["loaded"] * 5
            assert publisher.count(status=200) == 5
            for period, path in FILES.items():
                month, half = period[:7].replace("-", ""), period[-1]
                landed = landing / "remote" / "ftd" / f"cnsfails{month}{half}.txt"
                assert landed.read_bytes() == path.read_bytes()
            assert not list(landing.rglob("*.part"))

            again = _backfill(runner, database_url, PERIODS[0], PERIODS[-1])
            assert [i.outcome for i in again.items] == ["submitted"] * 5
            wait_until(lambda: _ended(conn, 10), timeout=120)
            assert publisher.count(status=304) == 5  # transferred nothing
            assert conn.execute("SELECT count(*) AS n FROM ftd_loads").fetchone() == {"n": 5}

            bad = zips / "cnsfails202302a.zip"
            bad.write_bytes(b"PK\x03\x04 this is not a zip the SEC would send")
            publisher.new_etag(f"{LAYOUT}/cnsfails202302a.zip")
            refused = _backfill(runner, database_url, "2023-02a", "2023-02a")
            assert [i.outcome for i in refused.items] == ["submitted"]
            wait_until(lambda: _ended(conn, 11), timeout=120)
    row = conn.execute(
        "SELECT status, attempt, error FROM executions WHERE id = %s",
        (refused.items[0].execution_id,),
    ).fetchone()
    assert row is not None and (row["status"], row["attempt"]) == ("failed", 1)
    assert "zip" in row["error"].lower() and "\n" not in row["error"].strip()
    # The loaded period is untouched: its file and its rows are the ones loaded before.
    landed = landing / "remote" / "ftd" / "cnsfails202302a.txt"
    assert landed.read_bytes() == FILES["2023-02a"].read_bytes()
