"""Backfills: a range of a dataset's partitions, one execution per partition that needs one.

A backfill is a row you can follow (its items: the execution each partition
got, or `no_source`) and cancel (what has not started). Its executions go
through `submit_many` (submit's validation and retry budget, then the one
insert statement, all partitions at once), in the `backfill` lane with the
partition's logical key (`dataset:<name>:<key>`), so a partition already
being materialized is joined, never doubled. Backfills and scans of one
dataset take turns (an advisory lock held to the commit), and a backfill
asked for while an identical one was submitting joins that one: two
identical backfills at once create each execution once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.backends import OrchestratorBackend
from app.engine.datasets import (
    MAX_RANGE_PARTITIONS,
    PARTITION_STATES,
    Dataset,
    PartitionState,
    logical_key,
)
from app.engine.models import Execution
from app.engine.queries import load
from app.engine.registry import Registry
from app.engine.remote import FETCH_PIPELINE
from app.engine.submit import hand_over, submit_many

__all__ = [
    "ONLY",
    "PRUNED",
    "Backfill",
    "BackfillItem",
    "Only",
    "cancel",
    "create",
    "get",
    "list_recent",
]

Only = Literal["missing", "failed", "stale", "all"]
ONLY: Final[tuple[Only, ...]] = get_args(Only)

_TAKES: Final[Mapping[Only, frozenset[PartitionState]]] = {
    "missing": frozenset({"missing", "late"}),
    "failed": frozenset({"failed"}),
    "stale": frozenset({"stale"}),
    "all": frozenset(PARTITION_STATES),
}
"""The states each `--only` takes. `all` takes every partition; one already being
materialized keeps its execution (the item says `joined`)."""

PRUNED: Final = "pruned"
"""An item's `execution_status` when its execution was pruned before anything said how it
ended (sql/backfills.sql "items"): finished, its end unknown."""

_SQL = load("backfills")
_encode = msgspec.json.Encoder().encode


class BackfillItem(msgspec.Struct, frozen=True):
    """A partition of a backfill: `submitted` (an execution created), `joined` (one
    already active), or `no_source` (its input is absent: it stays missing or late).
    `execution_status`: its execution's now; once pruned, the status the materialization
    it recorded keeps, else `pruned`."""

    key: str
    outcome: str
    execution_id: str | None = None
    execution_status: str | None = None


class Backfill(msgspec.Struct, frozen=True):
    id: str
    dataset: str
    from_key: str
    to_key: str
    only: str
    key2: str | None
    created_at: datetime
    cancelled_at: datetime | None
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    """Items by their execution's status now (or their outcome when they have none)."""
    items: list[BackfillItem] = msgspec.field(default_factory=list)
    joined: bool = False
    """True when this request joined an identical backfill submitted at the same time."""


def _counts(items: list[BackfillItem]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        state = item.execution_status or item.outcome
        found[state] = found.get(state, 0) + 1
    return found


async def create(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    backend: OrchestratorBackend,
    dataset: Dataset,
    *,
    from_key: str,
    to_key: str,
    only: Only = "missing",
    key2: str | None = None,
    sources: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Backfill:
    """Create a backfill of `dataset` from `from_key` to `to_key` (period keys, inclusive).

    `sources`: the landed file of each partition key (`app.engine.scans.landed`)
    for a dataset with a landing pattern; a partition without one is fetched
    (`dataset_fetch`) when the dataset has a remote source, else `no_source`.
    """
    if only not in ONLY:
        raise ValueError(f"--only must be one of {', '.join(ONLY)}")
    first = dataset.period(from_key)
    last = dataset.period(to_key)
    if first > last:
        raise ValueError(f"{from_key} is after {to_key}")
    wanted = dataset.partitions(first, last, key2=key2, at_most=MAX_RANGE_PARTITIONS)
    key2_id = dataset.key2_of(key2) if key2 else None
    args = {
        "dataset": dataset.name,
        "from_key": from_key,
        "to_key": to_key,
        "only": only,
        "second": key2_id,  # the second key (placeholders have no digits)
    }
    async with conn.transaction():
        requested = await (await conn.execute(_SQL["requested_at"])).fetchone()
        assert requested is not None
        await conn.execute(_SQL["lock_dataset"], {"dataset": dataset.name})
        same = await (
            await conn.execute(_SQL["identical_since"], {**args, "requested_at": requested["at"]})
        ).fetchone()
        if same is not None:
            found = await get(conn, str(same["id"]))
            assert found is not None
            return msgspec.structs.replace(found, joined=True)
        tz = ZoneInfo(settings.market_tz)  # deadlines are the market's (as every read's)
        rows = await partitions.states(conn, dataset, wanted, now=now or _at(requested), tz=tz)
        takes = _TAKES[only]
        items: list[BackfillItem] = []
        # A landed file is ingested as it is; without one, a remote source fetches it.
        by_pipeline: dict[str, list[tuple[str, dict[str, object]]]] = {}
        for p, row in zip(wanted, rows, strict=True):
            if row.state not in takes:
                continue
            path = (sources or {}).get(p.key)
            if path is None and dataset.remote is not None:
                fetch: dict[str, object] = {"dataset": dataset.name, "key": p.key}
                by_pipeline.setdefault(FETCH_PIPELINE, []).append((p.key, fetch))
            elif dataset.observed or (dataset.landing is not None and path is None):
                items.append(BackfillItem(p.key, "no_source"))
            else:
                own = (p.key, dataset.params(p, path))
                by_pipeline.setdefault(dataset.pipeline, []).append(own)
        made: list[tuple[Execution, bool]] = []
        for pipeline, to_submit in sorted(by_pipeline.items()):
            submitted = await submit_many(
                conn,
                registry,
                settings,
                pipeline,
                [params for _, params in to_submit],
                logical_keys=[logical_key(dataset.name, key) for key, _ in to_submit],
                lane="backfill",
                trigger_source="backfill",
                backend=backend,
            )
            made += submitted
            for (key, _), (execution, created) in zip(to_submit, submitted, strict=True):
                outcome = "submitted" if created else "joined"
                items.append(BackfillItem(key, outcome, execution.id, execution.status))
        items.sort(key=lambda i: i.key)
        backfill_id = str(uuid.uuid4())
        written = await (await conn.execute(_SQL["insert"], {**args, "id": backfill_id})).fetchone()
        assert written is not None
        if items:
            await conn.execute(
                _SQL["insert_items"],
                {"id": backfill_id, "items": _encode([_item_row(i) for i in items]).decode()},
            )
    await hand_over(conn, backend, made)  # committed: the backend may hear of them now
    # What was just written, not read back: the pool is draining it already.
    return _backfill(written, items)


def _at(row: Mapping[str, object]) -> datetime:
    at = row["at"]
    assert isinstance(at, datetime)
    return at


def _item_row(item: BackfillItem) -> dict[str, str | None]:
    return {"key": item.key, "outcome": item.outcome, "execution_id": item.execution_id}


async def get(conn: AsyncConn, backfill_id: str) -> Backfill | None:
    """A backfill with its items and their executions' statuses now."""
    row = await (await conn.execute(_SQL["get"], {"id": backfill_id})).fetchone()
    if row is None:
        return None
    items = await (await conn.execute(_SQL["items"], {"id": backfill_id})).fetchall()
    return _backfill(
        row,
        [
            BackfillItem(
                key=str(i["partition_key"]),
                outcome=str(i["outcome"]),
                execution_id=i["execution_id"],  # type: ignore[arg-type]
                execution_status=i["execution_status"],  # type: ignore[arg-type]
            )
            for i in items
        ],
    )


def _backfill(
    row: Mapping[str, object], items: list[BackfillItem], counts: dict[str, int] | None = None
) -> Backfill:
    return Backfill(
        id=str(row["id"]),
        dataset=str(row["dataset"]),
        from_key=str(row["from_key"]),
        to_key=str(row["to_key"]),
        only=str(row["only_states"]),
        key2=row["key2"],  # type: ignore[arg-type]
        created_at=row["created_at"],  # type: ignore[arg-type]
        cancelled_at=row["cancelled_at"],  # type: ignore[arg-type]
        counts=_counts(items) if counts is None else counts,
        items=items,
    )


async def list_recent(
    conn: AsyncConn, *, dataset: str | None = None, limit: int = 50
) -> list[Backfill]:
    """The newest backfills first, with their counts but without their items."""
    rows = await (
        await conn.execute(_SQL["list_page"], {"dataset": dataset, "limit": limit})
    ).fetchall()
    return [_backfill(r, [], counts=r["counts"]) for r in rows]  # type: ignore[arg-type]


async def cancel(
    conn: AsyncConn, backend: OrchestratorBackend, backfill_id: str
) -> Backfill | None:
    """Cancel a backfill: each of its executions that has not started ends `cancelled`;
    those held are asked to stop (their attempt finishes, no retry follows), through the
    backend's cancel as a single execution's. None when there is no such backfill."""
    marked = await (await conn.execute(_SQL["mark_cancelled"], {"id": backfill_id})).fetchone()
    if marked is None:
        return None
    active = await (await conn.execute(_SQL["active_items"], {"id": backfill_id})).fetchall()
    for row in active:
        await backend.cancel(conn, str(row["id"]))
    return await get(conn, backfill_id)
