"""A scan of a remote dataset: fetch the recent partitions that are due and not loaded.

What keeps a dataset with a remote source current without a host cron: its
scan (`dataset_scan`, on its `dataset-scan:<name>` schedule) looks at the last
`recent_periods` due periods of each second key (a period is due once its
freshness says the publisher should have it) and submits `dataset_fetch` for
each partition there that is `missing` or `late`, joining the ones already
being materialized (`pending`, `running`: the logical key keeps one active).
Loaded, `no_data`, `failed` and not yet due partitions are left alone: a
failure is the operator's (`spine executions retry`, `spine backfill --only failed`), and
a restatement of a loaded week by a backfill with `--only all`.

Politeness: a partition asked less than SPINE_SOURCE_RECHECK seconds ago (its
fetch ended `not_published` past the deadline) rests until then, so a scan
every few minutes does not ask a publisher every few minutes. A partition not
yet published inside its window is deferred by its own execution (joined here).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.backends import OrchestratorBackend
from app.engine.datasets import Dataset, Partition, logical_key, period_start
from app.engine.queries import load
from app.engine.registry import Registry
from app.engine.remote import FETCH_PIPELINE
from app.engine.schedules_sql import db_now
from app.engine.submit import hand_over, submit_many

__all__ = ["RemoteScanResult", "recent_due", "scan_remote"]

_SQL = load("sources")
_LOCK = load("backfills")["lock_dataset"]
_ASK = frozenset({"missing", "late", "pending", "running"})


class RemoteScanResult(msgspec.Struct, frozen=True):
    """What one scan of a dataset's remote source did."""

    dataset: str
    window: list[str]
    """The partitions looked at: the recent due periods, every second key."""
    submitted: list[str]
    """Partition keys whose fetch was created."""
    joined: list[str]
    """Partition keys already being materialized (their active execution kept)."""
    resting: list[str]
    """Missing or late partitions asked less than SPINE_SOURCE_RECHECK seconds ago."""


def recent_due(dataset: Dataset, now: datetime, periods: int, tz: tzinfo = UTC) -> list[Partition]:
    """The partitions of the last `periods` due periods of each second key (not before the
    dataset's start), in key order; periods and deadlines in `tz` (the market's)."""
    found: list[Partition] = []
    keys2: list[str | None] = list(dataset.key2) or [None]
    for key2 in keys2:
        day, taken = period_start(dataset.scheme, now.astimezone(tz).date()), 0
        while taken < periods and day >= dataset.start:
            partition = Partition(dataset.scheme, day, key2)
            if dataset.freshness.due_at(partition, tz) <= now:
                found.append(partition)
                taken += 1
            day = period_start(dataset.scheme, day - timedelta(days=1))
    return sorted(found, key=lambda p: p.key)


async def scan_remote(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    backend: OrchestratorBackend,
    dataset: Dataset,
    *,
    skip: Collection[str] = (),
) -> RemoteScanResult:
    """Submit the fetches of `dataset`'s recent due partitions that are not loaded; `skip`:
    keys the landing scan just handled."""
    assert dataset.remote is not None
    now = await db_now(conn)
    tz = ZoneInfo(settings.market_tz)
    window = recent_due(dataset, now, dataset.remote.recent_periods, tz)
    async with conn.transaction():
        await conn.execute(_LOCK, {"dataset": dataset.name})  # with backfills and scans
        rows = await partitions.states(conn, dataset, window, now=now, tz=tz)
        wanted = [r for r in rows if r.state in _ASK and r.key not in skip]
        idle = [logical_key(dataset.name, r.key) for r in wanted if r.state in ("missing", "late")]
        since = now - timedelta(seconds=settings.source_recheck)
        asked = await conn.execute(_SQL["asked_since"], {"keys": idle, "since": since})
        recent = {str(r["logical_key"]) for r in await asked.fetchall()}
        resting = [r.key for r in wanted if logical_key(dataset.name, r.key) in recent]
        keys = [r.key for r in wanted if r.key not in resting]
        made = await submit_many(
            conn,
            registry,
            settings,
            FETCH_PIPELINE,
            [{"dataset": dataset.name, "key": key} for key in keys],
            logical_keys=[logical_key(dataset.name, key) for key in keys],
            trigger_source="scan",
            backend=backend,
        )
    await hand_over(conn, backend, made)  # committed: the backend may hear of them now
    submitted = [key for key, (_, created) in zip(keys, made, strict=True) if created]
    joined = [key for key, (_, created) in zip(keys, made, strict=True) if not created]
    return RemoteScanResult(dataset.name, [p.key for p in window], submitted, joined, resting)
