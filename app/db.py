"""Connections: the database URL in use, and pools made in the process that uses them.

Pools are never created at import time and never shared across a fork: the
API opens its async pool in its lifespan, each worker process opens its own.
Nothing here looks the settings up: an entry point reads them once and passes
the URL (from `database_url(settings)`) and the settings down.
"""

from __future__ import annotations

import functools
import sys
import time
import weakref

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from app.config import Settings

__all__ = [
    "AsyncConn",
    "AsyncPool",
    "aconnect",
    "connect",
    "database_url",
    "drop_everything",
    "open_async_pool",
]

AsyncConn = psycopg.AsyncConnection[dict[str, object]]
AsyncPool = AsyncConnectionPool[AsyncConn]


@functools.cache
def _resolve_url(settings: Settings) -> tuple[str, tuple[str, ...]]:
    """(the URL, the migrations applied to bring an embedded database up to date)."""
    if settings.database_url:
        _say_where_outside_a_checkout(f"DATABASE_URL {_without_password(settings.database_url)}")
        return settings.database_url, ()
    from app import embedded
    from app.migrations import apply_pending

    url = embedded.acquire(settings.state_dir)
    _say_where_outside_a_checkout(
        f"embedded PostgreSQL in {embedded.pgdata_dir(settings.state_dir)}"
    )
    # The embedded database is ours: bring it up to date rather than fail on a missing table.
    with connect(url) as conn:
        applied = apply_pending(conn)
    return url, tuple(applied)


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server's URL.

    The embedded server is started if needed (and stopped when the last process
    using it exits; see app.embedded) and migrated.
    """
    return _resolve_url(settings)[0]


def migrated_on_start(settings: Settings) -> tuple[str, ...]:
    """The migrations `database_url` applied to the embedded database (so commands that
    report migrations count them: a new checkout's first `spine up` applied them all)."""
    return _resolve_url(settings)[1]


def _say_where_outside_a_checkout(where: str) -> None:
    """Outside a checkout, nothing else tells a user which database a command used."""
    from app.config import project_root

    if project_root() is None:
        print(f"database: {where}", file=sys.stderr, flush=True)


def _without_password(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    if "password" in parts:
        parts["password"] = "***"  # noqa: S105 - a mask, not a password
    return make_conninfo("", **parts)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[dict[str, object]]:
    """A plain synchronous connection (CLI, migrations, tests)."""
    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row)


async def aconnect(url: str) -> AsyncConn:
    """One async connection outside any pool (LISTEN, heartbeats)."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


class _CheckWhenIdle:
    """Test a pooled connection before use only if it may have sat idle a while.

    The pool's own check sends an empty query on every checkout: a round trip
    per request, a quarter of a cheap GET's time. A connection handed out less
    than `after` seconds ago was working a moment ago; one handed out earlier
    may have idled long enough to be cut by a server restart or a firewall, so
    it is tested. (Time since the last checkout bounds the idle time from
    above, so this errs towards testing. The pool's `reset` hook could stamp
    the return instead, but with one the pool returns connections through a
    background task, and back-to-back checkouts find it empty.) A connection
    that broke within that moment fails its statement instead (the API answers
    503, a worker retries) and the pool discards it.
    """

    def __init__(self, after: float = 1.0) -> None:
        self.after = after
        self._handed_out: weakref.WeakKeyDictionary[AsyncConn, float] = weakref.WeakKeyDictionary()

    async def check(self, conn: AsyncConn) -> None:
        now = time.monotonic()
        last = self._handed_out.get(conn)
        if last is None or now - last > self.after:
            await AsyncConnectionPool.check_connection(conn)
        self._handed_out[conn] = now


async def open_async_pool(
    url: str,
    settings: Settings,
    *,
    name: str = "spine",
    check_idle_after: float = 1.0,
    client_check_interval: float | None = None,
) -> AsyncConnectionPool[AsyncConn]:
    """An opened async pool; the caller closes it (`await pool.close()`).

    Connections idle longer than `check_idle_after` seconds are tested before use.
    `client_check_interval` (seconds) sets the server's
    `client_connection_check_interval` on each connection: while a statement
    runs, its backend checks that often whether this process is still there,
    and if it was killed, stops the statement and releases its locks instead
    of running on to the end (PostgreSQL 14+).
    """
    idle_check = _CheckWhenIdle(check_idle_after)
    kwargs: dict[str, object] = {"autocommit": True, "row_factory": dict_row}
    if client_check_interval is not None:
        milliseconds = max(1, round(client_check_interval * 1000))
        kwargs["options"] = f"-c client_connection_check_interval={milliseconds}"
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        url,
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        kwargs=kwargs,
        name=name,
        open=False,
        check=idle_check.check,
    )
    await pool.open(wait=False)
    return pool


def drop_everything(conn: psycopg.Connection[dict[str, object]]) -> None:
    """Drop every table, function and row of the `public` schema (`spine db reset`)."""
    with conn.transaction():
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
