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
"""

from __future__ import annotations

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.backends import OrchestratorBackend
from app.engine.datasets import DatasetCatalog, logical_key
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
            found = await partitions.states(conn, dataset, candidates)
            stale = [p for row, p in zip(found, candidates, strict=True) if row.state == "stale"]
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
