"""The shared async pool: connections idle for a while are tested before use, fresh ones not."""

from __future__ import annotations

import msgspec
import psycopg
import pytest

from app import db
from app.config import get_settings

Conn = psycopg.Connection[dict[str, object]]


async def _one_connection_pool(database_url: str, check_idle_after: float) -> db.AsyncPool:
    settings = msgspec.structs.replace(get_settings(), db_pool_min=1, db_pool_max=1)
    return await db.open_async_pool(database_url, settings, check_idle_after=check_idle_after)


async def _backend_pid(pool: db.AsyncPool) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
    assert row is not None
    return int(str(row["pid"]))


def _terminate(conn: Conn, pid: int) -> None:
    """Cut one backend off, as a server restart would, and wait until it is gone."""
    row = conn.execute("SELECT pg_terminate_backend(%s, 5000) AS gone", (pid,)).fetchone()
    assert row == {"gone": True}


async def test_an_idle_connection_cut_off_is_replaced_before_use(
    database_url: str, conn: Conn
) -> None:
    pool = await _one_connection_pool(database_url, check_idle_after=0.0)
    try:
        first = await _backend_pid(pool)
        _terminate(conn, first)
        # Idle longer than 0 s: tested, found dead, replaced; the caller never sees it.
        assert await _backend_pid(pool) != first
    finally:
        await pool.close()


async def test_a_just_returned_connection_is_not_tested_and_a_broken_one_is_discarded(
    database_url: str, conn: Conn
) -> None:
    pool = await _one_connection_pool(database_url, check_idle_after=3600.0)
    try:
        first = await _backend_pid(pool)
        _terminate(conn, first)
        # Returned a moment ago: handed out untested, so the statement fails ...
        with pytest.raises(psycopg.OperationalError):
            await _backend_pid(pool)
        # ... and the pool drops it: the next caller gets a new connection.
        assert await _backend_pid(pool) != first
    finally:
        await pool.close()
