"""What the API, the CLI and the metrics show of datasets: summaries, partition pages.

A dataset's partitions run from its declared start to the period holding
today; their states come from `partitions.states` (one statement). The
freshness lag is how long the oldest partition that should be there and is
not (`missing`, `late` or `failed`) has been due: 0 when none is.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import msgspec

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import PARTITION_STATES, Dataset, DatasetCatalog, Partition
from app.engine.partitions import PartitionRow
from app.engine.schedules_sql import db_now

__all__ = ["DatasetSummary", "summaries", "summarize", "upto_today"]

_BEHIND = frozenset({"missing", "late", "failed"})


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
    rows = await partitions.states(conn, dataset, upto_today(dataset, at, tz), now=at, tz=tz)
    counts: dict[str, int] = dict.fromkeys(PARTITION_STATES, 0)
    for r in rows:
        counts[r.state] += 1
    loaded = [r.key for r in rows if r.state == "loaded"]
    behind = [r.due_at for r in rows if r.state in _BEHIND]
    summary = DatasetSummary(
        name=dataset.name,
        description=dataset.description,
        scheme=dataset.scheme,
        pipeline=dataset.pipeline,
        key2=list(dataset.key2),
        landing=dataset.landing,
        upstreams=[f"{u.dataset} ({u.mapping})" for u in dataset.upstreams],
        downstreams=[d.name for d, _ in datasets.downstream(dataset.name)],
        propagate=dataset.propagate,
        partitions=counts,
        newest_loaded=loaded[-1] if loaded else None,
        freshness_lag_seconds=round(max(0.0, (at - min(behind)).total_seconds())) if behind else 0,
    )
    return summary, rows


async def summaries(
    conn: AsyncConn, datasets: DatasetCatalog, *, market_tz: str, now: datetime | None = None
) -> list[DatasetSummary]:
    """Every dataset's summary, by name."""
    at = now or await db_now(conn)
    found = [(await summarize(conn, d, datasets, market_tz=market_tz, now=at))[0] for d in datasets]
    return sorted(found, key=lambda s: s.name)
