"""procrastinate 3.10, used as its docs do: an `App` over `PsycopgConnector`, one worker a process.

Each process runs `run_worker_async(concurrency=1)` (one job at a time, like
a Market Spine worker process), listening on NOTIFY with polling as fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import procrastinate

TRUNCATE = "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE"
QUEUED = "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = 'noop'"
# The end of a job is its `succeeded` event (written by the same statement that ends it).
DONE = (
    "SELECT count(*) AS n, max(e.at) AS last FROM procrastinate_events e "
    "JOIN procrastinate_jobs j ON j.id = e.job_id "
    "WHERE e.type = 'succeeded' AND j.task_name = 'noop'"
)


@asynccontextmanager
async def _app(url: str) -> AsyncIterator[procrastinate.App]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    async with app.open_async():
        yield app


async def install(url: str) -> None:
    async with _app(url) as app:
        await app.schema_manager.apply_schema_async()


async def enqueue_noops(url: str, n: int) -> None:
    """n noop jobs in one batch insert (argument = the job's number)."""
    async with _app(url) as app:
        jobs: list[dict[str, Any]] = [{"i": i} for i in range(n)]
        await app.configure_task("noop").batch_defer_async(*jobs)


@asynccontextmanager
async def submitter(url: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """Defer job i (one `defer_async`), through one app (and pool) held for the run."""
    async with _app(url) as app:
        deferrer = app.configure_task("noop")

        async def one(i: int) -> None:
            await deferrer.defer_async(i=i)

        yield one


async def enqueue_probes(url: str, processes: int) -> None:
    async with _app(url) as app:
        for i in range(processes):
            await app.configure_task(f"probe_{i}", queue=f"probe_{i}").defer_async()


@asynccontextmanager
async def waker(url: str) -> AsyncIterator[Any]:
    """A function that defers one `wake` job, through one app (and pool) held for the run."""
    async with _app(url) as app:
        deferrer = app.configure_task("wake")

        async def wake() -> None:
            await deferrer.defer_async()

        yield wake


def child(url: str, index: int, mode: str, events: Any, stop: Any) -> None:
    """One worker process (`mode` is unused: procrastinate has one)."""
    asyncio.run(_child(url, index, events, stop))


async def _child(url: str, index: int, events: Any, stop: Any) -> None:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    handled: list[int] = []

    @app.task(name="noop")
    async def noop(i: int) -> None:
        handled.append(i)

    @app.task(name="wake")
    async def wake() -> None:
        events.put(("start", time.time()))

    @app.task(name=f"probe_{index}", queue=f"probe_{index}")
    async def probe() -> None:
        events.put(("probe", index))

    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=["default", f"probe_{index}"],
                concurrency=1,
                install_signal_handlers=False,
            )
        )
        await asyncio.to_thread(stop.wait)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    events.put(("handled", handled))
