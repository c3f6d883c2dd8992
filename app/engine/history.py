"""One logical history: every read of an execution, wherever it is stored.

An execution lives in the hot table (`executions`) while it is pending, held
or running and for SPINE_HISTORY_MOVE_AFTER after it finished; the pools then
move it, with its events, to the history tables (`app.engine.archive`). Those
are a storage tier, not a state: the API, the CLI, the dashboard and the
lineage reads ask this module (or join the `executions_all` view, migration
150, which is its SQL face) and never see where a row is. Each read is one
statement, and a row moves between tiers in one statement, so a read sees
each execution exactly once.

Reads page by (created_at DESC, id), the history's segment key first. A page
is looked for in a window of creation times first (a day back from its
start, then a week), widened to the whole history only when the window holds
too few matches: the window's bound is a constant the planner prunes segments
by, so a page plans and reads one or two segments however many days are kept
(the statements go unprepared: a generic plan would lock and open every
segment). Each try is a whole statement over one snapshot and a wider try
replaces, never extends, a narrower one, so a page still sees each execution
once. A look-up by id reads the days around the time its id carries (ids are
time-ordered, app.engine.ids); an id that carries none probes every segment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from app.db import AsyncConn
from app.engine import ids
from app.engine.models import Event, Execution, to_execution
from app.engine.queries import load

__all__ = ["ID_WINDOW", "WINDOWS", "get", "list_events", "list_page"]

_SQL = load("history")

WINDOWS: Final = (timedelta(days=1), timedelta(days=8))
"""How far back from its start a page looks first, then next, before the whole history."""


ID_WINDOW: Final = timedelta(days=1)
"""How far either side of the time a version 7 id carries its execution is looked for
first: the id is made by the app, `created_at` by the database a moment later."""


async def get(conn: AsyncConn, execution_id: str) -> Execution | None:
    """An execution by id, wherever it is, in up to three looks, each one statement:
    the hot table (an active or recent execution: what pollers ask for), then for a
    time-ordered id (app.engine.ids) the days around its time (one to three segments
    planned), then everywhere (any other id, a clock far off, or a row that moved
    between two looks: it is in one tier at every instant, so the last look finds it)."""
    row = await (await conn.execute(_SQL["get_hot"], {"id": execution_id})).fetchone()
    made = ids.made_at(execution_id) if row is None else None
    if made is not None:
        near = {"id": execution_id, "since": made - ID_WINDOW, "until": made + ID_WINDOW}
        row = await (await conn.execute(_SQL["get_near"], near, prepare=False)).fetchone()
    if row is None:
        row = await (await conn.execute(_SQL["get"], {"id": execution_id})).fetchone()
    return to_execution(row) if row else None


async def list_page(
    conn: AsyncConn,
    *,
    limit: int,
    status: str | None = None,
    pipeline: str | None = None,
    lane: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    attempt_gte: int | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[Execution]:
    """Newest first; `before` is the (created_at, id) keyset cursor of the previous page.

    `since` (inclusive) and `until` (exclusive) bound `created_at`. Looks in
    WINDOWS back from the page's start (the cursor, `until` or now) first.
    """
    args = {
        "status": status,
        "pipeline": pipeline,
        "lane": lane,
        "since": since,
        "until": until,
        "attempt_gte": attempt_gte,
        "at": before[0] if before else None,
        "id": before[1] if before else None,
        "limit": limit,
    }
    ends = [t for t in (before[0] if before else None, until) if t is not None]
    start = min(ends) if ends else datetime.now(UTC)
    for window in WINDOWS:
        bound = start - window
        if since is not None and bound <= since:
            break  # the caller's own range is narrower: one statement over it
        cur = await conn.execute(_SQL["list_page"], {**args, "since": bound}, prepare=False)
        rows = await cur.fetchall()
        if len(rows) >= limit:  # all newer than `bound`: nothing older comes first
            return [to_execution(r) for r in rows]
    cur = await conn.execute(_SQL["list_page"], args, prepare=False)
    return [to_execution(r) for r in await cur.fetchall()]


async def list_events(
    conn: AsyncConn, execution_id: str, after_id: int = 0, *, execution: Execution | None = None
) -> list[Event]:
    """An execution's events in order (all in its own tier), after `after_id`; none for
    an execution that does not exist. The history's events are read in the one segment
    of the execution's created_at: from `execution` (the caller read it already), else
    from a `get` first."""
    if execution is None:
        execution = await get(conn, execution_id)
        if execution is None:
            return []
    args = {"id": execution_id, "after": after_id, "created_at": execution.created_at}
    cur = await conn.execute(_SQL["list_events"], args, prepare=False)
    return [msgspec.convert(r, Event) for r in await cur.fetchall()]
