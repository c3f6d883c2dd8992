"""submit(): the one way an execution comes to exist.

Validates the pipeline name and its params before anything is stored, then
inserts the execution and its `created` event in one statement (the NOTIFY
that wakes the workers follows the commit), and hands it to the backend.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions
from app.engine.backends import OrchestratorBackend, make_backend
from app.engine.models import LANES, Execution
from app.engine.registry import Registry
from app.errors import InvalidRequest

__all__ = ["submit"]


async def submit(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    lane: str = "normal",
    logical_key: str | None = None,
    trigger_source: str = "api",
    backend: OrchestratorBackend | None = None,
) -> tuple[Execution, bool]:
    """Record a pending execution; returns (execution, created).

    A `logical_key` already held by an active execution returns that execution
    (created=False) instead of creating a second one.
    """
    found = registry.get(pipeline)  # UnknownPipeline lists the known ones
    if lane not in LANES:
        raise InvalidRequest(f"unknown lane {lane!r}; lanes: {', '.join(LANES)}")
    if logical_key is not None and not logical_key.strip():
        raise InvalidRequest("logical_key must not be blank")
    typed = found.validate(params or {}, settings)
    execution, created = await executions.insert(
        conn,
        pipeline=pipeline,
        params=_canonical(typed),
        lane=lane,
        trigger_source=trigger_source,
        logical_key=logical_key,
    )
    if created:
        await (backend or make_backend(settings)).submit(execution)
    return execution, created


def _canonical(typed: msgspec.Struct) -> dict[str, Any]:
    """The validated params with defaults filled in, as stored and shown."""
    result: dict[str, Any] = msgspec.to_builtins(typed)
    return result
