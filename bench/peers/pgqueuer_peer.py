"""pgqueuer 1.6 over asyncpg, used as its README does: `PgQueuer` consumers, `Queries.enqueue`.

Two modes, one a process each: `batch_size=1` (one job per dequeue, like the
other two) and `batch_size=10` (its default: ten jobs per dequeue, their ends
logged in buffered batches).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries
from psycopg.conninfo import conninfo_to_dict

TRUNCATE = "TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics"
QUEUED = "SELECT count(*) AS n FROM pgqueuer WHERE entrypoint = 'noop'"
# The end of a job is its `successful` log row (written when the buffered end is flushed).
DONE = (
    "SELECT count(*) AS n, max(created) AS last FROM pgqueuer_log "
    "WHERE status = 'successful' AND entrypoint = 'noop'"
)


async def _connect(url: str) -> asyncpg.Connection:
    """asyncpg takes URLs only; the bench's are libpq conninfo strings."""
    params = conninfo_to_dict(url)
    return await asyncpg.connect(
        host=params.get("host"),
        port=int(str(params["port"])) if params.get("port") else None,
        user=params.get("user"),
        password=params.get("password"),
        database=params.get("dbname"),
    )


@asynccontextmanager
async def _queries(url: str) -> AsyncIterator[Queries]:
    conn = await _connect(url)
    try:
        yield Queries(AsyncpgDriver(conn))
    finally:
        await conn.close()


async def install(url: str) -> None:
    async with _queries(url) as queries:
        await queries.install()


async def enqueue_noops(url: str, n: int) -> None:
    """n noop jobs in one batch insert (payload = the job's number)."""
    async with _queries(url) as queries:
        await queries.enqueue(["noop"] * n, [str(i).encode() for i in range(n)], [0] * n)


async def enqueue_probes(url: str, processes: int) -> None:
    async with _queries(url) as queries:
        names = [f"probe_{i}" for i in range(processes)]
        await queries.enqueue(names, [None] * processes, [0] * processes)


@asynccontextmanager
async def submitter(url: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """Enqueue job i (one `Queries.enqueue` of one job), on one connection held for the run."""
    async with _queries(url) as queries:

        async def one(i: int) -> None:
            await queries.enqueue("noop", str(i).encode())

        yield one


@asynccontextmanager
async def waker(url: str) -> AsyncIterator[Any]:
    """A function that enqueues one `wake` job, on one connection held for the run."""
    async with _queries(url) as queries:

        async def wake() -> None:
            await queries.enqueue("wake", None)

        yield wake


def child(url: str, index: int, mode: str, events: Any, stop: Any) -> None:
    """One consumer process; `mode` is the batch size."""
    asyncio.run(_child(url, index, int(mode), events, stop))


async def _child(url: str, index: int, batch_size: int, events: Any, stop: Any) -> None:
    conn = await _connect(url)
    pgq = PgQueuer.from_asyncpg_connection(conn)
    handled: list[int] = []

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        assert job.payload is not None
        handled.append(int(job.payload))

    @pgq.entrypoint("wake")
    async def wake(job: Job) -> None:
        events.put(("start", time.time()))

    @pgq.entrypoint(f"probe_{index}")
    async def probe(job: Job) -> None:
        events.put(("probe", index))

    runner = asyncio.create_task(pgq.run(batch_size=batch_size))
    await asyncio.to_thread(stop.wait)
    pgq.shutdown.set()
    await runner
    events.put(("handled", handled))
    if not conn.is_closed():
        await conn.close()
