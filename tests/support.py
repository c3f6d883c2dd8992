"""Helpers shared by the tests: real processes, stopped by pid; condition waits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import msgspec
import psutil
import psycopg
import pytest
from click.testing import CliRunner, Result

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import batches, history, models, scheduling, workers
from app.engine import submit as engine_submit
from app.engine.attempts import attempt
from app.engine.backends import OrchestratorBackend, make_backend
from app.engine.outcomes import Requeue
from app.engine.recording import record_batch, record_end
from app.engine.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
Conn = psycopg.Connection[dict[str, object]]


async def submit(
    conn: db.AsyncConn,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    **options: Any,
) -> tuple[models.Execution, bool]:
    """`app.engine.submit.submit` with the built-in registry, the test's settings and the
    backend they name (unless `backend` is given)."""
    options.setdefault("backend", make_backend(get_settings()))
    return await engine_submit.submit(
        conn, registry or default_registry(), get_settings(), pipeline, params, **options
    )


async def fire_due(
    conn: db.AsyncConn, registry: Registry | None = None, **options: Any
) -> scheduling.FireReport:
    """`app.engine.scheduling.fire_due` with the built-in registry (unless given), the test's
    settings and the backend they name (unless `backend` is given)."""
    options.setdefault("backend", make_backend(get_settings()))
    return await scheduling.fire_due(
        conn, registry or default_registry(), get_settings(), **options
    )


async def run_now(
    conn: db.AsyncConn, name: str, backend: OrchestratorBackend | None = None
) -> models.Execution:
    """`app.engine.scheduling.run_now` as `fire_due` above."""
    return await scheduling.run_now(
        conn,
        default_registry(),
        get_settings(),
        name,
        backend=backend or make_backend(get_settings()),
    )


def wait_until(
    condition: Callable[[], T | bool | None], *, timeout: float = 30.0, interval: float = 0.02
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return cast(T, result)  # `cond and row` returns the row once cond holds
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def claim(conn: db.AsyncConn, worker_id: str, limit: int = 1) -> list[models.Execution]:
    """Hold up to `limit` pending executions `queued`: the worker's claim statement."""
    return (await batches.record(conn, worker_id, [], claim=limit))[1]


async def claim_and_start(conn: db.AsyncConn, worker_id: str) -> models.Execution | None:
    """Claim the next pending execution and write its start, as a worker does for one that
    runs past its start delay: it is then `running`, its attempt counted."""
    held = await claim(conn, worker_id)
    if not held:
        return None
    now = time.monotonic()
    recorded, _ = await batches.record(
        conn, worker_id, [batches.Record(held[0].id, "running", now, now)]
    )
    assert recorded == {held[0].id}
    return await history.get(conn, held[0].id)


async def run_held(
    pool: db.AsyncPool,
    execution: models.Execution,
    worker_id: str,
    *,
    registry: Registry,
) -> None:
    """Run one execution this worker holds `queued` and record its end, as worker.loop does:
    the same attempt, a start written before the pipeline's first write, a quick end
    written by the batch's record statement, a rare end (retry, requeue) on its own."""
    if execution.cancel_requested:
        reason = {"reason": "cancelled before it started"}
        cancelled = batches.Record(execution.id, "cancelled", None, time.monotonic(), None, reason)
        await record_batch(pool, worker_id, [cancelled], claim=0)
        return
    execution = msgspec.structs.replace(execution, status="running", attempt=execution.attempt + 1)
    began = time.monotonic()
    started = False

    async def write_start() -> None:
        nonlocal started
        if not started:
            start = batches.Record(execution.id, "running", began, time.monotonic())
            await record_batch(pool, worker_id, [start], claim=0)
            started = True

    attempted = await attempt(
        pool,
        execution,
        worker_id,
        settings=get_settings(),
        registry=registry,
        before_write=write_start,
    )
    end = attempted.end
    if end is None or isinstance(end, Requeue) or end.rare:
        if end is not None:
            await write_start()
        await record_end(pool, execution, worker_id, attempted)
        return
    ended = batches.Record(
        execution.id,
        end.status,
        None if started else began,
        time.monotonic(),
        end.error,
        end.payload,
    )
    await record_batch(pool, worker_id, [ended], claim=0)


async def run_inline(
    database_url: str,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    worker_id: str = "inline-test-worker",
) -> models.Execution:
    """Submit one execution and run it in this process (no worker pool), through what a
    worker runs: the batch claim, the attempt, the batched record of its end."""
    registry = registry or default_registry()
    async with await db.aconnect(database_url) as conn:
        execution, _ = await submit(conn, pipeline, params or {}, registry=registry)
        await workers.heartbeat(conn, worker_id, "test", os.getpid())
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        _, claimed, _ = await record_batch(pool, worker_id, [], claim=1)
        assert [e.id for e in claimed] == [execution.id], "another execution was pending"
        await run_held(pool, claimed[0], worker_id, registry=registry)
    finally:
        await pool.close()
    async with await db.aconnect(database_url) as conn:
        final = await history.get(conn, execution.id)
    assert final is not None
    return final


def submit_many(
    conn: psycopg.Connection[dict[str, object]],
    pipeline: str,
    count: int,
    params: str = "{}",
    *,
    backend: str = "local",
) -> None:
    """Bulk-enqueue like the dispatcher does (rows + created events), in one statement.

    For the Celery backend they are committed and not published: the relay publishes them.
    """
    conn.execute(
        """
        WITH new AS (
            INSERT INTO executions (pipeline, params, trigger_source, backend)
            SELECT %s, %s::jsonb, 'test', %s FROM generate_series(1, %s)
            RETURNING id
        )
        INSERT INTO execution_events (execution_id, event_type) SELECT id, 'created' FROM new
        """,
        (pipeline, params, backend, count),
    )
    conn.execute("NOTIFY spine_executions")


def status_counts(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM executions GROUP BY status").fetchall()
    return {str(r["status"]): int(r["n"]) for r in rows}  # type: ignore[call-overload]


def free_port() -> int:
    """A local TCP port nothing listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sync(coro: Any) -> Any:
    return asyncio.run(coro)


def spine_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "SPINE_LOG_LEVEL": "INFO"}
    env.update(overrides)
    return env


def spine_cli(*args: str) -> Result:
    """`spine ARGS` in this process (click's runner): what it printed and its exit code."""
    from app.cli import main  # the CLI, imported only by the tests that run it

    return CliRunner().invoke(main, list(args))


def finra_landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Path:
    """A landing area (SPINE_DATA_DIR) with its `finra/` folder, and `env` set, for
    the settings the next command reads."""
    root = tmp_path / "landing"
    (root / "finra").mkdir(parents=True)
    monkeypatch.setenv("SPINE_DATA_DIR", str(root))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return root


def spine_process(
    args: list[str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`spine ARGS` as a real process (`python -m app.cli`): exactly what a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one `Error: ...` line a refused command prints (asserted: a non-zero exit, one
    line on stderr, no traceback anywhere)."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done.stdout
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


@contextmanager
def worker_pool(
    database_url: str, processes: int = 2, log_path: Path | None = None, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`spine worker start` as a real subprocess; on exit it and its children are stopped."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "start", "--max-concurrent", str(processes)],
        env=spine_env(database_url, **settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        stop_tree(proc.pid)
        proc.wait()
        if log_path:
            log.close()  # type: ignore[union-attr]


def stop_tree(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a process and its descendants, SIGKILL what is left; leave nothing running."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [*parent.children(recursive=True), parent]
    for proc in family:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def child_pids(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def worker_pid(worker_id: str) -> int:
    """Worker ids are host:pid:suffix."""
    return int(worker_id.split(":")[1])
