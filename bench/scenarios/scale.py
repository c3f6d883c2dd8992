"""Scale: the queue's figures with finished history behind it, against an empty history.

One scratch database; first with no history, then with each size of finished
executions (three events each) loaded set-based into the history's day segments
(`bench.history_load`, the one place that knows where history lives), `VACUUM
ANALYZE`d. At each step, with a
pool of 2 worker processes running:

- drain: 20,000 noop enqueued in one statement, to the last `completed_at`;
- single submit: `submit` one at a time on one connection;
- bulk submit: `submit_batch` of 1,000, beside its floor measured in the same
  run: one bare INSERT ... SELECT of the same 1,000 rows from unnest with their
  `created` events and the NOTIFY in the same statement (`_BARE_BULK`);
- wake-up: commit of a submit to its claim (p50, `bench.scenarios.wakeup`);
- reads through the app in process (no network): a page of
  GET /api/v1/executions, the same filtered by status=failed, the dashboard
  overview and a /metrics scrape (median latency).

Each row is a step's figure beside the empty step's, its ratio the change
(target: within 1.2x). What a step submits is deleted before the next, so only
the loaded history grows.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING

from bench.context import Context
from bench.harness import Row, Target, WorkerPool, connect, median, progress, wait_until
from bench.history_load import load_finished
from bench.scenarios.drain import _ENQUEUE, _now, _seconds
from bench.scenarios.wakeup import _spine_latencies

if TYPE_CHECKING:
    from app.db import AsyncConn

NAME = "scale"

Figures = dict[str, float]
# name -> (unit, higher is better)
_FIGURES: dict[str, tuple[str, bool]] = {
    "drain": ("exec/s", True),
    "single submit": ("submits/s", True),
    "bulk submit (1,000 a statement)": ("exec/s", True),
    "bare bulk insert (1,000 a statement)": ("exec/s", True),
    "wake-up p50": ("ms", False),
    "GET /api/v1/executions (50)": ("ms", False),
    "GET /api/v1/executions?status=failed": ("ms", False),
    "dashboard overview": ("ms", False),
    "/metrics scrape": ("ms", False),
}


def run(ctx: Context) -> None:
    sizes = ctx.sizes
    url = ctx.scratch.create(NAME)
    steps = sorted({0, *sizes.scale_rows})
    measured: dict[int, list[Figures]] = {}
    loaded = 0
    try:
        with WorkerPool(url, 2, ctx.log_path("scale-pool")) as pool:
            for rows in steps:
                if rows > loaded:
                    began = time.monotonic()
                    load_finished(url, rows - loaded, tag=f"h{loaded}")
                    loaded = rows
                    progress(f"scale: {rows:,} finished loaded in {time.monotonic() - began:.0f}s")
                runs = []
                for attempt in range(ctx.repeat + 1):  # the first is the warm-up
                    figures = _measure(url, pool, ctx)
                    tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                    shown = ", ".join(f"{k} {v:,.1f}" for k, v in figures.items())
                    progress(f"scale {rows:,} {tag}: {shown}")
                    if attempt:
                        runs.append(figures)
                measured[rows] = runs
    finally:
        ctx.scratch.drop(url)
    empty = measured[0]
    for rows in steps:
        ctx.rows.append(
            Row(
                scenario=NAME,
                label=f"bulk submit (1,000 a statement) vs a bare INSERT ... SELECT, "
                f"{rows:,} finished behind",
                unit="exec/s",
                spine=[r["bulk submit (1,000 a statement)"] for r in measured[rows]],
                baseline=[r["bare bulk insert (1,000 a statement)"] for r in measured[rows]],
                target=Target("ratio_min", 0.8),
            )
        )
    for rows in steps[1:]:
        for name, (unit, higher) in _FIGURES.items():
            if name.startswith("bare "):  # a floor, in the row above
                continue
            target = Target("ratio_min", 0.83) if higher else Target("ratio_max", 1.2)
            ctx.rows.append(
                Row(
                    scenario=NAME,
                    label=f"{name}, {rows:,} finished behind (vs none)",
                    unit=unit,
                    spine=[r[name] for r in measured[rows]],
                    baseline=[r[name] for r in empty],
                    target=target,
                )
            )


def _measure(url: str, pool: WorkerPool, ctx: Context) -> Figures:
    n = ctx.sizes.scale_drain
    figures: Figures = {"drain": n / _drain(url, n)}
    figures.update(asyncio.run(_async_figures(url, ctx)))
    _forget_submitted(url)
    return figures


def _drain(url: str, n: int) -> float:
    """Seconds for the pool to drain `n` noop enqueued at once (history left alone)."""
    with connect(url) as conn:
        conn.execute(_ENQUEUE, {"n": n, "backend": "local"})
        begun = _now(conn)

        def drained() -> bool:
            row = conn.execute(
                "SELECT count(*) AS n FROM executions WHERE status IN ('pending', 'queued', "
                "'running')"
            ).fetchone()
            return row is not None and int(row["n"]) == 0

        wait_until(drained, timeout=max(120.0, n / 20), interval=0.05, what="scale drain")
        row = conn.execute(
            "SELECT max(completed_at) AS last FROM executions WHERE trigger_source = 'bench'"
        ).fetchone()
        assert row is not None
        return _seconds(begun, row["last"])


async def _async_figures(url: str, ctx: Context) -> Figures:
    from app import db
    from app.catalog import default_registry
    from app.config import get_settings
    from app.engine.backends import make_backend
    from app.engine.submit import Submission, submit, submit_batch

    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    settings, registry = get_settings(), default_registry()
    backend = make_backend(settings)
    figures: Figures = {}
    async with await db.aconnect(url) as conn:
        n = ctx.sizes.scale_submits
        began = time.perf_counter()
        for _ in range(n):
            await submit(
                conn, registry, settings, "noop", {}, trigger_source="bench", backend=backend
            )
        figures["single submit"] = n / (time.perf_counter() - began)
        items = [Submission(pipeline="noop") for _ in range(1000)]
        batches = max(1, ctx.sizes.scale_submits // 1000)
        ours = bare = 0.0
        for _ in range(batches):  # taking turns, so a change in the machine's load hits both
            began = time.perf_counter()
            await submit_batch(
                conn, registry, settings, items, trigger_source="bench", backend=backend
            )
            ours += time.perf_counter() - began
            began = time.perf_counter()
            await _bare_bulk(conn, 1000)
            bare += time.perf_counter() - began
        figures["bulk submit (1,000 a statement)"] = 1000 * batches / ours
        figures["bare bulk insert (1,000 a statement)"] = 1000 * batches / bare
    figures["wake-up p50"] = median(await _spine_latencies(url, ctx.sizes.scale_wakeups, settings))
    figures.update(await _reads(ctx.sizes.scale_reads))
    return figures


# The bulk submit's floor: the same rows (ids made by the client, the params as
# JSON), their `created` events and the NOTIFY, in one statement, with none of
# a submit's checks, budgets or per-row answers.
_BARE_BULK = """
WITH v AS (
    SELECT * FROM unnest(%(ids)s::text[], %(params)s::jsonb[]) AS v (id, params)
), new AS (
    INSERT INTO executions (id, pipeline, params, lane, trigger_source, max_attempts,
                            retry_backoff_seconds, backend)
    SELECT id, 'noop', params, 'normal', 'bench', 3, 10, 'local' FROM v
    RETURNING id, lane, created_at, available_at
), created AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'created', jsonb_build_object('trigger_source', 'bench', 'lane', lane) FROM new
    RETURNING pg_notify('spine_executions', payload ->> 'lane')
)
SELECT id, created_at, available_at FROM new
"""


async def _bare_bulk(conn: AsyncConn, n: int) -> None:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    await (await conn.execute(_BARE_BULK, {"ids": ids, "params": ["{}"] * n})).fetchall()


async def _reads(times: int) -> Figures:
    import logging

    from litestar.testing import AsyncTestClient

    from app.server import create_app

    paths = {
        "GET /api/v1/executions (50)": "/api/v1/executions?limit=50",
        "GET /api/v1/executions?status=failed": "/api/v1/executions?status=failed&limit=50",
        "dashboard overview": "/ui/",
        "/metrics scrape": "/metrics",
    }
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    figures: Figures = {}
    async with AsyncTestClient(create_app()) as client:
        for name, path in paths.items():
            took: list[float] = []
            for i in range(times + 2):  # two to warm up
                began = time.perf_counter()
                response = await client.get(path)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                if i >= 2:
                    took.append(elapsed)
            figures[name] = median(took)
    return figures


def _forget_submitted(url: str) -> None:
    """Delete what a step's measures submitted: only the loaded history stays."""
    with connect(url) as conn:
        conn.execute(
            "DELETE FROM execution_events WHERE execution_id IN "
            "(SELECT id FROM executions WHERE trigger_source <> 'history')"
        )
        conn.execute("DELETE FROM executions WHERE trigger_source <> 'history'")
        conn.execute("VACUUM ANALYZE executions")
        conn.execute("VACUUM ANALYZE execution_events")
