"""Partitions in PostgreSQL: record a materialization, compute states, read lineage.

The statements are in sql/datasets.sql. A materialization is recorded by the
load that made it, in the load's own transaction, so the data and the record
of it commit together; the partition's state is computed from these records
and from the executions holding its logical key, never stored.

A fetch (app.engine.remote) runs the dataset's own ingest, which knows only the
landed file; the fetch's URL and validators reach `record` through
`fetched_from` (a context variable set around the ingest), so they commit with
the materialization, not in a second statement a crash could separate from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

import msgspec
from psycopg import AsyncCursor

from app.db import AsyncConn
from app.engine import executions
from app.engine.datasets import Dataset, Partition, PartitionState
from app.engine.executions import NewExecution
from app.engine.market_calendar import is_trading_day
from app.engine.queries import load
from app.engine.retry import RetryPolicy, budget
from app.engine.schedules_sql import db_now

__all__ = [
    "PROPAGATE_PIPELINE",
    "PROPAGATE_RETRY",
    "Materialization",
    "NewMaterialization",
    "PartitionRow",
    "RemoteOrigin",
    "Source",
    "StateCounts",
    "count_states",
    "fetched_from",
    "materializations",
    "partitions_doc",
    "record",
    "request_propagation",
    "state_counts",
    "state_rows",
    "states",
]

_SQL = load("datasets")
_encode = msgspec.json.Encoder().encode


class Source(msgspec.Struct, frozen=True):
    """Where a materialization's input came from: a landed file or a remote URL."""

    path: str | None = None
    url: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    mtime: datetime | None = None
    validators: dict[str, str] | None = None


class RemoteOrigin(msgspec.Struct, frozen=True):
    """The fetch a landed file came from: added to what its ingest records."""

    dataset: str
    url: str
    validators: dict[str, str]


_ORIGIN: ContextVar[RemoteOrigin | None] = ContextVar("spine_remote_origin", default=None)


@contextmanager
def fetched_from(origin: RemoteOrigin) -> Iterator[None]:
    """While the block runs (the ingest of a fetched file), `record` gives the dataset's
    materializations the fetch's URL and validators."""
    token = _ORIGIN.set(origin)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def _with_origin(m: NewMaterialization) -> Source:
    origin = _ORIGIN.get()
    if origin is None or origin.dataset != m.dataset or m.source.url is not None:
        return m.source
    return msgspec.structs.replace(m.source, url=origin.url, validators=origin.validators)


class NewMaterialization(msgspec.Struct, frozen=True):
    """A partition's materialization as its load records it, with the one set of row-count
    names (`inserted`, `changed`, `removed`, `unchanged`, `rejected`)."""

    dataset: str
    key: str
    execution_id: str | None
    load_id: int | None = None
    inserted: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: int = 0
    source: Source = msgspec.field(default_factory=Source)
    outcome: str = "loaded"
    execution_status: str = "completed"
    """A materialization is recorded in its load's transaction: it exists only when the
    load committed, which its execution reports as `completed`."""


class Recorded(msgspec.Struct, frozen=True):
    id: int
    content_changed: bool
    superseded_id: int | None


class Materialization(msgspec.Struct, frozen=True):
    id: int
    dataset: str
    partition_key: str
    outcome: str
    execution_id: str | None
    execution_status: str | None
    load_id: int | None
    inserted: int
    changed: int
    removed: int
    unchanged: int
    rejected: int
    source_path: str | None
    source_url: str | None
    source_bytes: int | None
    source_sha256: str | None
    source_mtime: datetime | None
    source_validators: dict[str, Any] | None
    content_changed: bool
    materialized_at: datetime
    superseded_id: int | None


class PartitionRow(msgspec.Struct, frozen=True):
    """A partition's computed state, with its newest materialization and execution."""

    key: str
    state: PartitionState
    due_at: datetime
    late_at: datetime
    materialization_id: int | None
    materialized_at: datetime | None
    execution_id: str | None


async def record(conn: AsyncConn, new: Sequence[NewMaterialization]) -> list[Recorded]:
    """Record materializations (call inside the load's transaction), each superseding its
    partition's newest, in key order; one an execution recorded already is skipped.
    Partitions are locked in that order, so concurrent loads touching the same partitions
    take turns without deadlocking. A changed one that a dataset downstream follows by
    itself asks for a propagation pass in the same transaction."""
    done: list[Recorded] = []
    changed: set[str] = set()
    for m in sorted(new, key=_order):
        await conn.execute(_SQL["lock_partition"], {"dataset": m.dataset, "key": m.key})
        source = _with_origin(m)
        args = {
            "dataset": m.dataset,
            "key": m.key,
            "outcome": m.outcome,
            "execution_id": m.execution_id,
            "execution_status": m.execution_status,
            "load_id": m.load_id,
            "inserted": m.inserted,
            "changed": m.changed,
            "removed": m.removed,
            "unchanged": m.unchanged,
            "rejected": m.rejected,
            "source_path": source.path,
            "source_url": source.url,
            "source_bytes": source.bytes,
            "sha": source.sha256,
            "source_mtime": source.mtime,
            "source_validators": (
                None if source.validators is None else _encode(source.validators).decode()
            ),
        }
        row = await (await conn.execute(_SQL["record"], args)).fetchone()
        if row is None:
            continue  # this execution recorded it already (a retry after its commit)
        recorded = msgspec.convert(row, Recorded)
        done.append(recorded)
        if recorded.content_changed:
            changed.add(m.dataset)
    for dataset in sorted(changed):
        found = await (await conn.execute(_SQL["propagates"], {"dataset": dataset})).fetchone()
        if found is not None and found["propagates"]:
            await request_propagation(conn, next((m.execution_id for m in new), None))
            break
    return done


def _order(m: NewMaterialization) -> tuple[str, str]:
    return (m.dataset, m.key)


PROPAGATE_PIPELINE = "dataset_propagate"
PROPAGATE_RETRY = RetryPolicy(max_attempts=3, backoff_seconds=2.0)
"""The propagate pipeline's retry policy (app.engine.sensors), also the budget of the
executions `request_propagation` inserts."""


async def request_propagation(conn: AsyncConn, recorded_by: str | None = None) -> None:
    """Ask for a propagation pass (app.engine.propagation), in the caller's transaction,
    after it recorded a changed materialization that a dataset downstream follows. Each
    request is its own execution: one already running may have looked at the partitions
    before this change committed. It runs on the backend of the execution that recorded
    the change (`recorded_by`; local when none): a Celery deployment's pools may be none."""
    backend = "local"
    if recorded_by is not None:
        row = await (await conn.execute(_SQL["backend_of"], {"id": recorded_by})).fetchone()
        backend = str(row["backend"]) if row is not None else backend
    resolved = budget(PROPAGATE_RETRY, 3)
    new = NewExecution(
        id=executions.new_id(),
        pipeline=PROPAGATE_PIPELINE,
        params={},
        lane="normal",
        trigger_source="propagation",
        logical_key=None,
        max_attempts=resolved.max_attempts,
        retry_backoff_seconds=resolved.retry_backoff_seconds,
        backend=backend,
    )
    await executions.insert_many(conn, [new])


def partitions_doc(dataset: Dataset, partitions: Sequence[Partition], tz: tzinfo = UTC) -> str:
    """The partitions as the states statement takes them: one JSON document (msgspec
    writes it in C) of key, due and late times, and whether the market was closed
    (a trading-days dataset's partition on a holiday has no data: `no_data`)."""
    closing = dataset.trading_days and dataset.scheme == "day"
    fresh = dataset.freshness
    return _encode(
        [
            {
                "key": p.key,
                "due_at": fresh.due_at(p, tz),
                "late_at": fresh.late_at(p, tz),
                "closed": closing and not is_trading_day(p.start),
            }
            for p in partitions
        ]
    ).decode()


async def states(
    conn: AsyncConn,
    dataset: Dataset,
    partitions: Sequence[Partition],
    *,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> list[PartitionRow]:
    """The state of each partition, in the order given, computed in one statement. `now`
    (default: the database's clock) decides not_due, missing and late."""
    cur = await _states(conn, dataset, partitions_doc(dataset, partitions, tz), now=now)
    by_key = {str(r["key"]): msgspec.convert(r, PartitionRow) for r in await cur.fetchall()}
    return [by_key[p.key] for p in partitions]  # the order given: callers zip with it


async def state_rows(
    conn: AsyncConn, dataset: Dataset, doc: str, *, now: datetime
) -> list[PartitionRow]:
    """The states statement's rows for `doc` (`partitions_doc`), in its order: a dataset
    page reads every partition from a kept document (`dataset_reads.upto_today_doc`)."""
    cur = await _states(conn, dataset, doc, now=now)
    return msgspec.convert(await cur.fetchall(), list[PartitionRow])


class StateCounts(msgspec.Struct, frozen=True):
    """A dataset's partitions counted by state, its newest loaded key (the greatest in
    text order: the latest period, then the second key's name) and the due time of its
    oldest partition that should be there and is not (`missing`, `late`, `failed`)."""

    counts: dict[str, int]
    newest_loaded: str | None
    behind_since: datetime | None


_BEHIND = frozenset({"missing", "late", "failed"})


async def state_counts(
    conn: AsyncConn, dataset: Dataset, doc: str, *, now: datetime
) -> StateCounts:
    """The states statement's answer for `doc` (`partitions_doc`) counted, without a
    row object per partition: a metrics scrape counts every partition of every dataset."""
    cur = await _states(conn, dataset, doc, now=now)
    rows = await cur.fetchall()
    return count_states(
        (cast(str, r["key"]), cast(datetime, r["due_at"]), cast(str, r["state"])) for r in rows
    )


def count_states(rows: Iterable[tuple[str, datetime, str]]) -> StateCounts:
    """(key, due_at, state) of each partition, counted."""
    counts: dict[str, int] = {}
    newest: str | None = None
    behind: datetime | None = None
    for key, due_at, state in rows:
        counts[state] = counts.get(state, 0) + 1
        if state == "loaded" and (newest is None or key > newest):
            newest = key
        elif state in _BEHIND and (behind is None or due_at < behind):
            behind = due_at
    return StateCounts(counts, newest, behind)


async def _states(
    conn: AsyncConn, dataset: Dataset, doc: str, *, now: datetime | None
) -> AsyncCursor[dict[str, object]]:
    """The states statement run for `doc` (`partitions_doc`), its rows still to fetch."""
    args = {
        "dataset": dataset.name,
        "partitions": doc,
        "upstreams": _encode(
            [{"dataset": u.dataset, "mapping": u.mapping} for u in dataset.upstreams]
        ).decode(),
        "now": now or await db_now(conn),
    }
    return await conn.execute(_SQL["states"], args)


async def materializations(
    conn: AsyncConn, dataset: str, key: str, *, limit: int = 100
) -> list[Materialization]:
    """A partition's materializations, newest first."""
    args = {"dataset": dataset, "key": key, "limit": limit}
    rows = await (await conn.execute(_SQL["materializations"], args)).fetchall()
    return [msgspec.convert(r, Materialization) for r in rows]


async def latest_sources(conn: AsyncConn, dataset: str) -> dict[str, Source]:
    """Each partition's newest recorded source, by key (what a scan compares files with)."""
    rows = await (await conn.execute(_SQL["latest_sources"], {"dataset": dataset})).fetchall()
    return {
        str(r["partition_key"]): Source(
            path=r["source_path"],  # type: ignore[arg-type]
            bytes=r["source_bytes"],  # type: ignore[arg-type]
            sha256=r["source_sha256"],  # type: ignore[arg-type]
            mtime=r["source_mtime"],  # type: ignore[arg-type]
        )
        for r in rows
    }
