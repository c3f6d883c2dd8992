"""What the API, the CLI and the metrics show of datasets: summaries, partition pages.

A dataset's partitions run from its declared start to the period holding
today; their states come from `partitions.states` (one statement). The
freshness lag is how long the oldest partition that should be there and is
not (`missing`, `late` or `failed`) has been due: 0 when none is.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

import msgspec

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import (
    PARTITION_STATES,
    Dataset,
    DatasetCatalog,
    Partition,
    PartitionState,
)
from app.engine.partitions import Materialization, PartitionRow, StateCounts
from app.engine.schedules_sql import db_now

__all__ = [
    "DatasetSummary",
    "Lineage",
    "RelatedPartition",
    "lineage",
    "summaries",
    "summarize",
    "summary",
    "upto_today",
    "upto_today_doc",
]


class DatasetSummary(msgspec.Struct, frozen=True):
    """One dataset: its declaration in words and its partitions counted by state."""

    name: str
    description: str
    scheme: str
    pipeline: str
    key2: list[str]
    landing: str | None
    upstreams: list[str]
    downstreams: list[str]
    propagate: bool
    partitions: dict[str, int]
    """Every state, counted (0 where none)."""
    newest_loaded: str | None
    freshness_lag_seconds: int


def upto_today(dataset: Dataset, now: datetime, tz: tzinfo) -> list[Partition]:
    """Every partition from the dataset's start to the period holding `now` (in `tz`)."""
    return dataset.partitions(dataset.start, now.astimezone(tz).date())


_DOCS: dict[tuple[int, str], tuple[Dataset, date, str]] = {}
_DOCS_KEPT = 64
"""Documents kept, the oldest made dropped first: far more than the datasets of a
deployment times its time zones (seven by one today), so a scrape always finds its own."""


def upto_today_doc(dataset: Dataset, now: datetime, tz: tzinfo) -> str:
    """`upto_today`'s partitions as the states statement takes them, made once a day per
    dataset: their due and late times and holidays do not change, and a metrics scrape
    asks for every dataset's (regsho_daily alone: 10,848 partitions, about 100 ms of
    Python to make). One kept per dataset and time zone, the day's; keyed by the dataset
    object itself (held here, so its id stays its own)."""
    today = now.astimezone(tz).date()
    key = (id(dataset), str(tz))
    found = _DOCS.get(key)
    if found is not None and found[0] is dataset and found[1] == today:
        return found[2]
    doc = partitions.partitions_doc(dataset, upto_today(dataset, now, tz), tz)
    _DOCS.pop(key, None)
    if len(_DOCS) >= _DOCS_KEPT:
        del _DOCS[next(iter(_DOCS))]  # the oldest made
    _DOCS[key] = (dataset, today, doc)
    return doc


def _summary(
    dataset: Dataset, datasets: DatasetCatalog, counted: StateCounts, at: datetime
) -> DatasetSummary:
    behind = counted.behind_since
    return DatasetSummary(
        name=dataset.name,
        description=dataset.description,
        scheme=dataset.scheme,
        pipeline=dataset.pipeline,
        key2=list(dataset.key2),
        landing=dataset.landing,
        upstreams=[f"{u.dataset} ({u.mapping})" for u in dataset.upstreams],
        downstreams=[d.name for d, _ in datasets.downstream(dataset.name)],
        propagate=dataset.propagate,
        partitions={state: counted.counts.get(state, 0) for state in PARTITION_STATES},
        newest_loaded=counted.newest_loaded,
        freshness_lag_seconds=round(max(0.0, (at - behind).total_seconds())) if behind else 0,
    )


async def summarize(
    conn: AsyncConn,
    dataset: Dataset,
    datasets: DatasetCatalog,
    *,
    market_tz: str,
    now: datetime | None = None,
) -> tuple[DatasetSummary, list[PartitionRow]]:
    """The dataset's summary and every partition's row, in key order."""
    tz = ZoneInfo(market_tz)
    at = now or await db_now(conn)
    rows = await partitions.state_rows(conn, dataset, upto_today_doc(dataset, at, tz), now=at)
    counted = partitions.count_states((r.key, r.due_at, r.state) for r in rows)
    return _summary(dataset, datasets, counted, at), rows


async def summary(
    conn: AsyncConn,
    dataset: Dataset,
    datasets: DatasetCatalog,
    *,
    market_tz: str,
    now: datetime | None = None,
) -> DatasetSummary:
    """The dataset's summary alone: its partitions counted, no row kept."""
    tz = ZoneInfo(market_tz)
    at = now or await db_now(conn)
    doc = upto_today_doc(dataset, at, tz)
    counted = await partitions.state_counts(conn, dataset, doc, now=at)
    return _summary(dataset, datasets, counted, at)


async def summaries(
    conn: AsyncConn, datasets: DatasetCatalog, *, market_tz: str, now: datetime | None = None
) -> list[DatasetSummary]:
    """Every dataset's summary, by name: its partitions counted, no row kept."""
    at = now or await db_now(conn)
    found = [await summary(conn, d, datasets, market_tz=market_tz, now=at) for d in datasets]
    return sorted(found, key=lambda s: s.name)


class RelatedPartition(msgspec.Struct, frozen=True):
    """A partition upstream or downstream of another, with its state now."""

    dataset: str
    key: str
    state: PartitionState


class Lineage(msgspec.Struct, frozen=True):
    """A partition: its state, its materializations newest first (each with its source,
    execution, load and row counts), and its upstream and downstream partitions."""

    dataset: str
    key: str
    state: PartitionState
    due_at: datetime
    late_at: datetime
    materializations: list[Materialization]
    upstream: list[RelatedPartition]
    downstream: list[RelatedPartition]


async def lineage(
    conn: AsyncConn, datasets: DatasetCatalog, dataset: Dataset, part: Partition
) -> Lineage:
    """A partition's lineage (the API's route and the dashboard's page): one states
    statement per dataset involved, however many related partitions it has."""
    up: dict[str, list[Partition]] = {}
    for u in dataset.upstreams:
        upstream = datasets.get(u.dataset)
        up[u.dataset] = (
            [upstream.partition(part.key)]
            if u.mapping == "same_key"
            else list(upstream.partitions_of_period(part.period))
        )
    down: dict[str, list[Partition]] = {}
    for d, k in datasets.downstream_keys(dataset.name, part.key):
        down.setdefault(d.name, []).append(d.partition(k))
    (row,) = await partitions.states(conn, dataset, [part])
    return Lineage(
        dataset=dataset.name,
        key=part.key,
        state=row.state,
        due_at=row.due_at,
        late_at=row.late_at,
        materializations=await partitions.materializations(conn, dataset.name, part.key),
        upstream=await _related(conn, datasets, up),
        downstream=await _related(conn, datasets, down),
    )


async def _related(
    conn: AsyncConn, datasets: DatasetCatalog, by_dataset: dict[str, list[Partition]]
) -> list[RelatedPartition]:
    found: list[RelatedPartition] = []
    for name, parts in by_dataset.items():
        rows = await partitions.states(conn, datasets.get(name), parts)
        found += [RelatedPartition(name, r.key, r.state) for r in rows]
    return found
