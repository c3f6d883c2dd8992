"""The outbox of a brokered backend (Celery): PostgreSQL first, the message after.

An execution is committed before its message is published, and the message
carries only its id, so the broker never holds state the database lacks. What
could not be published (the process died between the commit and the publish,
or the broker was down), or was published and never started, is found again
by `unpublished` and published by the relay (worker/celery_relay.py). A
duplicate message costs one claim statement that claims nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.db import AsyncConn
from app.engine.queries import load

__all__ = ["Due", "Sent", "mark_published", "mark_unpublished", "unpublished"]

_SQL = load("outbox")


class Sent(msgspec.Struct, frozen=True):
    """A task published for an execution at `attempt`: `run_id` is the task's id."""

    id: str
    run_id: str
    attempt: int


_encode = msgspec.json.Encoder().encode


class Due(msgspec.Struct, frozen=True):
    """An execution the relay is to publish."""

    id: str
    lane: str
    attempt: int


async def unpublished(
    conn: AsyncConn, backend: str, *, republish_after: float, limit: int = 500
) -> list[Due]:
    """The executions to publish, locked until the caller's transaction ends."""
    args = {"backend": backend, "after": republish_after, "limit": limit}
    rows = await (await conn.execute(_SQL["unpublished"], args)).fetchall()
    return [Due(str(r["id"]), str(r["lane"]), int(str(r["attempt"]))) for r in rows]


async def mark_published(conn: AsyncConn, sent: Sequence[Sent]) -> None:
    """Record the tasks sent (only for executions still pending)."""
    if sent:
        await conn.execute(_SQL["published"], {"sent": _encode(list(sent)).decode()})


async def mark_unpublished(conn: AsyncConn, sent: Sequence[Sent]) -> None:
    """Undo `mark_published` for tasks the broker then refused."""
    if sent:
        await conn.execute(_SQL["unpublish"], {"sent": _encode(list(sent)).decode()})
