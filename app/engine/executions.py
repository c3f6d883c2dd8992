"""Executions: insert (one or many) and cancel (sql/executions.sql).

Every status change and its event are one statement (data-modifying CTEs),
so they commit together. The worker side (claim, finish, progress) is in
`leases`; heartbeats and recovery are in `workers`. Reads of an execution,
wherever it is stored, are `app.engine.history`'s; moving finished ones to the
history tier and pruning are `app.engine.archive`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from psycopg.rows import tuple_row

from app.db import AsyncConn
from app.engine import history
from app.engine.ids import new_id, new_ids
from app.engine.models import HELD, TERMINAL, Execution, Lane, to_execution
from app.engine.queries import load
from app.engine.retry import NO_OVERRIDES, Overrides

__all__ = [
    "COLUMNS",
    "HELD_SQL",
    "TERMINAL_SQL",
    "CancelOutcome",
    "NewExecution",
    "insert",
    "insert_many",
    "insert_or_join",
    "new_id",
    "new_ids",
    "request_cancel",
    "to_execution",
]


def _sql_list(values: Iterable[str]) -> str:
    """A constant tuple as an SQL list literal, e.g. ('pending', 'queued')."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# For the modules whose SQL is still in Python (activity, workers, gauges); the
# .sql files write the lists out (tests/unit/test_sql_hygiene.py checks them).
HELD_SQL = _sql_list(HELD)
TERMINAL_SQL = _sql_list(TERMINAL)

COLUMNS = (
    "id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id, "
    "cancel_requested, created_at, queued_at, started_at, completed_at, error, "
    "max_attempts, retry_backoff_seconds, available_at, timeout_seconds"
)


_SQL = load("executions")


# ------------------------------------------------------------------ insert


class NewExecution(msgspec.Struct, frozen=True):
    """One execution to insert, its retry budget already resolved (app.engine.retry.budget).

    `overrides`: what of that budget the submission set itself, kept on the
    row for a manual retry to resolve its fresh budget by. `event`: what its
    `created` event says besides the trigger source and the lane (a
    schedule's fire names the schedule and the slot).
    """

    id: str
    pipeline: str
    params: dict[str, Any]
    lane: Lane
    trigger_source: str
    logical_key: str | None
    max_attempts: int
    retry_backoff_seconds: float
    timeout_seconds: float | None = None
    overrides: Overrides = NO_OVERRIDES
    run_at: datetime | None = None
    delay_seconds: float = 0.0
    event: dict[str, Any] = msgspec.field(default_factory=dict)
    backend: str = "local"
    """The backend that runs it (`OrchestratorBackend.name`): only its workers claim it."""


_encode = msgspec.json.Encoder().encode


async def insert_many(
    conn: AsyncConn, new: Sequence[NewExecution], *, notify: bool = True
) -> list[Execution]:
    """Insert pending executions with their `created` events in one statement; the ones
    created, in order (one whose logical_key an active execution holds is not).

    Every execution comes to exist through this statement: a submit, a bulk
    submit, a schedule's fire, a manual run, a backfill. In autocommit mode the
    insert, its events and the NOTIFY are one statement, one round trip, and
    commit together (the workers are woken at the commit, never before the rows
    are visible; a lane's notices fold into one, however many rows). A second
    round trip for a NOTIFY of its own measured slower one submit at a time
    (docs/benchmarks.md, issue 19). With `notify=False` the caller wakes the
    workers after the commit itself: `app.engine.wake.Waker`, for callers that
    submit concurrently (a notifying commit holds PostgreSQL's notify-queue lock
    across its WAL flush, so concurrent ones queue), and a fire, whose
    transaction goes on after the insert.
    """
    created, _ = await _insert(conn, new, notify)
    return [created[n.id] for n in new if n.id in created]


async def insert_or_join(
    conn: AsyncConn, new: Sequence[NewExecution], *, notify: bool = True
) -> list[tuple[Execution, bool]]:
    """`insert_many`, answering for each row, in order, (execution, created): the one
    created, or the active execution that holds its logical_key (created=False).

    A key given twice in `new` is inserted once; the later rows answer the first's
    execution. One statement when the holders were committed before it started;
    a holder that committed while it waited (a concurrent submit of the same key)
    costs a second, and one that finished since, another insert.
    """
    first: dict[str, NewExecution] = {}  # a key's first row in `new`: the one sent
    for n in new:
        if n.logical_key is not None:
            first.setdefault(n.logical_key, n)
    todo = [n for n in new if n.logical_key is None or first[n.logical_key] is n]
    made: dict[str, tuple[Execution, bool]] = {}
    while todo:
        created, held = await _insert(conn, todo, notify)
        made.update((i, (e, True)) for i, e in created.items())
        made.update((i, (e, False)) for i, e in held.items())
        unseen = [n for n in todo if n.id not in made]
        if unseen:
            keys = [n.logical_key for n in unseen]
            rows = await (await conn.execute(_SQL["active_by_keys"], (keys,))).fetchall()
            holders = {str(r["logical_key"]): to_execution(r) for r in rows}
            made.update(
                (n.id, (holders[k], False)) for n in unseen if (k := n.logical_key) in holders
            )
        # A holder that ended between the insert and the look-up: insert again.
        todo = [n for n in unseen if n.id not in made]
    answers: list[tuple[Execution, bool]] = []
    for n in new:
        sent = n if n.logical_key is None else first[n.logical_key]
        execution, created_now = made[sent.id]
        answers.append((execution, created_now and sent is n))
    return answers


async def _insert(
    conn: AsyncConn, new: Sequence[NewExecution], notify: bool
) -> tuple[dict[str, Execution], dict[str, Execution]]:
    """The insert statement: (created, held), each by the id sent. `held`: the active
    holder of a row's key, when the statement's snapshot sees it."""
    if not new:
        return {}, {}
    args = {"rows": _encode(new).decode(), "notify": notify}
    # Tuples, not the connection's dicts: a bulk submit reads a thousand rows.
    cur = conn.cursor(row_factory=tuple_row)
    rows = await (await cur.execute(_SQL["insert"], args)).fetchall()
    by_id = {n.id: n for n in new}
    created: dict[str, Execution] = {}
    held: dict[str, Execution] = {}
    for sent, at, available, holder in rows:
        if holder is None:
            # Built here rather than decoded from a RETURNING of every column (the
            # params' JSON above all): a third of a submit's client CPU.
            created[sent] = _inserted(by_id[sent], at, available)
        else:
            held[sent] = msgspec.convert(holder, Execution)
    return created, held


def _inserted(new: NewExecution, created_at: datetime, available_at: datetime) -> Execution:
    return Execution(
        id=new.id,
        pipeline=new.pipeline,
        params=new.params,
        lane=new.lane,
        status="pending",
        trigger_source=new.trigger_source,
        logical_key=new.logical_key,
        attempt=0,
        worker_id=None,
        cancel_requested=False,
        created_at=created_at,
        queued_at=None,
        started_at=None,
        completed_at=None,
        error=None,
        max_attempts=new.max_attempts,
        retry_backoff_seconds=float(new.retry_backoff_seconds),
        available_at=available_at,
        timeout_seconds=None if new.timeout_seconds is None else float(new.timeout_seconds),
        backend=new.backend,
    )


async def insert(
    conn: AsyncConn, new: NewExecution, *, notify: bool = True
) -> tuple[Execution, bool]:
    """Insert one execution (`insert_or_join`); returns (execution, created).

    When its logical_key is already held by an active execution, that one is
    returned with created=False.
    """
    return (await insert_or_join(conn, [new], notify=notify))[0]


# ------------------------------------------------------------------ cancel

CancelOutcome = Literal["cancelled", "requested", "already_requested", "finished", "missing"]


async def request_cancel(
    conn: AsyncConn, execution_id: str
) -> tuple[Execution | None, CancelOutcome]:
    """Cancel: pending ends at once; queued/running is asked to stop.

    Returns (execution after the change, outcome) where outcome is one of
    "cancelled", "requested", "already_requested", "finished" or "missing".
    """
    async with conn.transaction():
        cur = await conn.execute(_SQL["lock_for_cancel"], (execution_id,))
        row = await cur.fetchone()
        if row is None:  # in the history tier (finished), or nowhere
            stored = await history.get(conn, execution_id)
            return stored, "missing" if stored is None else "finished"
        outcome: CancelOutcome
        if row["status"] in TERMINAL:
            outcome = "finished"
        elif row["status"] == "pending":
            await conn.execute(_SQL["cancel_pending"], {"id": execution_id})
            outcome = "cancelled"
        elif row["cancel_requested"]:
            outcome = "already_requested"
        else:
            await conn.execute(_SQL["request_cancel"], {"id": execution_id})
            outcome = "requested"
        execution = await history.get(conn, execution_id)
    return execution, outcome
