"""Connections: the database URL in use, and pools made in the process that uses them.

Pools are never created at import time and never shared across a fork: the
API opens its async pool in its lifespan, each worker process opens its own.
"""

from __future__ import annotations

import functools

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from app.config import Settings, get_settings

__all__ = ["AsyncConn", "AsyncPool", "aconnect", "connect", "database_url", "open_async_pool"]

AsyncConn = psycopg.AsyncConnection[dict[str, object]]
AsyncPool = AsyncConnectionPool[AsyncConn]


@functools.cache
def _resolve_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from app import embedded

    return embedded.embedded_url(settings.state_dir)


def database_url(settings: Settings | None = None) -> str:
    """DATABASE_URL, or the embedded server's URL (starting it on first use)."""
    return _resolve_url(settings or get_settings())


def connect(
    url: str | None = None, *, autocommit: bool = True
) -> psycopg.Connection[dict[str, object]]:
    """A plain synchronous connection (CLI, migrations, tests)."""
    return psycopg.connect(url or database_url(), autocommit=autocommit, row_factory=dict_row)


async def aconnect(url: str | None = None) -> AsyncConn:
    """One async connection outside any pool (LISTEN, heartbeats)."""
    return await psycopg.AsyncConnection.connect(
        url or database_url(), autocommit=True, row_factory=dict_row
    )


async def open_async_pool(
    url: str | None = None,
    settings: Settings | None = None,
    *,
    name: str = "spine",
    check: bool = True,
) -> AsyncConnectionPool[AsyncConn]:
    """An opened async pool; the caller closes it (`await pool.close()`).

    `check` tests each connection before handing it out (one empty round trip),
    so a server restart costs a request nothing; the worker, which retries its
    statements anyway, turns it off for throughput.
    """
    settings = settings or get_settings()
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        url or database_url(settings),
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        kwargs={"autocommit": True, "row_factory": dict_row},
        name=name,
        open=False,
        check=AsyncConnectionPool.check_connection if check else None,
    )
    await pool.open(wait=False)
    return pool
