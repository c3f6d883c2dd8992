"""Helpers shared by the tests: real processes, stopped by pid; condition waits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psutil

from app import db
from app.config import get_settings
from app.dispatcher import submit
from app.registry import Registry
from app.repositories import executions as repo
from app.runner import run_pipeline

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.02
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def run_inline(
    database_url: str,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    registry: Registry | None = None,
    worker_id: str = "inline-test-worker",
) -> repo.Execution:
    """Submit, claim and run one execution in this process (no worker pool)."""
    async with await db.aconnect(database_url) as conn:
        execution, _ = await submit(conn, pipeline, params or {}, registry=registry)
        if await repo.get(conn, execution.id) is not None:
            await conn.execute(
                "INSERT INTO workers (id, host, pid) VALUES (%s, 'test', %s) "
                "ON CONFLICT DO NOTHING",
                (worker_id, os.getpid()),
            )
        claimed = await repo.claim(conn, worker_id)
        assert claimed is not None and claimed.id == execution.id, "another execution was pending"
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        await run_pipeline(pool, execution.id, worker_id, registry=registry)
    finally:
        await pool.close()
    async with await db.aconnect(database_url) as conn:
        final = await repo.get(conn, execution.id)
    assert final is not None
    return final


def run_sync(coro: Any) -> Any:
    return asyncio.run(coro)


def spine_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "SPINE_LOG_LEVEL": "INFO"}
    env.update(overrides)
    return env


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
