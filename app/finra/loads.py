"""FINRA loads: one row per file loaded by one execution.

A load's row carries its summary once it committed, so a retried execution
whose load did commit returns that summary instead of loading again
(finra_loads.execution_id is unique).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg.types.json import Jsonb

from app.db import AsyncConn
from app.file_loads import fetch_summary, insert_load
from app.finra.venue_kinds import VenueKind

__all__ = ["create_load", "finish_load", "get_summary"]


async def get_summary(conn: AsyncConn, execution_id: str) -> dict[str, Any] | None:
    """The committed summary of this execution's load, if it has one."""
    return await fetch_summary(
        conn, "SELECT summary FROM finra_loads WHERE execution_id = %s", execution_id
    )


async def create_load(
    conn: AsyncConn,
    *,
    execution_id: str,
    source_file: str,
    file_bytes: int,
    venue_kind: VenueKind,
) -> int:
    """Insert the load's row; returns its id. Blocks while another attempt holds the id."""
    return await insert_load(
        conn,
        """
        INSERT INTO finra_loads (execution_id, source_file, file_bytes, venue_kind)
        VALUES (%s, %s, %s, %s) RETURNING id
        """,
        (execution_id, source_file, file_bytes, venue_kind),
    )


async def finish_load(
    conn: AsyncConn,
    load_id: int,
    *,
    file_sha256: str,
    week_start: date | None,
    last_update_date: date | None,
    summary: dict[str, Any],
) -> None:
    await conn.execute(
        """
        UPDATE finra_loads
           SET file_sha256 = %s, week_start = %s, last_update_date = %s, summary = %s,
               finished_at = clock_timestamp()
         WHERE id = %s
        """,
        (file_sha256, week_start, last_update_date, Jsonb(summary), load_id),
    )
