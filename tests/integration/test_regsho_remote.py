"""Reg SHO fetched from FINRA's CDN layout (issue 28), through a real HTTP publisher in the
test process (tests/publishers.py) serving the committed files, and real pools.

A backfill of the four committed days x six markets with nothing landed fetches all
24 files, byte for byte, loads them, and computes each day of `short_volume_daily`
once its six files are there (no second backfill). A market holiday (2020-01-20) is
`no_data` before anyone asks, and a backfill of it records `no_data` without a
single request to the publisher.
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
from app.catalog import DOMAINS, default_registry, store_graph
from app.config import get_settings
from app.engine import backfills, partitions
from app.engine.backends import make_backend
from tests.publishers import Publisher, serving
from tests.support import wait_until, worker_pool

Conn = psycopg.Connection[dict[str, Any]]
ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "data" / "regsho"
DAILY = DOMAINS.datasets().get("regsho_daily")
DERIVED = DOMAINS.datasets().get("short_volume_daily")
DAYS = ("2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07")
HOLIDAY = "2020-01-20"  # Martin Luther King Jr. Day: the NYSE is closed


@pytest.fixture
def runner(database_url: str) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


def _backfill(runner: asyncio.Runner, url: str, first: str, last: str, only: Any) -> Any:
    async def go() -> backfills.Backfill:
        settings = get_settings()
        async with await db.aconnect(url) as conn:
            return await backfills.create(
                conn, default_registry(), settings, make_backend(settings), DAILY,
                from_key=first, to_key=last, only=only, sources={},
            )  # fmt: skip

    return runner.run(go())


def _states(runner: asyncio.Runner, url: str, dataset: Any, first: str, last: str) -> list[str]:
    async def go() -> list[str]:
        async with await db.aconnect(url) as conn:
            parts = dataset.partitions(date.fromisoformat(first), date.fromisoformat(last))
            return [r.state for r in await partitions.states(conn, dataset, parts)]

    return runner.run(go())


def _explain(conn: Conn) -> str:
    """What ran and what was recorded: the message of a wait that timed out."""
    ran = conn.execute(
        "SELECT pipeline, status, params->>'key' AS key, params->>'date' AS day, error"
        " FROM executions ORDER BY created_at"
    ).fetchall()
    made = conn.execute(
        "SELECT dataset, partition_key, outcome FROM dataset_materializations ORDER BY id"
    ).fetchall()
    return "\n".join(["executions:", *map(str, ran), "materializations:", *map(str, made)])


async def _store_graph(url: str) -> None:
    async with await db.aconnect(url) as conn:
        await store_graph(conn)


@pytest.mark.slow
def test_a_backfill_fetches_the_four_days_and_a_holiday_is_no_data(
    database_url: str,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    with serving(Publisher({"/equity/regsho/daily": FILES})) as publisher:
        env = {
            "SPINE_DATA_DIR": str(landing),
            "SPINE_SOURCE_FINRA_CDN": publisher.url,
            "SPINE_HTTP_USER_AGENT": "Market Spine tests ops@example.com",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

        assert set(_states(runner, database_url, DAILY, HOLIDAY, HOLIDAY)) == {"no_data"}
        runner.run(_store_graph(database_url))  # as `spine db init` does, before any load
        made = _backfill(runner, database_url, DAYS[0], DAYS[-1], "missing")
        assert [i.outcome for i in made.items] == ["submitted"] * 24
        with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log", **env):
            try:
                wait_until(
                    lambda: (
                        set(_states(runner, database_url, DERIVED, DAYS[0], DAYS[-1])) == {"loaded"}
                    ),
                    timeout=300,
                )
            except AssertionError as exc:
                raise AssertionError(_explain(conn)) from exc
            holiday = _backfill(runner, database_url, HOLIDAY, HOLIDAY, "all")
            assert [i.outcome for i in holiday.items] == ["submitted"] * 6
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT count(*) AS n FROM dataset_materializations"
                        " WHERE dataset = 'regsho_daily' AND outcome = 'no_data'"
                    ).fetchone()
                    == {"n": 6}
                ),
                timeout=120,
            )
            wait_until(  # the propagation passes the last loads asked for have run too
                lambda: (
                    conn.execute(
                        "SELECT count(*) AS n FROM executions WHERE status <> 'completed'"
                    ).fetchone()
                    == {"n": 0}
                ),
                timeout=120,
            )
        assert set(_states(runner, database_url, DAILY, DAYS[0], DAYS[-1])) == {"loaded"}
        assert set(_states(runner, database_url, DAILY, HOLIDAY, HOLIDAY)) == {"no_data"}
        assert set(_states(runner, database_url, DERIVED, HOLIDAY, HOLIDAY)) == {"no_data"}
        # Each file asked once, none on the holiday; each landed byte for byte (CRLF kept).
        assert publisher.count(status=200) == 24
        assert not [p for _, p, _ in publisher.requests if "20200120" in p]
        for path in sorted(FILES.glob("*shvol*.txt")):
            assert (landing / "remote" / "regsho" / path.name).read_bytes() == path.read_bytes()
    # One computation per day, made by propagation once the day's six files were there.
    computed = conn.execute(
        "SELECT params->>'date' AS day, count(*) AS n FROM executions"
        " WHERE pipeline = 'regsho_compute' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert computed == [{"day": d, "n": 1} for d in DAYS]
