"""Drain: N `noop` executions through the real worker pool vs a bare SKIP LOCKED loop.

Market Spine: `spine worker start --max-concurrent P` runs as a subprocess and
is ready (every process LISTENs) before anything is enqueued. Then N pending
executions, each with its `created` event, are inserted in one statement with
the same NOTIFY `dispatcher.submit` sends, so every worker wakes at the commit.
Time = last `completed_at` minus the commit (both on the database clock).

Baseline: P processes (psycopg, sync, autocommit) on a bare table with a
partial index on pending rows; each loops "claim one with FOR UPDATE SKIP
LOCKED" + "mark it done" (two short transactions) until the table is empty.
Timed the same way: last `completed_at` minus the moment they are released.

Two batched baselines at the limit, in the same run: the same loop with the
pool's batch size (SPINE_CLAIM_BATCH), one `UPDATE ... FOR UPDATE SKIP LOCKED`
statement claiming a batch and one marking it done; and the same also writing
one event row per transition (claimed, done), as Market Spine writes its
events in the statement of each state change.

`--schedules N` first creates N daily cron schedules (none due while
draining), so the row measures a pool whose scheduler has them to watch.

`--celery-broker URL` adds a row for a Celery node of 2 children (SPINE_BACKEND
=celery) against the same bare baseline: the executions are inserted the same
way, committed and unpublished, so the node's relay publishes them (500 per
pass) and each child claims its message's execution by id.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.synchronize import Event as EventType
from typing import Any

import psycopg

from bench.context import Context
from bench.harness import (
    Row,
    Target,
    WorkerPool,
    connect,
    cpu_seconds,
    median,
    progress,
    wait_until,
)

NAME = "drain"

_ENQUEUE = """
WITH new AS (
    INSERT INTO executions (pipeline, params, lane, trigger_source, backend)
    SELECT 'noop', '{}'::jsonb, 'normal', 'bench', %(backend)s FROM generate_series(1, %(n)s)
    RETURNING id, lane, trigger_source
), created AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'created', jsonb_build_object('trigger_source', trigger_source, 'lane', lane)
    FROM new
)
SELECT count(*) AS n, pg_notify('spine_executions', 'normal') AS notified FROM new
"""

_BARE_TABLE = """
DROP TABLE IF EXISTS bench_jobs;
CREATE TABLE bench_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status       TEXT NOT NULL DEFAULT 'pending',
    worker       INTEGER,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX bench_jobs_pending ON bench_jobs (id) WHERE status = 'pending';
DROP TABLE IF EXISTS bench_job_events;
CREATE TABLE bench_job_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    BIGINT NOT NULL,
    type      TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX bench_job_events_job ON bench_job_events (job_id);
"""

_BARE_CLAIM = """
UPDATE bench_jobs SET status = 'running', worker = %s
WHERE id = (
    SELECT id FROM bench_jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
_BARE_DONE = "UPDATE bench_jobs SET status = 'done', completed_at = clock_timestamp() WHERE id = %s"

_BATCH_CLAIM = """
UPDATE bench_jobs SET status = 'running', worker = %(worker)s
WHERE id IN (
    SELECT id FROM bench_jobs WHERE status = 'pending' ORDER BY id LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
_BATCH_DONE = """
UPDATE bench_jobs SET status = 'done', completed_at = clock_timestamp() WHERE id = ANY(%(ids)s)
"""
_BATCH_CLAIM_EVENTS = """
WITH claimed AS (
    UPDATE bench_jobs SET status = 'running', worker = %(worker)s
    WHERE id IN (
        SELECT id FROM bench_jobs WHERE status = 'pending' ORDER BY id LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
), logged AS (
    INSERT INTO bench_job_events (job_id, type) SELECT id, 'claimed' FROM claimed
)
SELECT id FROM claimed
"""
_BATCH_DONE_EVENTS = """
WITH done AS (
    UPDATE bench_jobs SET status = 'done', completed_at = clock_timestamp()
    WHERE id = ANY(%(ids)s) RETURNING id
)
INSERT INTO bench_job_events (job_id, type) SELECT id, 'done' FROM done
"""
_BATCH = 64  # SPINE_CLAIM_BATCH's default: the pool's largest claim


@dataclass(frozen=True)
class Drained:
    seconds: float
    client_cpu_s: float  # worker processes (Python) CPU while draining
    server_cpu_s: float  # their PostgreSQL backends' CPU while draining


def run(ctx: Context) -> None:
    n = ctx.sizes.drain_executions
    url = ctx.scratch.create(NAME)
    try:
        with connect(url) as conn:
            conn.execute(_BARE_TABLE.encode())
            _add_schedules(conn, ctx.sizes.drain_schedules)
        for processes in ctx.sizes.drain_processes:
            spine: list[Drained] = []
            bare: list[Drained] = []
            batched: list[Drained] = []
            with_events: list[Drained] = []
            log = ctx.log_path(f"drain-pool-{processes}")
            with WorkerPool(url, processes, log) as pool:
                for attempt in range(ctx.repeat + 1):  # the first is the warm-up
                    a = _drain_spine(url, n, pool)
                    b = _drain_bare(url, n, processes)
                    c = _drain_bare(url, n, processes, batch=_BATCH)
                    d = _drain_bare(url, n, processes, batch=_BATCH, events=True)
                    tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                    progress(
                        f"drain x{processes} {tag}: spine {n / a.seconds:,.0f}/s "
                        f"(CPU/exec: worker {_us(a.client_cpu_s, n)} us, PostgreSQL "
                        f"{_us(a.server_cpu_s, n)} us), bare {n / b.seconds:,.0f}/s "
                        f"({_us(b.client_cpu_s, n)} us, {_us(b.server_cpu_s, n)} us), "
                        f"bare batch {n / c.seconds:,.0f}/s, with events {n / d.seconds:,.0f}/s "
                        f"({_us(d.client_cpu_s, n)} us, {_us(d.server_cpu_s, n)} us)"
                    )
                    if attempt:
                        spine.append(a)
                        bare.append(b)
                        batched.append(c)
                        with_events.append(d)

            label = f"{n:,} noop, {processes} worker process{'es' if processes > 1 else ''}"
            ctx.rows.append(_row(label, n, spine, bare))
            batch_label = f"{label}, vs bare batched claims of {_BATCH}"
            ctx.rows.append(_row(batch_label, n, spine, batched, target=None))
            events_label = f"{batch_label} with their events"
            ctx.rows.append(
                _row(events_label, n, spine, with_events, target=Target("ratio_min", 0.5))
            )
        if ctx.celery_broker:
            ctx.rows.append(_celery_row(ctx, url, n, ctx.celery_broker))
    finally:
        ctx.scratch.drop(url)


def _celery_row(ctx: Context, url: str, n: int, broker: str) -> Row:
    """The same drain through one Celery node of 2 children, beside the bare loop."""
    import uuid

    from kombu import Connection, Queue

    prefix = f"spine-bench-{uuid.uuid4().hex[:8]}"
    env = {
        "SPINE_BACKEND": "celery",
        "SPINE_CELERY_BROKER_URL": broker,
        "SPINE_CELERY_QUEUE_PREFIX": prefix,
    }
    spine: list[Drained] = []
    bare: list[Drained] = []
    try:
        with WorkerPool(url, 2, ctx.log_path("drain-celery-2"), **env) as pool:
            for attempt in range(ctx.repeat + 1):
                a = _drain_spine(url, n, pool, backend="celery")
                b = _drain_bare(url, n, 2)
                tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                progress(
                    f"drain celery x2 {tag}: spine {n / a.seconds:,.0f}/s "
                    f"(CPU/exec: worker {_us(a.client_cpu_s, n)} us, PostgreSQL "
                    f"{_us(a.server_cpu_s, n)} us), bare {n / b.seconds:,.0f}/s"
                )
                if attempt:
                    spine.append(a)
                    bare.append(b)
    finally:
        with Connection(broker, connect_timeout=5) as conn:
            for lane in ("normal", "backfill"):
                Queue(f"{prefix}.{lane}").bind(conn.default_channel).delete()
    return _row(f"{n:,} noop, a Celery node of 2 children", n, spine, bare)


_DEFAULT_TARGET = Target("ratio_min", 0.6)


def _row(
    label: str,
    n: int,
    spine: list[Drained],
    bare: list[Drained],
    target: Target | None = _DEFAULT_TARGET,
) -> Row:
    def per_exec(runs: list[Drained], attr: str) -> float:
        return round(median([1e6 * getattr(r, attr) / n for r in runs]))

    return Row(
        scenario=NAME,
        label=label,
        unit="exec/s",
        spine=[n / r.seconds for r in spine],
        baseline=[n / r.seconds for r in bare],
        target=target,
        notes={
            # CPU per execution, both processes and PostgreSQL: steadier than
            # wall time on a shared machine (bare CPU / spine CPU, like the ratio).
            "cpu_ratio": round(
                (per_exec(bare, "client_cpu_s") + per_exec(bare, "server_cpu_s"))
                / max(
                    per_exec(spine, "client_cpu_s") + per_exec(spine, "server_cpu_s"),
                    1,
                ),
                2,
            ),
            "worker_cpu_us_per_exec": per_exec(spine, "client_cpu_s"),
            "pg_cpu_us_per_exec": per_exec(spine, "server_cpu_s"),
            "baseline_worker_cpu_us_per_exec": per_exec(bare, "client_cpu_s"),
            "baseline_pg_cpu_us_per_exec": per_exec(bare, "server_cpu_s"),
        },
    )


def _add_schedules(conn: psycopg.Connection[Any], count: int) -> None:
    """`count` daily cron schedules of `noop` at minutes spread over the day."""
    if not count:
        return
    from app.engine.schedules import Spec, next_after

    now = _now(conn)
    crons = [f"{i % 60} {(i // 60) % 24} * * *" for i in range(count)]
    nexts = [next_after(Spec(c, None, "America/New_York"), now) for c in crons]
    conn.execute(
        """
        INSERT INTO schedules (name, pipeline, cron, timezone, next_fire_at)
        SELECT 'bench-' || n, 'noop', c, 'America/New_York', at
        FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS s (c, at, n)
        """,
        (crons, nexts),
    )
    progress(f"drain: {count} schedules, the first due at {min(nexts).isoformat()}")


def _us(seconds: float, n: int) -> str:
    return f"{1e6 * seconds / n:,.0f}"


def _backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    return [int(r["pid"]) for r in rows]


def _drain_spine(url: str, n: int, pool: WorkerPool, backend: str = "local") -> Drained:
    """Time for the running pool to drain `n` noop executions enqueued at once."""
    with connect(url) as conn:
        conn.execute("TRUNCATE executions, execution_events")
        conn.execute("VACUUM ANALYZE executions")
        workers, backends = pool.worker_pids(), _backend_pids(conn)
        if backend == "celery" and pool.proc is not None:
            workers.append(pool.proc.pid)  # the node's own process receives the messages
        client0, server0 = cpu_seconds(workers), cpu_seconds(backends)
        conn.execute(_ENQUEUE, {"n": n, "backend": backend})
        begun = _now(conn)

        def drained() -> bool:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) "
                "AS done, count(*) FILTER (WHERE status = 'failed') AS failed FROM executions"
            ).fetchone()
            assert row is not None
            if row["failed"]:
                raise RuntimeError(f"{row['failed']} noop execution(s) failed")
            return int(row["done"]) >= n

        wait_until(drained, timeout=max(120.0, n / 20), interval=0.05, what="spine drain")
        client, server = cpu_seconds(workers) - client0, cpu_seconds(backends) - server0
        row = conn.execute("SELECT max(completed_at) AS last FROM executions").fetchone()
        assert row is not None
        return Drained(_seconds(begun, row["last"]), client, server)


def _drain_bare(
    url: str, n: int, processes: int, *, batch: int = 1, events: bool = False
) -> Drained:
    """Time for `processes` bare claim loops to drain `n` rows of a bare table, claiming
    one row at a time, or `batch` rows per statement (`events`: with an event row each)."""
    with connect(url) as conn:
        conn.execute("TRUNCATE bench_jobs, bench_job_events RESTART IDENTITY")
        conn.execute("VACUUM ANALYZE bench_jobs")
        conn.execute(
            "INSERT INTO bench_jobs (status) SELECT 'pending' FROM generate_series(1, %s)", (n,)
        )
        mp = multiprocessing.get_context("spawn")
        go, close = mp.Event(), mp.Event()
        ready, done = mp.Semaphore(0), mp.Semaphore(0)
        procs = [
            mp.Process(
                target=_bare_worker,
                args=(url, i, go, close, ready, done, batch, events),
                name=f"bench-bare-{i}",
            )
            for i in range(processes)
        ]
        for proc in procs:
            proc.start()
        try:
            for _ in procs:
                if not ready.acquire(timeout=60):
                    raise TimeoutError("bare workers did not connect")
            pids = [p.pid for p in procs if p.pid is not None]
            backends = _backend_pids(conn)
            client0, server0 = cpu_seconds(pids), cpu_seconds(backends)
            begun = _now(conn)
            go.set()
            for _ in procs:
                if not done.acquire(timeout=max(120.0, n / 20)):
                    raise TimeoutError("bare workers did not finish")
            client, server = cpu_seconds(pids) - client0, cpu_seconds(backends) - server0
            close.set()
            for proc in procs:
                proc.join(timeout=30)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        if any(proc.exitcode != 0 for proc in procs):
            raise RuntimeError("a bare drain worker failed")
        row = conn.execute(
            "SELECT max(completed_at) AS last, count(*) FILTER (WHERE status <> 'done') AS left "
            "FROM bench_jobs"
        ).fetchone()
        assert row is not None
        if row["left"]:
            raise RuntimeError(f"{row['left']} bare job(s) left undone")
        return Drained(_seconds(begun, row["last"]), client, server)


def _bare_worker(
    url: str,
    worker: int,
    go: EventType,
    close: EventType,
    ready: Any,
    done: Any,
    batch: int = 1,
    events: bool = False,
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        ready.release()
        go.wait()
        if batch > 1:
            claim = _BATCH_CLAIM_EVENTS if events else _BATCH_CLAIM
            finish = _BATCH_DONE_EVENTS if events else _BATCH_DONE
            while ids := [r[0] for r in conn.execute(claim, {"worker": worker, "batch": batch})]:
                conn.execute(finish, {"ids": ids})
        while batch == 1:
            row = conn.execute(_BARE_CLAIM, (worker,)).fetchone()
            if row is None:
                break
            conn.execute(_BARE_DONE, (row[0],))
        done.release()
        close.wait(timeout=120)  # keep the backend alive until its CPU time is read


def _now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT clock_timestamp() AS now").fetchone()
    assert row is not None
    value: datetime = row["now"]
    return value


def _seconds(begun: datetime, ended: datetime | None) -> float:
    if ended is None:
        raise RuntimeError("nothing completed")
    return max((ended - begun).total_seconds(), 1e-6)
