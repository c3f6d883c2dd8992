"""Market Spine in the peers' scenarios: its real worker pool, its real `submit`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine.backends import make_backend
from app.engine.submit import submit
from bench.harness import WorkerPool, connect
from bench.scenarios import drain

# Every execution started once and ended once: the exactly-once check on the product's events.
_ONCE = """
SELECT count(*) FILTER (WHERE started <> 1 OR ended <> 1) AS wrong, count(*) AS n
FROM (
    SELECT e.id,
           count(*) FILTER (WHERE v.event_type = 'started') AS started,
           count(*) FILTER (WHERE v.event_type = 'completed') AS ended
    FROM executions e LEFT JOIN execution_events v ON v.execution_id = e.id
    GROUP BY e.id
) per_execution
"""
# Every submit stored its execution and its `created` event.
_SUBMITTED = """
SELECT (SELECT count(*) FROM executions) AS executions,
       (SELECT count(*) FROM execution_events WHERE event_type = 'created') AS created
"""
_LATENCY = """
SELECT extract(epoch FROM timestamp) AS started
FROM execution_events WHERE execution_id = %s AND event_type = 'started'
"""


def run_drain(url: str, n: int, processes: int, log: Path) -> float:
    """Seconds for a fresh `spine worker start --max-concurrent K` to drain n noops."""
    with WorkerPool(url, processes, log) as pool:
        seconds = drain._drain_spine(url, n, pool).seconds
    with connect(url) as conn:
        row = conn.execute(_ONCE).fetchone()
    assert row is not None
    if row["wrong"] or row["n"] != n:
        raise RuntimeError(f"Market Spine: not exactly once ({row['wrong']} of {row['n']})")
    return seconds


TRUNCATE = "TRUNCATE executions, execution_events"
QUEUED = "SELECT count(*) AS n FROM executions"


@asynccontextmanager
async def submitter(url: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """Submit one noop (the product's `submit`), on one connection held for the run."""
    registry, settings = default_registry(), get_settings()
    backend = make_backend(settings)
    async with await db.aconnect(url) as conn:

        async def one(i: int) -> None:
            await submit(
                conn, registry, settings, "noop", {}, trigger_source="bench", backend=backend
            )

        yield one


def check_submits(url: str, n: int) -> None:
    """Each submit stored its execution and its `created` event."""
    with connect(url) as conn:
        row = conn.execute(_SUBMITTED).fetchone()
    assert row is not None
    if row["executions"] != n or row["created"] != n:
        raise RuntimeError(f"Market Spine: {row} recorded for {n} submits")


def run_wakeup(
    url: str, count: int, processes: int, pause: tuple[float, float], log: Path
) -> list[float]:
    """ms from just before `submit` to the execution's `started` event, the pool idle."""
    with WorkerPool(url, processes, log):
        return asyncio.run(_latencies(url, count, pause))


async def _latencies(url: str, count: int, pause: tuple[float, float]) -> list[float]:
    registry, settings = default_registry(), get_settings()
    backend = make_backend(settings)
    out: list[float] = []
    async with await db.aconnect(url) as conn:
        for _ in range(count):
            before = time.time()
            execution, _created = await submit(
                conn, registry, settings, "noop", {}, trigger_source="bench", backend=backend
            )
            started = await _started(conn, execution.id)
            out.append((started - before) * 1000)
            await asyncio.sleep(random.uniform(*pause))  # jitter, not crypto
    return out


async def _started(conn: Any, execution_id: str) -> float:
    deadline = time.monotonic() + 30
    while True:
        cur = await conn.execute(_LATENCY, (execution_id,))
        row = await cur.fetchone()
        if row is not None:
            return float(row["started"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_id} was not started within 30s")
        await asyncio.sleep(0.002)
