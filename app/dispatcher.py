"""submit(): the one way an execution comes to exist.

Validates the pipeline name and its params before anything is stored, then
inserts the execution and its `created` event in one statement (the NOTIFY
that wakes the workers follows the commit), and hands it to the configured
backend.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from app.db import AsyncConn
from app.errors import InvalidRequest
from app.orchestration.backends import get_backend
from app.registry import Registry, get_registry
from app.repositories import executions as repo

__all__ = ["Lane", "submit"]

Lane = Literal["normal", "backfill"]
LANES = ("normal", "backfill")


async def submit(
    conn: AsyncConn,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    lane: str = "normal",
    logical_key: str | None = None,
    trigger_source: str = "api",
    registry: Registry | None = None,
) -> tuple[repo.Execution, bool]:
    """Record a pending execution; returns (execution, created).

    A `logical_key` already held by an active execution returns that execution
    (created=False) instead of creating a second one.
    """
    registry = registry or get_registry()
    found = registry.get(pipeline)  # UnknownPipeline lists the known ones
    if lane not in LANES:
        raise InvalidRequest(f"unknown lane {lane!r}; lanes: {', '.join(LANES)}")
    if logical_key is not None and not logical_key.strip():
        raise InvalidRequest("logical_key must not be blank")
    typed = found.validate(params or {})
    execution, created = await repo.insert(
        conn,
        pipeline=pipeline,
        params=_canonical(typed),
        lane=lane,
        trigger_source=trigger_source,
        logical_key=logical_key,
    )
    if created:
        await get_backend().submit(execution.id)
    return execution, created


def _canonical(typed: Any) -> dict[str, Any]:
    """The validated params with defaults filled in, as stored and shown."""
    result = msgspec.to_builtins(typed)
    assert isinstance(result, dict)
    return result
