"""Activity SQL for the dashboard: what the queue holds, how fast it drains, what changed.

Every query here stays cheap with millions of executions: active states are
counted through their partial indexes (pending, held), finished ones only
over a recent window of `idx_executions_created`, and throughput and the
change feed read `execution_events` by its primary key, never by a scan.

The finished executions counted and browsed are read from both tiers (the
`executions_all` view, see app.engine.history). Throughput (the last hour)
and the live feed read the hot tables alone: SPINE_HISTORY_MOVE_AFTER is at
least an hour, so nothing they show has moved yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.db import AsyncConn
from app.engine.executions import COLUMNS, HELD_SQL, TERMINAL_SQL, to_execution
from app.engine.gauges import LANE_PRIORITY
from app.engine.models import EventType, Execution, Lane, Status

__all__ = [
    "Browse",
    "Change",
    "OldestPending",
    "browse",
    "changes_since",
    "latest_event_id",
    "oldest_pending",
    "status_counts",
    "throughput",
]

FINISHED_WINDOW_HOURS = 1
"""Finished executions are counted over those created in this many hours (an index range)."""
RECORDED_LATE = timedelta(seconds=10)
"""How much earlier than the event written before it an event may be stamped (a batch
of quick executions is recorded when it ends: 64 of them under 50 ms each)."""


class Change(msgspec.Struct, frozen=True):
    """One event with its execution's state when it was read: the dashboard's live feed."""

    event_id: int
    execution_id: str
    event_type: EventType
    timestamp: datetime
    payload: dict[str, Any]
    status: Status
    pipeline: str
    lane: Lane
    created_at: datetime
    error: str | None


class OldestPending(msgspec.Struct, frozen=True):
    lane: Lane
    execution_id: str | None  # the longest-due pending execution; None when none is due
    due_at: datetime | None  # its available_at
    age_s: float | None  # seconds since due_at
    not_due: int  # pending executions whose available_at is still ahead
    next_due_at: datetime | None  # the earliest of those


class _Count(msgspec.Struct, frozen=True):
    status: Status
    lane: Lane
    n: int


_STATUS_COUNTS = f"""
SELECT status, lane, count(*)::int AS n FROM executions
WHERE status = 'pending' GROUP BY status, lane
UNION ALL
SELECT status, lane, count(*)::int FROM executions
WHERE status IN {HELD_SQL} GROUP BY status, lane
UNION ALL
SELECT status, lane, count(*)::int FROM executions_all
WHERE created_at >= %(since)s AND status IN {TERMINAL_SQL}
GROUP BY status, lane
"""


async def status_counts(conn: AsyncConn) -> dict[tuple[str, str], int]:
    """(status, lane) -> count: every active execution, and finished ones of the last hour.

    Counting every finished execution would read the whole table (no index
    leads with status, on purpose: see migration 004), so those are windowed.
    The window's start is a value (this process's clock, as the page's
    throughput), unprepared: the planner prunes the history's segments by it
    and reads today's alone, where `now()` would be pruned only at run time,
    after every segment was planned and locked.
    """
    since = datetime.now(UTC) - timedelta(hours=FINISHED_WINDOW_HOURS)
    async with conn.transaction():
        # Three short index ranges: starting parallel workers (which the planner
        # picks for the UNION) costs more than reading them.
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cur = await conn.execute(_STATUS_COUNTS, {"since": since}, prepare=False)
        rows = msgspec.convert(await cur.fetchall(), list[_Count])
    return {(r.status, r.lane): r.n for r in rows}


# Binary search over the primary key for the first event at or after `since`:
# ids grow with time, so about log2(events) index probes replace a scan. Not
# strictly: a batch's events are stamped when they happened but written when
# the batch is recorded (app.engine.batches), so an event can carry an earlier
# time than the one before it. The search starts RECORDED_LATE before `since`
# and the count filters on the time itself.
_FIRST_EVENT_SINCE = """
WITH RECURSIVE search (lo, hi) AS (
    SELECT min(id), max(id) + 1 FROM execution_events
  UNION ALL
    SELECT CASE WHEN probe.id IS NULL OR probe.id >= s.hi THEN s.lo
                WHEN probe.timestamp < %(search_from)s THEN probe.id + 1
                ELSE s.lo END,
           CASE WHEN probe.id IS NULL OR probe.id >= s.hi THEN (s.lo + s.hi) / 2
                WHEN probe.timestamp < %(search_from)s THEN s.hi
                ELSE probe.id END
    FROM search s
    LEFT JOIN LATERAL (
        SELECT id, timestamp FROM execution_events
        WHERE id >= (s.lo + s.hi) / 2 ORDER BY id LIMIT 1
    ) probe ON true
    WHERE s.lo < s.hi
)
SELECT hi AS id FROM search WHERE lo >= hi LIMIT 1
"""

# A statement of its own, so the planner sees the first id as a value: it then
# plans the short index range it is (no parallel workers to start). Each
# execution counts once, by its latest end in the window: one retried by hand
# and failed again is one failed execution, as in the status counts.
_FINISHED_PER_MINUTE = """
SELECT date_trunc('minute', timestamp) AS minute, event_type, count(*)::int AS n
FROM (
    SELECT DISTINCT ON (execution_id) execution_id, event_type, timestamp
    FROM execution_events
    WHERE id >= %(first)s AND timestamp >= %(since)s AND event_type IN ('completed', 'failed')
    ORDER BY execution_id, id DESC
) latest
GROUP BY 1, 2
"""


async def throughput(conn: AsyncConn, since: datetime) -> list[dict[str, Any]]:
    """Completed and failed executions per minute since `since`, each once (its latest end):
    rows (minute, event_type, n)."""
    cur = await conn.execute(_FIRST_EVENT_SINCE, {"search_from": since - RECORDED_LATE})
    row = await cur.fetchone()
    if row is None:  # no events at all
        return []
    cur = await conn.execute(_FINISHED_PER_MINUTE, {"first": row["id"], "since": since})
    return list(await cur.fetchall())


_OLDEST_PENDING = """
SELECT l.lane, o.id AS execution_id, o.available_at AS due_at,
       extract(epoch FROM now() - o.available_at)::float8 AS age_s,
       (SELECT count(*) FROM executions w
        WHERE w.status = 'pending' AND w.priority = l.priority
          AND w.available_at > now()) AS not_due,
       (SELECT min(w.available_at) FROM executions w
        WHERE w.status = 'pending' AND w.priority = l.priority
          AND w.available_at > now()) AS next_due_at
FROM unnest(%(lanes)s::text[], %(priorities)s::smallint[]) WITH ORDINALITY AS l (lane, priority, n)
LEFT JOIN LATERAL (
    -- The claim's index (priority, available_at, seq): its first due entry.
    SELECT id, available_at FROM executions e
    WHERE e.status = 'pending' AND e.priority = l.priority AND e.available_at <= now()
    ORDER BY e.priority, e.available_at, e.seq LIMIT 1
) o ON true
ORDER BY l.n
"""


async def oldest_pending(conn: AsyncConn) -> list[OldestPending]:
    """Per lane, the due execution next in claim order (the longest due), and what waits.

    Due: claimable now. An execution waiting on purpose (a retry's backoff, a
    delayed run) is not yet due: counted apart, with the time the next one is.
    """
    lanes = {"lanes": list(LANE_PRIORITY), "priorities": list(LANE_PRIORITY.values())}
    cur = await conn.execute(_OLDEST_PENDING, lanes)
    return [msgspec.convert(r, OldestPending) for r in await cur.fetchall()]


class _LatestId(msgspec.Struct, frozen=True):
    id: int


async def latest_event_id(conn: AsyncConn) -> int:
    """The newest event's id (0 when none): where a live feed starts."""
    cur = await conn.execute("SELECT COALESCE(max(id), 0) AS id FROM execution_events")
    return msgspec.convert(await cur.fetchone(), _LatestId).id


async def changes_since(conn: AsyncConn, after_id: int, limit: int = 500) -> list[Change]:
    """Events with an id above `after_id`, oldest first, each with its execution's state."""
    cur = await conn.execute(
        """
        SELECT ev.id AS event_id, ev.execution_id, ev.event_type, ev.timestamp, ev.payload,
               x.status, x.pipeline, x.lane, x.created_at, x.error
        FROM execution_events ev JOIN executions x ON x.id = ev.execution_id
        WHERE ev.id > %s ORDER BY ev.id LIMIT %s
        """,
        (after_id, limit),
    )
    return [msgspec.convert(r, Change) for r in await cur.fetchall()]


class Browse(msgspec.Struct, frozen=True):
    """One page of a filtered listing: the rows, where the next page starts, and whether
    that is only where this page's search stopped (older executions may still match)."""

    rows: list[Execution]
    next_key: tuple[datetime, str] | None
    searched_to: datetime | None


SCAN_BUDGET = 20_000
"""Executions one filtered page looks through at most, newest first."""

_KEYSET = """
    (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s))
    AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
"""

_BROWSE = f"""
SELECT {COLUMNS} FROM (
    SELECT * FROM executions_all WHERE {_KEYSET}
    ORDER BY created_at DESC, id DESC LIMIT %(budget)s
) AS scanned
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(pipeline)s::text IS NULL OR pipeline = %(pipeline)s)
  AND (%(lane)s::text IS NULL OR lane = %(lane)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""

_BOUNDARY = f"""
SELECT created_at, id FROM executions_all WHERE {_KEYSET}
ORDER BY created_at DESC, id DESC OFFSET %(budget)s - 1 LIMIT 1
"""


async def browse(
    conn: AsyncConn,
    *,
    limit: int,
    status: str | None = None,
    pipeline: str | None = None,
    lane: str | None = None,
    before: tuple[datetime, str] | None = None,
    since: datetime | None = None,
    budget: int = SCAN_BUDGET,
) -> Browse:
    """A filtered page that reads at most `budget` executions, however rare the match.

    With no index leading on pipeline, lane or a finished status (migration
    004 dropped the status one, on purpose), a filter that matches little
    would otherwise walk the whole table for one page. Here a page stops
    after `budget` rows; when it is not full, its next key is where it
    stopped, and the caller offers to search on from there.
    """
    args = {
        "at": before[0] if before else None,
        "id": before[1] if before else None,
        "since": since,
        "status": status,
        "pipeline": pipeline,
        "lane": lane,
        "budget": budget,
        "limit": limit + 1,
    }
    cur = await conn.execute(_BROWSE, args)
    rows = [to_execution(r) for r in await cur.fetchall()]
    if len(rows) > limit:
        last = rows[limit - 1]
        return Browse(rows[:limit], (last.created_at, last.id), None)
    cur = await conn.execute(_BOUNDARY, args)
    boundary = await cur.fetchone()
    if boundary is None:  # the search reached the oldest execution
        return Browse(rows, None, None)
    at = msgspec.convert(boundary["created_at"], datetime)
    return Browse(rows, (at, str(boundary["id"])), at)
