"""Wake-up: submit -> claim latency with the pool idle vs a bare LISTEN/NOTIFY round trip.

Market Spine: `app.engine.submit.submit(conn, registry, settings, "noop")`, one at a time, with the
worker pool idle (the previous execution finished and a short random pause
passed, so the poll timer is not what wakes it). Latency = the `queued`
event's timestamp minus the `created` event's, both `clock_timestamp()` on
the database: the insert, its commit, the NOTIFY, the worker waking, taking a
pooled connection and running the claim.

Baseline: the same number of bare listener processes (psycopg, sync) LISTEN
on a channel; the submitter inserts a row stamped with `clock_timestamp()`
and NOTIFYs in one transaction; a woken listener claims it with FOR UPDATE
SKIP LOCKED, stamping `claimed_at`. Latency = claimed_at - created_at.

With `--celery-broker URL`, the same through a Celery node of as many children
(SPINE_BACKEND=celery: the submit publishes the task after its commit, the broker
delivers it, a child claims by id), beside the same bare baseline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from typing import Any

import psycopg

from app import db
from app.catalog import default_registry
from app.config import Settings, get_settings
from app.engine.backends import make_backend
from app.engine.submit import submit
from bench.context import Context
from bench.harness import Row, Target, WorkerPool, connect, median, percentile, progress

NAME = "wakeup"

_BARE_TABLE = """
DROP TABLE IF EXISTS bench_wake;
CREATE TABLE bench_wake (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status     TEXT NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    claimed_at TIMESTAMPTZ
);
CREATE INDEX bench_wake_pending ON bench_wake (id) WHERE status = 'pending';
"""
_BARE_SUBMIT = """
WITH new AS (INSERT INTO bench_wake DEFAULT VALUES RETURNING id)
SELECT id, pg_notify('bench_wake', id::text) FROM new
"""
_BARE_CLAIM = """
UPDATE bench_wake SET status = 'claimed', claimed_at = clock_timestamp()
WHERE id = (
    SELECT id FROM bench_wake WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
_PAUSE = (0.02, 0.05)  # seconds of idle between submits, drawn at random


def run(ctx: Context) -> None:
    n = ctx.sizes.wakeup_executions
    processes = ctx.sizes.wakeup_processes
    url = ctx.scratch.create(NAME)
    try:
        with connect(url) as conn:
            conn.execute(_BARE_TABLE.encode())
        p50s: list[float] = []
        p99s: list[float] = []
        bare50: list[float] = []
        bare99: list[float] = []
        with WorkerPool(url, processes, ctx.log_path("wakeup-pool")) as _pool:
            for attempt in range(ctx.repeat + 1):
                count = n if attempt else max(10, n // 10)  # a short warm-up
                spine = asyncio.run(_spine_latencies(url, count))
                bare = _bare_latencies(url, count, processes)
                tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                progress(
                    f"wakeup {tag}: spine p50 {median(spine):.2f} p99 {percentile(spine, 99):.2f}"
                    f" ms; bare p50 {median(bare):.2f} p99 {percentile(bare, 99):.2f} ms"
                )
                if attempt:
                    p50s.append(median(spine))
                    p99s.append(percentile(spine, 99))
                    bare50.append(median(bare))
                    bare99.append(percentile(bare, 99))
        label = f"submit -> claim over {n} executions, {processes} idle worker processes"
        notes = {"commit_ms": _commit_ms(url)}
        ctx.rows.append(
            Row(NAME, f"{label}, p50", "ms", p50s, bare50, Target("abs_max", 2.0), notes)
        )
        ctx.rows.append(Row(NAME, f"{label}, p99", "ms", p99s, bare99, Target("abs_max", 5.0)))
        if ctx.celery_broker:
            ctx.rows += _celery_rows(ctx, url, n, processes, ctx.celery_broker)
    finally:
        ctx.scratch.drop(url)


def _celery_rows(ctx: Context, url: str, n: int, processes: int, broker: str) -> list[Row]:
    """The same wake-up through a Celery node (publish, delivery, claim by id)."""
    import uuid

    import msgspec
    from kombu import Connection, Queue

    prefix = f"spine-bench-{uuid.uuid4().hex[:8]}"
    env = {
        "SPINE_BACKEND": "celery",
        "SPINE_CELERY_BROKER_URL": broker,
        "SPINE_CELERY_QUEUE_PREFIX": prefix,
    }
    settings = msgspec.structs.replace(
        get_settings(),
        backend="celery",
        celery_broker_url=broker,
        celery_queue_prefix=prefix,
    )
    p50s: list[float] = []
    p99s: list[float] = []
    bare50: list[float] = []
    bare99: list[float] = []
    try:
        with WorkerPool(url, processes, ctx.log_path("wakeup-celery"), **env):
            for attempt in range(ctx.repeat + 1):
                count = n if attempt else max(10, n // 10)
                spine = asyncio.run(_spine_latencies(url, count, settings))
                bare = _bare_latencies(url, count, processes)
                tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                progress(
                    f"wakeup celery {tag}: spine p50 {median(spine):.2f} "
                    f"p99 {percentile(spine, 99):.2f} ms; bare p50 {median(bare):.2f} ms"
                )
                if attempt:
                    p50s.append(median(spine))
                    p99s.append(percentile(spine, 99))
                    bare50.append(median(bare))
                    bare99.append(percentile(bare, 99))
    finally:
        with Connection(broker, connect_timeout=5) as conn:
            for lane in ("normal", "backfill"):
                Queue(f"{prefix}.{lane}").bind(conn.default_channel).delete()
    label = f"submit -> claim over {n} executions, a Celery node of {processes} children"
    return [
        Row(NAME, f"{label}, p50", "ms", p50s, bare50, Target("abs_max", 2.0)),
        Row(NAME, f"{label}, p99", "ms", p99s, bare99, Target("abs_max", 5.0)),
    ]


async def _spine_latencies(url: str, n: int, settings: Settings | None = None) -> list[float]:
    """Submit `n` noops one at a time through `submit`; ms from created to queued."""
    ids: list[str] = []
    registry, settings = default_registry(), settings or get_settings()
    backend = make_backend(settings)
    async with await db.aconnect(url) as conn:
        for _ in range(n):
            execution, _created = await submit(
                conn, registry, settings, "noop", {}, trigger_source="bench", backend=backend
            )
            ids.append(execution.id)
            deadline = time.monotonic() + 30
            while True:
                cur = await conn.execute(
                    "SELECT status FROM executions WHERE id = %s", (execution.id,)
                )
                row = await cur.fetchone()
                if row is not None and row["status"] in ("completed", "failed", "cancelled"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"execution {execution.id} was not run within 30s")
                await asyncio.sleep(0.002)
            await asyncio.sleep(random.uniform(*_PAUSE))  # jitter, not crypto
        cur = await conn.execute(
            """
            SELECT extract(epoch FROM q.timestamp - c.timestamp) * 1000 AS ms
            FROM execution_events c
            JOIN execution_events q ON q.execution_id = c.execution_id AND q.event_type = 'queued'
            WHERE c.event_type = 'created' AND c.execution_id = ANY(%s)
            """,
            (ids,),
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
    if len(rows) != n:
        raise RuntimeError(f"expected {n} created/queued pairs, found {len(rows)}")
    return [float(r["ms"]) for r in rows]


def _commit_ms(url: str, n: int = 100) -> float:
    """Median round trip of a one-row INSERT committed alone: the floor under both latencies."""
    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id int)")
        for i in range(n):
            began = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe VALUES (%s)", (i,))
            times.append((time.perf_counter() - began) * 1000)
    return median(times)


def _bare_latencies(url: str, n: int, processes: int) -> list[float]:
    """The same loop on a bare table with `processes` bare LISTEN processes."""
    mp = multiprocessing.get_context("spawn")
    ready = mp.Semaphore(0)
    listeners = [
        mp.Process(target=_bare_listener, args=(url, ready), name=f"bench-listen-{i}")
        for i in range(processes)
    ]
    for proc in listeners:
        proc.start()
    try:
        for _ in listeners:
            if not ready.acquire(timeout=60):
                raise TimeoutError("bare listeners did not start")
        with psycopg.connect(url, autocommit=True) as conn:
            first = conn.execute("SELECT coalesce(max(id), 0) FROM bench_wake").fetchone()
            assert first is not None
            for _ in range(n):
                row = conn.execute(_BARE_SUBMIT).fetchone()
                assert row is not None
                deadline = time.monotonic() + 30
                while True:
                    got = conn.execute(
                        "SELECT status FROM bench_wake WHERE id = %s", (row[0],)
                    ).fetchone()
                    if got is not None and got[0] == "claimed":
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError("a bare listener did not claim within 30s")
                    time.sleep(0.002)
                time.sleep(random.uniform(*_PAUSE))
            rows = conn.execute(
                "SELECT extract(epoch FROM claimed_at - created_at) * 1000 FROM bench_wake "
                "WHERE id > %s",
                (first[0],),
            ).fetchall()
            conn.execute("SELECT pg_notify('bench_wake', 'stop')")
    finally:
        for proc in listeners:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [float(r[0]) for r in rows]


def _bare_listener(url: str, ready: Any) -> None:
    with (
        psycopg.connect(url, autocommit=True) as listen,
        psycopg.connect(url, autocommit=True) as work,
    ):
        listen.execute("LISTEN bench_wake")
        work.execute("SELECT 1")
        ready.release()
        for note in listen.notifies():
            if note.payload == "stop":
                return
            while work.execute(_BARE_CLAIM).fetchone() is not None:
                pass
