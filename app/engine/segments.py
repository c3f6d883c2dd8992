"""History segments: the day-wide table partitions of the two history tables.

"Segment" is the word for a table partition of `executions_history` and
`execution_events_history` (migration 150), so that "partition" keeps its
datasets meaning. A segment holds the executions created on one UTC day and
their events; both tables have one segment per day, named
`<table>_YYYYMMDD`.

Segment DDL must never stop a running drain nor the reads:

- a segment is created as a plain table and then ATTACHed, which takes
  SHARE UPDATE EXCLUSIVE on the history table (CREATE TABLE ... PARTITION OF
  would take ACCESS EXCLUSIVE, and every insert and read would queue behind it);
- a segment is DETACHed CONCURRENTLY (SHARE UPDATE EXCLUSIVE again, where a
  plain DETACH or a DROP of an attached segment takes ACCESS EXCLUSIVE), then
  dropped as the lone table it has become. DETACH ... CONCURRENTLY cannot run
  in a transaction block, so the connection must be in autocommit; a detach
  interrupted between its two transactions (lock_timeout, a lost connection)
  leaves the segment "detach pending", and `finish_detaches` completes it
  with FINALIZE the next time;
- each DDL statement runs under `lock_timeout` (LOCK_TIMEOUT): rather than
  wait behind a long reader, and make others wait behind it, it fails, and the
  next maintenance pass tries again.

Works on PostgreSQL 14 and later (CONCURRENTLY and FINALIZE came in 14); tested
on 15 and 18. Needs no extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from psycopg import sql

from app.db import AsyncConn

__all__ = [
    "AHEAD_DAYS",
    "LOCK_TIMEOUT",
    "TABLES",
    "Segment",
    "count_rows",
    "day_start",
    "drop_segment",
    "ensure_segments",
    "finish_detaches",
    "list_segments",
    "segment_name",
]

TABLES: Final = ("executions_history", "execution_events_history")
"""The segmented tables, in the order a day's segments are created (and dropped)."""
AHEAD_DAYS: Final = 2
"""Days after today whose segments exist before anything is moved into them."""
LOCK_TIMEOUT: Final = "2s"
"""The longest a segment's DDL waits for its lock before it gives up for this pass."""

_NAME = re.compile(r"^(executions_history|execution_events_history)_(\d{8})$")


@dataclass(frozen=True, order=True)
class Segment:
    day: date
    table: str
    name: str
    detach_pending: bool


def segment_name(table: str, day: date) -> str:
    return f"{table}_{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    """A segment's lower bound (its upper bound is the next day's)."""
    return datetime.combine(day, time(0), tzinfo=UTC)


_LIST = """
SELECT p.relname AS parent, c.relname AS name, i.inhdetachpending AS pending
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = current_schema() AND p.relname = ANY (%s::text[])
"""


async def list_segments(conn: AsyncConn) -> list[Segment]:
    """Every attached segment of both tables (and any left detach pending), oldest first."""
    rows = await (await conn.execute(_LIST, (list(TABLES),))).fetchall()
    found = []
    for r in rows:
        m = _NAME.match(str(r["name"]))
        if m is None:  # not one of ours: never touched
            continue
        day = datetime.strptime(m.group(2), "%Y%m%d").date()
        found.append(Segment(day, str(r["parent"]), str(r["name"]), bool(r["pending"])))
    return sorted(found)


async def _set_lock_timeout(conn: AsyncConn) -> None:
    await conn.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_TIMEOUT,))


async def ensure_segments(conn: AsyncConn, days: Iterable[date]) -> list[str]:
    """Create and attach the segments of `days` that do not exist yet; their names.

    An empty table attached needs no validating scan. The attach builds the
    history table's indexes on it (empty: at once).
    """
    have = {(s.table, s.day) for s in await list_segments(conn)}
    await _set_lock_timeout(conn)
    made = []
    for day in sorted(set(days)):
        for table in TABLES:
            if (table, day) in have:
                continue
            name = segment_name(table, day)
            await conn.execute(sql.SQL(_CREATE).format(sql.Identifier(name), sql.Identifier(table)))
            await conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(table),
                    sql.Identifier(name),
                    sql.Literal(day_start(day)),
                    sql.Literal(day_start(day + timedelta(days=1))),
                )
            )
            made.append(name)
    return made


async def drop_segment(conn: AsyncConn, segment: Segment) -> None:
    """Detach a segment concurrently (or finish its pending detach), then drop it.

    The connection must be in autocommit (DETACH ... CONCURRENTLY refuses a
    transaction block).
    """
    await _set_lock_timeout(conn)
    detach = _FINALIZE if segment.detach_pending else _DETACH
    await conn.execute(
        sql.SQL(detach).format(sql.Identifier(segment.table), sql.Identifier(segment.name))
    )
    await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(segment.name)))


_CREATE = "CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
_DETACH = "ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY"
_FINALIZE = "ALTER TABLE {} DETACH PARTITION {} FINALIZE"

# Segments detached whose DROP did not happen (it failed, or the process died
# between the two): plain tables named as segments, attached to nothing.
_LEFT_DETACHED = """
SELECT c.relname AS name FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r'
  AND c.relname ~ '^(executions_history|execution_events_history)_[0-9]{8}$'
  AND NOT c.relispartition
"""


async def count_rows(conn: AsyncConn, segment: Segment) -> int:
    """A segment's rows, counted (what a prune reports before it drops one)."""
    row = await (
        await conn.execute(sql.SQL(_COUNT).format(sql.Identifier(segment.name)))
    ).fetchone()
    return int(str(row["n"])) if row else 0


_COUNT = "SELECT count(*) AS n FROM {}"


async def finish_detaches(conn: AsyncConn) -> list[str]:
    """Complete what an earlier pass left half done: finish the detaches left pending
    and drop those segments, and drop the segments detached but not dropped."""
    done = []
    for segment in await list_segments(conn):
        if segment.detach_pending:
            await drop_segment(conn, segment)
            done.append(segment.name)
    for row in await (await conn.execute(_LEFT_DETACHED)).fetchall():
        await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(str(row["name"]))))
        done.append(str(row["name"]))
    return done
