"""Raw-line retention: drop the raw lines of old loads, keep everything else about them.

Each load's lines are one partition of otc_raw_chunks (see loads.py), so pruning
is a DROP TABLE per load: the files go at once, with no DELETE, no dead rows and
no vacuum. The load's row with its summary, its rejects and its trades stay;
otc_loads.raw_pruned_at records when the lines went.
"""

from __future__ import annotations

from typing import LiteralString

import msgspec
from psycopg import sql

from app.db import AsyncConn
from app.otc.loads import count, raw_partition

__all__ = ["Pruned", "prune_raw"]

# Committed loads older than the cutoff whose lines are still attached. A load in
# flight is invisible here (its row is not committed), so its lines are never dropped.
_OLD_PARTITIONS: LiteralString = """
SELECT l.id, pg_total_relation_size(i.inhrelid) AS bytes
  FROM otc_loads l
  JOIN pg_inherits i ON i.inhrelid = to_regclass(format('%%I', 'otc_trades_raw_' || l.id))
 WHERE i.inhparent = 'otc_raw_chunks'::regclass
   AND coalesce(l.finished_at, l.started_at) < now() - make_interval(secs => %(seconds)s)
 ORDER BY l.id
"""
_MARK_PRUNED: LiteralString = "UPDATE otc_loads SET raw_pruned_at = now() WHERE id = ANY(%(ids)s)"


class Pruned(msgspec.Struct, frozen=True):
    """What a prune dropped: the loads whose raw lines went, and the bytes they held."""

    load_ids: list[int]
    bytes_freed: int


async def prune_raw(conn: AsyncConn, *, older_than_seconds: float) -> Pruned:
    """Drop the raw lines of every load that finished more than `older_than_seconds` ago."""
    async with conn.transaction():
        cur = await conn.execute(_OLD_PARTITIONS, {"seconds": older_than_seconds})
        rows = await cur.fetchall()
        ids = [count(row, "id") for row in rows]
        if ids:
            # DROP waits for ingests attaching their lines; queued behind it, readers would
            # wait too, so give up after a while (the CLI says so in one line) rather than stall.
            await conn.execute("SET LOCAL lock_timeout = '10s'")
            parts = sql.SQL(", ").join(raw_partition(i) for i in ids)
            await conn.execute(sql.SQL("DROP TABLE {parts}").format(parts=parts))
            await conn.execute(_MARK_PRUNED, {"ids": ids})
    return Pruned(load_ids=ids, bytes_freed=sum(count(row, "bytes") for row in rows))
