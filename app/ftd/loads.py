"""FTD loads: one row per file loaded by one execution.

A load's row carries its summary once it committed, so a retried execution
whose load did commit returns that summary instead of loading again
(ftd_loads.execution_id is unique).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from app.db import AsyncConn

__all__ = ["create_load", "finish_load", "get_summary"]


async def get_summary(conn: AsyncConn, execution_id: str) -> dict[str, Any] | None:
    """The committed summary of this execution's load, if it has one."""
    cur = await conn.execute(
        "SELECT summary FROM ftd_loads WHERE execution_id = %s", (execution_id,)
    )
    row = await cur.fetchone()
    summary = None if row is None else row["summary"]
    return summary if isinstance(summary, dict) else None


async def create_load(
    conn: AsyncConn, *, execution_id: str, source_file: str, file_bytes: int
) -> int:
    """Insert the load's row; returns its id. Blocks while another attempt holds the id."""
    cur = await conn.execute(
        """
        INSERT INTO ftd_loads (execution_id, source_file, file_bytes)
        VALUES (%s, %s, %s) RETURNING id
        """,
        (execution_id, source_file, file_bytes),
    )
    row = await cur.fetchone()
    load_id = None if row is None else row["id"]
    assert isinstance(load_id, int)
    return load_id


async def finish_load(
    conn: AsyncConn, load_id: int, *, file_sha256: str, period: str, summary: dict[str, Any]
) -> None:
    await conn.execute(
        """
        UPDATE ftd_loads
           SET file_sha256 = %s, period = %s, summary = %s, finished_at = clock_timestamp()
         WHERE id = %s
        """,
        (file_sha256, period, Jsonb(summary), load_id),
    )
