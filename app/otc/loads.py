"""OTC loads: one row per file loaded by one execution, and the raw lines' COPY target.

A load's row carries its summary once it committed, so a retried execution
whose load did commit returns that summary instead of loading again
(otc_loads.execution_id is unique).

Each load's raw lines are a partition of otc_raw_chunks of their own (migrations
013, 014: compressed chunks of lines, read line by line through the view
otc_trades_raw), so old loads' lines are dropped, not deleted. The partition is created as a
plain table, filled by COPY and then attached: creating it as a partition would
lock the parent against every other load's COPY until this load commits, while
ATTACH takes a lock that readers and other COPYs pass.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any, LiteralString

import msgspec
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from app.db import AsyncConn

__all__ = [
    "COPY_BINARY_HEADER",
    "COPY_BINARY_TRAILER",
    "Load",
    "attach_raw_lines",
    "begin_raw_copy",
    "count",
    "create_load",
    "finish_load",
    "get_load",
    "raw_chunk",
]

# A load's partition of otc_raw_chunks (migration 014); the CHECK lets ATTACH skip
# scanning its rows. Chunks come in binary COPY format (see `raw_chunk`).
_CREATE_PARTITION: LiteralString = (
    "CREATE TABLE {part} (LIKE otc_raw_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
    " INCLUDING COMPRESSION, CHECK (load_id = {id}))"
)
_COPY_CHUNKS: LiteralString = (
    "COPY {part} (load_id, first_line, line_count, lines) FROM STDIN (FORMAT binary)"
)
_ATTACH_PARTITION: LiteralString = (
    "ALTER TABLE otc_raw_chunks ATTACH PARTITION {part} FOR VALUES IN ({id})"
)
# Binary COPY framing: the signature, no flags, no header extension; the end marker.
COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_BINARY_TRAILER = struct.pack("!h", -1)
_CHUNK_ROW = struct.Struct("!hiqiqiii")  # 4 fields; load_id, first_line, line_count, lines


def raw_partition(load_id: int) -> sql.Identifier:
    """The table holding one load's raw lines (its partition of otc_raw_chunks)."""
    return sql.Identifier(f"otc_trades_raw_{int(load_id)}")


def raw_chunk(load_id: int, first_line: int, line_count: int, lines: bytes) -> bytes:
    """One chunk row in binary COPY format: `lines` is UTF-8 text, each line ending with LF.

    Binary, so the text goes as it is: no escaping of the lines, no parsing of them.
    """
    return _CHUNK_ROW.pack(4, 8, load_id, 8, first_line, 4, line_count, len(lines)) + lines


class Load(msgspec.Struct, frozen=True):
    """An otc_loads row: one file loaded by one execution."""

    id: int
    execution_id: str
    source_file: str
    file_bytes: int
    file_sha256: str | None
    market_tz: str
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None
    raw_pruned_at: datetime | None = None  # when `spine data prune-raw` dropped its raw lines


async def get_load(conn: AsyncConn, execution_id: str) -> Load | None:
    async with conn.cursor(row_factory=class_row(Load)) as cur:
        await cur.execute("SELECT * FROM otc_loads WHERE execution_id = %s", (execution_id,))
        return await cur.fetchone()


async def create_load(
    conn: AsyncConn, *, execution_id: str, source_file: str, file_bytes: int, market_tz: str
) -> int:
    """Insert the load's row; returns its id. Blocks while another attempt holds the id."""
    cur = await conn.execute(
        """
        INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz)
        VALUES (%s, %s, %s, %s) RETURNING id
        """,
        (execution_id, source_file, file_bytes, market_tz),
    )
    return count(await cur.fetchone(), "id")


async def finish_load(
    conn: AsyncConn, load_id: int, *, file_sha256: str, summary: dict[str, Any]
) -> None:
    await conn.execute(
        """
        UPDATE otc_loads SET file_sha256 = %s, summary = %s, finished_at = clock_timestamp()
        WHERE id = %s
        """,
        (file_sha256, Jsonb(summary), load_id),
    )


async def begin_raw_copy(conn: AsyncConn, load_id: int) -> sql.Composed:
    """Create this load's raw-lines table; returns the binary COPY statement that fills it.

    Send COPY_BINARY_HEADER, `raw_chunk` rows, COPY_BINARY_TRAILER; `attach_raw_lines` after.
    """
    ident = {"part": raw_partition(load_id), "id": sql.Literal(int(load_id))}
    await conn.execute(sql.SQL(_CREATE_PARTITION).format(**ident))
    return sql.SQL(_COPY_CHUNKS).format(part=ident["part"])


async def attach_raw_lines(conn: AsyncConn, load_id: int) -> None:
    """Make the load's copied chunks part of otc_raw_chunks (no scan: its CHECK proves them)."""
    await conn.execute(
        sql.SQL(_ATTACH_PARTITION).format(part=raw_partition(load_id), id=sql.Literal(int(load_id)))
    )


def count(row: dict[str, object] | None, key: str = "n") -> int:
    """The integer a one-row aggregate returned."""
    value = None if row is None else row[key]
    if not isinstance(value, int):
        raise TypeError(f"expected an integer {key!r}, got {value!r}")
    return value
