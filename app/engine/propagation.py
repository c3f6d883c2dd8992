"""Propagation: a changed upstream partition re-materializes its downstream partitions.

When a load records a materialization whose content changed, its downstream
partitions turn `stale` at once (the state is computed, see sql/datasets.sql),
and, when a dataset downstream re-materializes by itself (`Dataset.propagate`),
the load's transaction also asks for a `dataset_propagate` execution
(`partitions.request_propagation`). That execution runs `propagate`: it submits
the stale partitions through `submit_many` (one insert, each with its logical
key), holding the dataset's backfill lock, and hands the created ones to the
backend after the commit. A partition being re-materialized is `pending` or
`running`, not `stale`, so it is never submitted twice, and it is never shown
`loaded` before its new materialization.

A downstream partition never materialized is submitted the first time once
every upstream partition it maps to is `loaded` or `no_data` (a day's six
Reg SHO files, not the first of them), so a derived dataset keeps itself
current without a backfill.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.backends import OrchestratorBackend
from app.engine.datasets import Dataset, DatasetCatalog, Partition, logical_key
from app.engine.queries import load
from app.engine.registry import Registry
from app.engine.submit import hand_over, submit_many

__all__ = ["propagate"]

_SQL = load("datasets")
_LOCK = load("backfills")["lock_dataset"]
_encode = msgspec.json.Encoder().encode


async def propagate(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    backend: OrchestratorBackend,
    datasets: DatasetCatalog,
) -> list[str]:
    """Submit every stale partition of the datasets that propagate; their keys as
    `dataset:key`, in order."""
    submitted: list[str] = []
    tz = ZoneInfo(settings.market_tz)
    for dataset in datasets:
        if not dataset.upstreams or not dataset.propagate:
            continue
        upstreams = _encode(
            [{"dataset": u.dataset, "mapping": u.mapping} for u in dataset.upstreams]
        ).decode()
        async with conn.transaction():
            await conn.execute(_LOCK, {"dataset": dataset.name})
            args = {"dataset": dataset.name, "upstreams": upstreams}
            rows = await (await conn.execute(_SQL["stale_candidates"], args)).fetchall()
            candidates = [dataset.partition(str(r["partition_key"])) for r in rows]
            found = await partitions.states(conn, dataset, candidates, tz=tz)
            stale = [p for row, p in zip(found, candidates, strict=True) if row.state == "stale"]
            stale += await _ready_first_time(conn, dataset, datasets, upstreams, tz)
            made = await submit_many(
                conn,
                registry,
                settings,
                dataset.pipeline,
                [dataset.params(part, None) for part in stale],
                logical_keys=[logical_key(dataset.name, part.key) for part in stale],
                trigger_source="propagation",
                backend=backend,
            )
        await hand_over(conn, backend, made)  # committed: the backend may hear of them now
        submitted += [
            f"{dataset.name}:{part.key}"
            for part, (_, created) in zip(stale, made, strict=True)
            if created
        ]
    return submitted


_UNMADE = frozenset({"not_due", "missing", "late"})
_READY = frozenset({"loaded", "no_data"})


async def _ready_first_time(
    conn: AsyncConn, dataset: Dataset, datasets: DatasetCatalog, upstreams: str, tz: tzinfo
) -> list[Partition]:
    """The partitions never materialized whose upstream partitions are all there now."""
    args = {"dataset": dataset.name, "upstreams": upstreams}
    rows = await (await conn.execute(_SQL["first_candidates"], args)).fetchall()
    candidates: list[Partition] = []
    for r in rows:
        try:
            candidates.append(dataset.partition(str(r["partition_key"])))
        except ValueError:  # an upstream key this dataset has no partition for (a weekend)
            continue
    if not candidates:
        return []
    own = await partitions.states(conn, dataset, candidates, tz=tz)
    candidates = [p for p, row in zip(candidates, own, strict=True) if row.state in _UNMADE]
    ready = set(candidates)
    for u in dataset.upstreams:
        upstream = datasets.get(u.dataset)
        mapped = {
            p: (
                [upstream.partition(p.key)]
                if u.mapping == "same_key"
                else upstream.partitions_of_period(p.period)
            )
            for p in candidates
        }
        flat = [q for qs in mapped.values() for q in qs]
        if not flat:
            continue
        states = {r.key: r.state for r in await partitions.states(conn, upstream, flat, tz=tz)}
        ready &= {p for p, qs in mapped.items() if all(states[q.key] in _READY for q in qs)}
    return [p for p in candidates if p in ready]
