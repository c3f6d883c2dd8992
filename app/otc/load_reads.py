"""OTC load history for the API and the CLI: loads newest first, and one load's rejects.

A rejected line is kept with its reason when it is loaded (otc_trades_rejects);
these reads are how a user sees them without psql. Keyset-paginated like the
other reads: pass the last row's key as `after`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec
from psycopg.rows import class_row

from app.db import AsyncConn

__all__ = ["LINE_SHOWN", "LoadRow", "Reject", "load_exists", "loads", "rejects"]

LINE_SHOWN: Final = 300  # characters of a rejected line that a listing shows


class LoadRow(msgspec.Struct, frozen=True):
    """One file loaded by one execution, with its line counts once it finished."""

    id: int
    execution_id: str
    source_file: str
    file_bytes: int
    file_sha256: str | None
    started_at: datetime
    finished_at: datetime | None
    rows_read: int | None
    inserted: int | None
    duplicates: int | None
    corrections: int | None
    rejected: int | None


class Reject(msgspec.Struct, frozen=True):
    load_id: int
    line_no: int
    reason: str
    line: str | None  # at most LINE_SHOWN characters, then "…"


async def loads(conn: AsyncConn, *, limit: int = 100, before: int | None = None) -> list[LoadRow]:
    """Newest first (by id); `before` is the last row's id of the previous page."""
    async with conn.cursor(row_factory=class_row(LoadRow)) as cur:
        await cur.execute(
            """
            SELECT id, execution_id, source_file, file_bytes, file_sha256, started_at,
                   finished_at,
                   (summary ->> 'rows_read')::bigint AS rows_read,
                   (summary ->> 'inserted')::bigint AS inserted,
                   (summary ->> 'duplicates')::bigint AS duplicates,
                   (summary ->> 'corrections')::bigint AS corrections,
                   (summary ->> 'rejected')::bigint AS rejected
              FROM otc_loads
             WHERE %(before)s::bigint IS NULL OR id < %(before)s
             ORDER BY id DESC
             LIMIT %(limit)s
            """,
            {"before": before, "limit": limit},
        )
        return await cur.fetchall()


async def load_exists(conn: AsyncConn, load_id: int) -> bool:
    cur = await conn.execute("SELECT 1 FROM otc_loads WHERE id = %s", (load_id,))
    return await cur.fetchone() is not None


async def rejects(
    conn: AsyncConn, load_id: int, *, limit: int = 100, after: int | None = None
) -> list[Reject]:
    """One load's rejected lines in file order; `after` is the last row's line number."""
    async with conn.cursor(row_factory=class_row(Reject)) as cur:
        await cur.execute(
            """
            SELECT load_id, line_no, reason,
                   CASE WHEN length(line) > %(shown)s THEN left(line, %(shown)s) || '…'
                        ELSE line END AS line
              FROM otc_trades_rejects
             WHERE load_id = %(load_id)s AND (%(after)s::bigint IS NULL OR line_no > %(after)s)
             ORDER BY line_no
             LIMIT %(limit)s
            """,
            {"load_id": load_id, "after": after, "limit": limit, "shown": LINE_SHOWN},
        )
        return await cur.fetchall()
