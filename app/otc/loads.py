"""OTC loads: one row per file loaded by one execution, and the raw lines' COPY target.

A load's row carries its summary once it committed, so a retried execution
whose load did commit returns that summary instead of loading again
(otc_loads.execution_id is unique).

Each load's raw lines are a partition of otc_trades_raw of their own (migration
013), so old loads' lines are dropped, not deleted. The partition is created as a
plain table, filled by COPY and then attached: creating it as a partition would
lock the parent against every other load's COPY until this load commits, while
ATTACH takes a lock that readers and other COPYs pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import msgspec
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from app.copy_lines import COPY_OPTIONS
from app.db import AsyncConn

__all__ = [
    "Load",
    "attach_raw_lines",
    "begin_raw_copy",
    "count",
    "create_load",
    "finish_load",
    "get_load",
]

# Every line becomes one row with one column (see app.copy_lines).
_COPY_RAW_LINES: LiteralString = "COPY {part} (line) FROM STDIN " + COPY_OPTIONS
# The partition copies the parent's defaults (this load's id from a session setting,
# line numbers from a session sequence); the CHECK lets ATTACH skip scanning its rows.
_CREATE_PARTITION: LiteralString = (
    "CREATE TABLE {part} (LIKE otc_trades_raw INCLUDING DEFAULTS, CHECK (load_id = {id}))"
)
_ATTACH_PARTITION: LiteralString = (
    "ALTER TABLE otc_trades_raw ATTACH PARTITION {part} FOR VALUES IN ({id})"
)


def raw_partition(load_id: int) -> sql.Identifier:
    """The table holding one load's raw lines."""
    return sql.Identifier(f"otc_trades_raw_{int(load_id)}")


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
    """Create this load's raw-lines table and arm its defaults (this load's id, lines from 2).

    Returns the COPY statement that fills it; `attach_raw_lines` comes after.
    """
    ident = {"part": raw_partition(load_id), "id": sql.Literal(int(load_id))}
    await conn.execute(sql.SQL(_CREATE_PARTITION).format(**ident))
    cur = await conn.execute("SELECT to_regclass('pg_temp.otc_line_seq') IS NULL AS missing")
    row = await cur.fetchone()
    if row is not None and row["missing"]:
        await conn.execute("CREATE TEMP SEQUENCE otc_line_seq")  # lives as long as the session
    await conn.execute(
        "SELECT set_config('spine.otc_load_id', %s, true), setval('pg_temp.otc_line_seq', 1)",
        (str(load_id),),
    )
    return sql.SQL(_COPY_RAW_LINES).format(part=ident["part"])


async def attach_raw_lines(conn: AsyncConn, load_id: int) -> None:
    """Make the load's copied lines part of otc_trades_raw (no scan: its CHECK proves them)."""
    await conn.execute(
        sql.SQL(_ATTACH_PARTITION).format(part=raw_partition(load_id), id=sql.Literal(int(load_id)))
    )


def count(row: dict[str, object] | None, key: str = "n") -> int:
    """The integer a one-row aggregate returned."""
    value = None if row is None else row[key]
    if not isinstance(value, int):
        raise TypeError(f"expected an integer {key!r}, got {value!r}")
    return value
