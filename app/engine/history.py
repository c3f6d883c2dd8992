"""One logical history: every read of an execution, wherever it is stored.

An execution lives in the hot table (`executions`) while it is pending, held
or running and for SPINE_HISTORY_MOVE_AFTER after it finished; the pools then
move it, with its events, to the history tables (`app.engine.archive`). Those
are a storage tier, not a state: the API, the CLI, the dashboard and the
lineage reads ask this module (or join the `executions_all` view, migration
150, which is its SQL face) and never see where a row is. Each read is one
statement, and a row moves between tiers in one statement, so a read sees
each execution exactly once.

Reads page by (created_at DESC, id), the history's segment key first, so a
page reads the newest segments only and a time range prunes the rest. A
look-up by id alone probes each segment's id index (a few per day kept).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.db import AsyncConn
from app.engine.models import Event, Execution, to_execution
from app.engine.queries import load

__all__ = ["get", "list_events", "list_page"]

_SQL = load("history")


async def get(conn: AsyncConn, execution_id: str) -> Execution | None:
    cur = await conn.execute(_SQL["get"], (execution_id,))
    row = await cur.fetchone()
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

    `since` (inclusive) and `until` (exclusive) bound `created_at`.
    """
    cur = await conn.execute(
        _SQL["list_page"],
        {
            "status": status,
            "pipeline": pipeline,
            "lane": lane,
            "since": since,
            "until": until,
            "attempt_gte": attempt_gte,
            "at": before[0] if before else None,
            "id": before[1] if before else None,
            "limit": limit,
        },
    )
    return [to_execution(r) for r in await cur.fetchall()]


async def list_events(conn: AsyncConn, execution_id: str, after_id: int = 0) -> list[Event]:
    """An execution's events in order (all in its own tier), after `after_id`."""
    cur = await conn.execute(_SQL["list_events"], {"id": execution_id, "after": after_id})
    return [msgspec.convert(r, Event) for r in await cur.fetchall()]
