"""submit(): a submission (the API, the CLI, the shell) becomes an execution.

Validates the pipeline name and its params before anything is stored,
resolves its retry budget (`app.engine.retry.budget`), then inserts the
execution and its `created` event in one statement (`executions.insert_many`,
the statement every execution is created by, with the NOTIFY that wakes the
workers, or a Waker's after the commit), and hands it to the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions
from app.engine.backends import OrchestratorBackend
from app.engine.executions import NewExecution
from app.engine.models import LANES, Execution
from app.engine.registry import Registry
from app.engine.retry import MAX_SECONDS, Overrides, budget
from app.engine.wake import Waker
from app.errors import InvalidRequest
from app.time_bounds import check_time

__all__ = [
    "MAX_SECONDS",
    "Outcome",
    "Submission",
    "hand_over",
    "prepare",
    "submit",
    "submit_batch",
    "submit_many",
]


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One execution asked for, as a submit's caller gives it (the API's body, `spine run`'s
    options, a line of `spine run --from-file`); checked by `prepare`."""

    pipeline: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    lane: str = "normal"
    logical_key: str | None = None
    max_attempts: int | None = None
    retry_backoff_seconds: float | None = None
    timeout_seconds: float | None = None
    run_at: datetime | None = None
    delay_seconds: float = 0.0


class Outcome(msgspec.Struct, frozen=True):
    """What became of one item of a bulk submit: `created`, `deduplicated` (the active
    execution holding its logical_key) or `invalid` (`error` says why; nothing stored)."""

    outcome: Literal["created", "deduplicated", "invalid"]
    execution: Execution | None = None
    error: str | None = None


def prepare(
    registry: Registry,
    settings: Settings,
    item: Submission,
    *,
    trigger_source: str,
    backend: str,
    execution_id: str | None = None,
) -> NewExecution:
    """The row to insert for `item`, validated and budgeted; raises InvalidRequest.

    Every submission is checked here, one or a thousand: the pipeline, the lane,
    the key, the times and the params (`Pipeline.validate`, with the settings),
    and its retry budget resolved (`app.engine.retry.budget`). A bulk submit
    passes each item's `execution_id` (`executions.new_ids`, made all at once).
    """
    found = registry.get(item.pipeline)  # UnknownPipeline lists the known ones
    if item.lane not in LANES:
        raise InvalidRequest(f"unknown lane {item.lane!r}; lanes: {', '.join(LANES)}")
    if item.logical_key is not None and not item.logical_key.strip():
        raise InvalidRequest("logical_key must not be blank")
    overrides = Overrides(item.max_attempts, item.retry_backoff_seconds, item.timeout_seconds)
    resolved = budget(found.retry, settings.max_attempts, overrides)
    delay_seconds = item.delay_seconds
    if not 0 <= delay_seconds <= MAX_SECONDS:
        raise InvalidRequest(f"a delay must be 0-{MAX_SECONDS:g} seconds")
    run_at = item.run_at
    if run_at is not None and run_at.tzinfo is None:
        raise InvalidRequest("run_at needs a time zone (RFC 3339, e.g. 2026-01-06T16:00:00Z)")
    run_at = check_time("run_at", run_at, plus_seconds=delay_seconds)  # readable once stored
    typed = found.validate(item.params, settings)
    return NewExecution(
        id=execution_id or executions.new_id(),
        pipeline=item.pipeline,
        params=_canonical(typed),
        lane=item.lane,
        trigger_source=trigger_source,
        logical_key=item.logical_key,
        max_attempts=resolved.max_attempts,
        retry_backoff_seconds=resolved.retry_backoff_seconds,
        timeout_seconds=resolved.timeout_seconds,
        overrides=overrides,
        run_at=run_at,
        delay_seconds=delay_seconds,
        backend=backend,
    )


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
    backend: OrchestratorBackend,
    max_attempts: int | None = None,
    retry_backoff_seconds: float | None = None,
    timeout_seconds: float | None = None,
    run_at: datetime | None = None,
    delay_seconds: float = 0.0,
    waker: Waker | None = None,
) -> tuple[Execution, bool]:
    """Record a pending execution; returns (execution, created).

    A `logical_key` already held by an active execution returns that execution
    (created=False) instead of creating a second one. `max_attempts`,
    `retry_backoff_seconds` and `timeout_seconds` (each attempt's limit)
    override the pipeline's RetryPolicy and SPINE_MAX_ATTEMPTS
    (app.engine.retry.budget), and are kept on the row for a manual retry.
    It is not claimed before `run_at` plus `delay_seconds`, the delay counted
    on the database clock. The workers are woken by a NOTIFY in the insert's
    own statement, or, given a `waker` (callers that submit concurrently,
    like the API), by the waker after the commit. The `backend` hears of each
    execution created.
    """
    item = Submission(
        pipeline=pipeline,
        params=params or {},
        lane=lane,
        logical_key=logical_key,
        max_attempts=max_attempts,
        retry_backoff_seconds=retry_backoff_seconds,
        timeout_seconds=timeout_seconds,
        run_at=run_at,
        delay_seconds=delay_seconds,
    )
    new = prepare(registry, settings, item, trigger_source=trigger_source, backend=backend.name)
    execution, created = await executions.insert(conn, new, notify=waker is None)
    if created:
        if waker is not None:
            waker.wake(lane)
        run_id = await backend.submit(conn, execution)
        if run_id is not None:
            execution = msgspec.structs.replace(execution, backend_run_id=run_id)
    return execution, created


async def submit_batch(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    items: Sequence[Submission | InvalidRequest],
    *,
    trigger_source: str,
    backend: OrchestratorBackend,
    waker: Waker | None = None,
) -> list[Outcome]:
    """A bulk submit, in autocommit: each item's Outcome, in order.

    Each item is checked as one submit is (`prepare`); an invalid one (or one
    the caller already found invalid, given as its error) stores nothing and
    stops nothing else. The valid ones go in one insert statement with one
    NOTIFY per lane (`executions.insert_or_join`), a logical_key held by an
    active execution, or by an earlier item, answering that execution; the
    backend then hears of the ones created, as with `submit`.
    """
    outcomes: list[Outcome | None] = []
    new: list[NewExecution] = []
    at: list[int] = []
    ids = executions.new_ids(len(items))
    for item, execution_id in zip(items, ids, strict=True):
        if isinstance(item, InvalidRequest):
            outcomes.append(Outcome("invalid", error=str(item)))
            continue
        try:
            new.append(
                prepare(
                    registry,
                    settings,
                    item,
                    trigger_source=trigger_source,
                    backend=backend.name,
                    execution_id=execution_id,
                )
            )
        except InvalidRequest as exc:
            outcomes.append(Outcome("invalid", error=str(exc)))
            continue
        at.append(len(outcomes))
        outcomes.append(None)
    made = await executions.insert_or_join(conn, new, notify=waker is None)
    if waker is not None:
        for lane in sorted({e.lane for e, created in made if created}):
            waker.wake(lane)
    await hand_over(conn, backend, made)
    for i, (execution, created) in zip(at, made, strict=True):
        outcomes[i] = Outcome("created" if created else "deduplicated", execution)
    return [o for o in outcomes if o is not None]


def _canonical(typed: msgspec.Struct) -> dict[str, Any]:
    """The validated params with defaults filled in, as stored and shown."""
    result: dict[str, Any] = msgspec.to_builtins(typed)
    return result


async def submit_many(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    pipeline: str,
    params: Sequence[dict[str, Any]],
    *,
    logical_keys: Sequence[str],
    lane: str = "normal",
    trigger_source: str = "api",
    backend: OrchestratorBackend,
) -> list[tuple[Execution, bool]]:
    """`submit` for many executions of one pipeline, each with its logical key, in one
    insert statement (a backfill's partitions): validated and budgeted like one, in
    order. A key an active execution holds gives that execution (created=False).

    Called inside the caller's transaction, so the caller hands the created ones to
    `backend` after its commit (`hand_over`): a broker must not hear of an execution
    the database may still roll back."""
    if not params:  # a scan or propagation pass with nothing to do asks nothing of the registry
        return []
    ids = executions.new_ids(len(params))
    new = [
        prepare(
            registry,
            settings,
            Submission(pipeline=pipeline, params=p, lane=lane, logical_key=key),
            trigger_source=trigger_source,
            backend=backend.name,
            execution_id=execution_id,
        )
        for p, key, execution_id in zip(params, logical_keys, ids, strict=True)
    ]
    return await executions.insert_or_join(conn, new)


async def hand_over(
    conn: AsyncConn, backend: OrchestratorBackend, made: Sequence[tuple[Execution, bool]]
) -> None:
    """Tell `backend` of the executions `submit_many` created, once they are committed."""
    new = [execution for execution, created in made if created]
    if new:
        await backend.submit_many(conn, new)
