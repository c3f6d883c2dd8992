"""Datasets: a scan of unchanged files and a backfill's drain, each beside its floor.

Scan: 10,000 landed files of a day x key2 dataset, each already recorded as
materialized, so a scan must find them all unchanged (stat only: nothing
hashed, nothing submitted). Baseline: the least such a scan can do in the same
run: stat the same files and read the recorded sources in one SELECT.

Backfill: a backfill of 250 partitions of a noop-materialized dataset against
250 noop executions submitted with `submit_many`, alternately, through the same
running pool. Both are timed from the call (the connection already open) to
the last completion, so the backfill's own work (its partitions' states, the
items it records) is in its figure. The issue's target is 0.8x.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from app import db
from app.catalog import default_registry
from app.config import Settings, get_settings
from app.engine import backfills, scans
from app.engine.backends import make_backend
from app.engine.datasets import Dataset, Partition
from app.engine.submit import hand_over, submit_many
from bench.context import Context
from bench.harness import Row, Target, WorkerPool, connect, progress, wait_until

NAME = "datasets"
KEY2 = tuple(f"V{i:02d}" for i in range(10))


def _no_params(partition: Partition, path: str | None) -> dict[str, Any]:
    return {}


def _dataset(**extra: Any) -> Dataset:
    return Dataset(
        name="bench",
        description="bench",
        scheme="day",
        pipeline="noop",
        params=_no_params,
        start=date(2020, 1, 1),
        **extra,
    )


def run(ctx: Context) -> None:
    url = ctx.scratch.create(NAME)
    try:
        ctx.rows.append(_scan_row(ctx, url))
        ctx.rows.append(_backfill_row(ctx, url))
    finally:
        ctx.scratch.drop(url)


# --------------------------------------------------------------------------- scan


def _scan_row(ctx: Context, url: str) -> Row:
    files = ctx.sizes.scan_files
    landing = ctx.work_dir / "landing"
    dataset = _dataset(key2=KEY2, landing="bench/{key2}_{day:%Y%m%d}.txt")
    weekdays = -(-files // len(KEY2))  # each weekday holds one partition per second key
    last = date(2020, 1, 1) + timedelta(days=weekdays * 7 // 5 + 7)
    parts = dataset.partitions(date(2020, 1, 1), last)[:files]
    assert len(parts) == files
    _land_and_record(url, landing, parts)
    settings = msgspec.structs.replace(get_settings(), data_dir=landing)
    spine: list[float] = []
    bare: list[float] = []
    for attempt in range(ctx.repeat + 1):
        a = asyncio.run(_scan_once(url, settings, dataset, files))
        b = _bare_scan(url, landing / "bench")
        tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
        progress(f"scan of {files:,} unchanged files {tag}: spine {a:.3f} s, bare {b:.3f} s")
        if attempt:
            spine.append(files / a)
            bare.append(files / b)
    return Row(
        scenario=NAME,
        label=f"scan of {files:,} unchanged landed files",
        unit="files/s",
        spine=spine,
        baseline=bare,
        target=Target("ratio_min", 0.25),
    )


def _land_and_record(url: str, landing: Path, parts: list[Partition]) -> None:
    """Write one small file per partition and record each as materialized (COPY)."""
    (landing / "bench").mkdir(parents=True, exist_ok=True)
    rows = []
    for p in parts:
        name = f"bench/{p.key2}_{p.start:%Y%m%d}.txt"
        path = landing / name
        path.write_bytes(b"x")
        st = path.stat()
        rows.append((p.key, name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
    with (
        connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY dataset_materializations (dataset, partition_key, source_path, source_bytes,"
            " source_mtime, source_sha256, content_changed) FROM STDIN"
        ) as copy,
    ):
        for key, name, size, mtime in rows:
            copy.write_row(("bench", key, name, size, mtime, "sha", True))


async def _scan_once(url: str, settings: Settings, dataset: Dataset, files: int) -> float:
    async with await db.aconnect(url) as conn:
        began = time.perf_counter()
        found = await scans.scan(
            conn, default_registry(), settings, make_backend(settings), dataset
        )
        took = time.perf_counter() - began
    if (found.files, found.hashed, found.submitted) != (files, 0, []):
        raise RuntimeError(f"the scan saw changes where there were none: {found}")
    return took


def _bare_scan(url: str, directory: Path) -> float:
    """Stat every file and read the recorded sources: what any unchanged scan must do."""
    with connect(url) as conn:
        began = time.perf_counter()
        sizes = {e.name: e.stat().st_mtime for e in os.scandir(directory)}
        recorded = conn.execute(
            "SELECT DISTINCT ON (partition_key) partition_key, source_path, source_bytes,"
            " source_mtime FROM dataset_materializations WHERE dataset = 'bench'"
            " ORDER BY partition_key, id DESC"
        ).fetchall()
        took = time.perf_counter() - began
    if len(recorded) != len(sizes):
        raise RuntimeError("the bare scan read a different number of files and records")
    return took


# --------------------------------------------------------------------------- backfill


def _backfill_row(ctx: Context, url: str) -> Row:
    n = ctx.sizes.backfill_partitions
    dataset = _dataset()
    first = date(2024, 1, 1)
    keys = [p.key for p in dataset.partitions(first, first + timedelta(days=2 * n))][:n]
    plain: list[float] = []
    backfill: list[float] = []
    creating: list[float] = []
    with connect(url) as conn, WorkerPool(url, 2, ctx.log_path("datasets-pool")):
        done = 0
        for attempt in range(ctx.repeat + 1):
            conn.execute("DELETE FROM backfill_items; DELETE FROM backfills")
            a = asyncio.run(_plain(url, n))
            done += n
            a_s = _drained(conn, done, a)
            b, made = asyncio.run(_backfill(url, dataset, first.isoformat(), keys[-1]))
            done += n
            b_s = _drained(conn, done, b)
            tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
            progress(
                f"{n} partitions {tag}: plain {n / a_s:,.0f}/s, backfill {n / b_s:,.0f}/s "
                f"(creating it: {1000 * made:.1f} ms)"
            )
            if attempt:
                plain.append(n / a_s)
                backfill.append(n / b_s)
                creating.append(made)
    creating.sort()
    return Row(
        scenario=NAME,
        label=f"backfill of {n} partitions vs {n} plain noop submits",
        unit="exec/s",
        spine=backfill,
        baseline=plain,
        target=Target("ratio_min", 0.8),
        notes={"creating_ms": round(1000 * creating[len(creating) // 2], 1)},
    )


async def _plain(url: str, n: int) -> float:
    settings = get_settings()
    registry, backend = default_registry(), make_backend(settings)
    async with await db.aconnect(url) as conn:
        began = time.perf_counter()
        async with conn.transaction():
            keys = [f"plain:{uuid.uuid4()}" for _ in range(n)]  # as the backfill's, one each
            made = await submit_many(
                conn, registry, settings, "noop", [{}] * n, logical_keys=keys, backend=backend
            )
        await hand_over(conn, backend, made)
        return began


async def _backfill(url: str, dataset: Dataset, from_key: str, to_key: str) -> tuple[float, float]:
    settings = get_settings()
    registry, backend = default_registry(), make_backend(settings)
    async with await db.aconnect(url) as conn:
        began = time.perf_counter()
        await backfills.create(
            conn, registry, settings, backend, dataset, from_key=from_key, to_key=to_key, only="all"
        )
        return began, time.perf_counter() - began


def _drained(conn: Any, total: int, began: float) -> float:
    def done() -> bool:
        row = conn.execute(
            "SELECT count(*) AS n FROM executions WHERE status = 'completed'"
        ).fetchone()
        return int(row["n"]) >= total

    wait_until(done, timeout=120, interval=0.005, what="drain")
    return time.perf_counter() - began
