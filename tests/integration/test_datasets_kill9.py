"""kill -9 of a pool during a backfill: every partition still ends materialized once.

A backfill of otc_metrics_daily over a year of weekdays runs in a real pool;
its worker process is killed with SIGKILL while it holds executions. The
supervisor starts another, the lease sweep gives the dead one's executions
back, and each day ends with exactly one materialization, by its backfill
execution (an execution whose work committed before the kill does not record
its partition twice when it runs again).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import psycopg

from app import db
from app.catalog import DOMAINS, default_registry
from app.config import get_settings
from app.engine import backfills
from app.engine.backends import make_backend
from app.engine.backfills import Backfill
from tests.support import status_counts, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, Any]]
METRICS = DOMAINS.datasets().get("otc_metrics_daily")


def _held_after_some_done(conn: Conn) -> dict[str, Any] | None:
    counts = status_counts(conn)
    if counts.get("completed", 0) < 20:
        return None
    return conn.execute(
        "SELECT worker_id FROM executions WHERE status IN ('queued', 'running') LIMIT 1"
    ).fetchone()


def test_kill_9_during_a_backfill_materializes_each_partition_once(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    settings = get_settings()

    async def create() -> Backfill:
        async with await db.aconnect(database_url) as c:
            return await backfills.create(
                c, default_registry(), settings, make_backend(settings), METRICS,
                from_key="2026-01-05", to_key="2026-12-31", only="all",
            )  # fmt: skip

    made = asyncio.run(create())
    total = len(made.items)
    assert total == 259 and {i.outcome for i in made.items} == {"submitted"}  # weekdays
    pool_settings = {"SPINE_LEASE_TIMEOUT": "1.5"}
    with worker_pool(database_url, 1, tmp_path / "pool.log", **pool_settings):
        held = wait_until(lambda: _held_after_some_done(conn), timeout=60, interval=0.005)
        os.kill(worker_pid(str(held["worker_id"])), signal.SIGKILL)
        wait_until(lambda: status_counts(conn).get("completed") == total, timeout=120)
    rows = conn.execute(
        "SELECT partition_key, count(*) AS n, min(execution_id) AS execution_id"
        " FROM dataset_materializations WHERE dataset = 'otc_metrics_daily'"
        " GROUP BY partition_key ORDER BY partition_key"
    ).fetchall()
    by_key = {i.key: i.execution_id for i in made.items}
    assert len(rows) == total
    assert all(r["n"] == 1 for r in rows), [r for r in rows if r["n"] != 1]
    assert {str(r["partition_key"]): r["execution_id"] for r in rows} == by_key
    log = (tmp_path / "pool.log").read_text(encoding="utf-8", errors="replace")
    assert "requeued" in log or conn.execute(
        "SELECT count(*) AS n FROM execution_events WHERE event_type = 'requeued'"
    ).fetchone() != {"n": 0}
