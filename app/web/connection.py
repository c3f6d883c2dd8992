"""The request's database connection: one pooled connection, named `conn` in handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import NamedDependency

from app.db import AsyncConn

__all__ = ["CONNECT_TIMEOUT", "DbConn", "provide_conn"]

# Seconds a request waits for a pooled connection before its 503. Short: while
# the database is down a client learns it at once (and retries after
# Retry-After) instead of holding a connection of the API's for 10 s.
CONNECT_TIMEOUT = 2.0

DbConn = NamedDependency[AsyncConn]
"""A pooled connection for the request (provided by `provide_conn` under the name `conn`)."""


async def provide_conn(state: State) -> AsyncIterator[AsyncConn]:
    """One pooled connection per request, returned to the pool when the request ends."""
    async with state.pool.connection(timeout=CONNECT_TIMEOUT) as conn:
        yield conn
