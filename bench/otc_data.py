"""Shared by the OTC and HTTP scenarios: generated trade files, running an execution, resets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine.backends import make_backend
from app.engine.submit import submit
from app.otc.generator import generate
from bench.context import Context
from bench.harness import connect, progress

TERMINAL = ("completed", "failed", "cancelled")


def data_dir(ctx: Context) -> Path:
    path = ctx.work_dir / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def trades_file(ctx: Context, rows: int, *, symbols: int, days: int, seed: int = 7) -> Path:
    """A generated trades CSV in the run's data directory (made once per size)."""
    path = data_dir(ctx) / f"trades_{rows}_{symbols}x{days}_{seed}.csv"
    if not path.exists():
        began = time.monotonic()
        generate(path, rows, symbols=symbols, days=days, seed=seed)
        progress(
            f"generated {path.name} ({path.stat().st_size / 2**20:.0f} MiB) "
            f"in {time.monotonic() - began:.1f}s"
        )
    return path


@contextlib.contextmanager
def bench_settings(ctx: Context) -> Iterator[None]:
    """This process validates `otc_ingest` params against SPINE_DATA_DIR like the workers do."""
    saved = os.environ.get("SPINE_DATA_DIR")
    os.environ["SPINE_DATA_DIR"] = str(data_dir(ctx))
    get_settings.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SPINE_DATA_DIR", None)
        else:
            os.environ["SPINE_DATA_DIR"] = saved
        get_settings.cache_clear()


@dataclass(frozen=True)
class Finished:
    id: str
    status: str
    seconds: float  # created_at -> completed_at, on the database clock
    run_seconds: float  # started_at -> completed_at
    result: Any


def run_execution(
    url: str, pipeline: str, params: dict[str, Any], *, timeout: float = 900.0
) -> Finished:
    """Submit through `submit`, wait for the pool to finish it, return its timings."""
    return asyncio.run(_run_execution(url, pipeline, params, deadline_s=timeout))


async def _run_execution(
    url: str, pipeline: str, params: dict[str, Any], *, deadline_s: float
) -> Finished:
    async with await db.aconnect(url) as conn:
        settings = get_settings()
        execution, _ = await submit(
            conn,
            default_registry(),
            settings,
            pipeline,
            params,
            trigger_source="bench",
            backend=make_backend(settings),
        )
        deadline = time.monotonic() + deadline_s
        while True:
            cur = await conn.execute(
                """
                SELECT status, error,
                       extract(epoch FROM completed_at - created_at)::float8 AS seconds,
                       extract(epoch FROM completed_at - started_at)::float8 AS run_seconds
                FROM executions WHERE id = %s
                """,
                (execution.id,),
            )
            row: dict[str, Any] | None = await cur.fetchone()
            assert row is not None
            if row["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pipeline} {execution.id} did not finish in {deadline_s:.0f}s")
            await asyncio.sleep(0.02)
        if row["status"] != "completed":
            raise RuntimeError(f"{pipeline} {execution.id} {row['status']}: {row['error']}")
        cur = await conn.execute(
            "SELECT payload FROM execution_events WHERE execution_id = %s "
            "AND event_type = 'completed'",
            (execution.id,),
        )
        event: dict[str, Any] | None = await cur.fetchone()
    result = (event or {}).get("payload", {}).get("result")
    return Finished(
        execution.id, row["status"], float(row["seconds"]), float(row["run_seconds"]), result
    )


def reset_otc(url: str) -> None:
    """Empty every otc_* table (and the executions), as before a first load."""
    with connect(url) as conn:
        tables = [
            r["tablename"]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'otc\\_%%' OR tablename IN ('executions', 'execution_events'))"
            ).fetchall()
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


def checkpoint(url: str) -> None:
    """Flush dirty buffers first, so neither side pays for the other's writes."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CHECKPOINT")


def load_dataset(ctx: Context, url: str, path: Path, pool_log: str) -> Finished:
    """Ingest `path` once through a one-process pool (untimed set-up for other scenarios)."""
    from bench.harness import WorkerPool

    with (
        bench_settings(ctx),
        WorkerPool(url, 1, ctx.log_path(pool_log), SPINE_DATA_DIR=str(data_dir(ctx))),
    ):
        return run_execution(url, "otc_ingest", {"file": path.name})
