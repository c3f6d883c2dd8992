"""A file load done once per execution: the `<domain>_loads` row and the retry rule.

Each file-ingest domain keeps one row per file loaded by one execution, its
`execution_id` unique, and writes the load's summary into it in the load's own
transaction. So a retried execution whose load did commit finds that summary
and returns it instead of loading again; two attempts racing meet on the
unique key, and the loser returns the winner's summary.

The domains keep their tables' SQL (names and columns differ); this module
holds what runs it the same way. It belongs to no domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, LiteralString

import psycopg

from app.db import AsyncConn, AsyncPool

__all__ = ["GetSummary", "fetch_summary", "insert_load", "load_once"]

_Summary = dict[str, Any]
GetSummary = Callable[[AsyncConn, str], Awaitable[_Summary | None]]
"""A domain's `loads.get_summary`: the committed summary of an execution's load, if any."""


async def fetch_summary(
    conn: AsyncConn, query: LiteralString, execution_id: str
) -> _Summary | None:
    """The `summary` column `query` selects for `execution_id`, if it holds one."""
    cur = await conn.execute(query, (execution_id,))
    row = await cur.fetchone()
    summary = None if row is None else row["summary"]
    return summary if isinstance(summary, dict) else None


async def insert_load(conn: AsyncConn, query: LiteralString, params: tuple[Any, ...]) -> int:
    """Run `query` (an INSERT ... RETURNING id); the new row's id.

    Blocks while another attempt's transaction holds the same execution_id.
    """
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    load_id = None if row is None else row["id"]
    assert isinstance(load_id, int)
    return load_id


async def load_once(
    pool: AsyncPool,
    execution_id: str,
    get_summary: GetSummary,
    load: Callable[[AsyncConn], Awaitable[_Summary]],
) -> _Summary:
    """Run `load` in one transaction, unless this execution's load already committed.

    A UniqueViolation means another attempt committed the load meanwhile: its
    summary is returned (re-raised if there is none, another key was violated).
    """
    async with pool.connection() as conn:
        done = await get_summary(conn, execution_id)
        if done is not None:
            return done  # an earlier attempt of this execution committed it
        try:
            async with conn.transaction():
                return await load(conn)
        except psycopg.errors.UniqueViolation:
            done = await get_summary(conn, execution_id)
            if done is None:
                raise
            return done  # another attempt committed it meanwhile
