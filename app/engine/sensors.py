"""The datasets' built-in pipelines and schedules: a scan per dataset, and propagation.

`pipelines()` makes `dataset_scan` (params: the dataset), `dataset_propagate`
and `dataset_fetch` (app.engine.remote) for a catalog of datasets; the first two
submit, so they are given what submit needs:
the registry they belong to, the settings and the backend, as callables (the
registry is built with them in it, and a worker process reads its settings
once). `sync()` (run by `spine db init`) stores the dependency graph and
creates each scanned dataset's schedule, `dataset-scan:<name>`, paused: an
operator enables the scans they want (`spine schedules enable`), and a
schedule they changed is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import schedules_sql, scheduling
from app.engine.backends import OrchestratorBackend
from app.engine.context import PipelineContext
from app.engine.datasets import DatasetCatalog
from app.engine.partitions import PROPAGATE_PIPELINE, PROPAGATE_RETRY
from app.engine.propagation import propagate
from app.engine.queries import load
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from app.engine.remote import fetch_pipeline
from app.engine.retry import RetryPolicy
from app.engine.scans import scan
from app.engine.schedules import ScheduleInput

__all__ = ["SCAN_PIPELINE", "SCAN_SCHEDULE_PREFIX", "ScanParams", "pipelines", "sync"]

SCAN_PIPELINE = "dataset_scan"
SCAN_SCHEDULE_PREFIX = "dataset-scan:"
SCAN_EVERY_SECONDS = 300
_SQL = load("datasets")
_encode = msgspec.json.Encoder().encode


class ScanParams(msgspec.Struct, forbid_unknown_fields=True):
    dataset: Annotated[
        str, msgspec.Meta(min_length=1, max_length=200, description="The dataset to scan.")
    ]


def pipelines(
    datasets: DatasetCatalog,
    registry: Callable[[], Registry],
    settings: Callable[[], Settings],
    backend: Callable[[Settings], OrchestratorBackend],
) -> list[Pipeline[Any]]:
    """`dataset_scan`, `dataset_propagate` and `dataset_fetch` for these datasets."""

    def checked(params: ScanParams, _: object) -> None:
        try:
            dataset = datasets.get(params.dataset)
        except LookupError as exc:
            raise ValueError(str(exc)) from None
        if dataset.landing is None:
            raise ValueError(f"dataset {params.dataset} has no landing pattern to scan")

    async def run_scan(ctx: PipelineContext, params: ScanParams) -> Summary:
        found = settings()
        async with ctx.pool.connection() as conn:
            done = await scan(conn, registry(), found, backend(found), datasets.get(params.dataset))
        return msgspec.to_builtins(done)  # type: ignore[no-any-return]

    async def run_propagate(ctx: PipelineContext, params: NoParams) -> Summary:
        found = settings()
        async with ctx.pool.connection() as conn:
            done = await propagate(conn, registry(), found, backend(found), datasets)
        return {"submitted": done}

    return [
        Pipeline(
            SCAN_PIPELINE,
            "Scan a dataset's landing area: materialize partitions whose file is new or changed.",
            ScanParams,
            run_scan,
            check=checked,
            retry=RetryPolicy(max_attempts=1),
        ),
        Pipeline(
            PROPAGATE_PIPELINE,
            "Re-materialize the partitions made stale by a changed upstream partition.",
            NoParams,
            run_propagate,
            retry=PROPAGATE_RETRY,
        ),
        fetch_pipeline(datasets, registry, settings),
    ]


async def store_graph(conn: AsyncConn, datasets: DatasetCatalog) -> None:
    """Replace the stored dependency graph with the declared one (what propagation reads),
    in one transaction; concurrent callers take turns."""
    edges = [
        {"dataset": d.name, "upstream": u.dataset, "mapping": u.mapping, "propagate": d.propagate}
        for d in datasets
        for u in d.upstreams
    ]
    async with conn.transaction():
        await conn.execute(_SQL["lock_sync"])
        await conn.execute(_SQL["clear_graph"])
        await conn.execute(_SQL["sync_graph"], {"edges": _encode(edges).decode()})


async def sync(
    conn: AsyncConn, registry: Registry, settings: Settings, datasets: DatasetCatalog
) -> list[str]:
    """Store the dependency graph; create the missing scan schedules, paused. Returns the
    names of the schedules created."""
    created: list[str] = []
    async with conn.transaction():
        await store_graph(conn, datasets)
        for d in datasets:
            if d.landing is None:
                continue
            name = SCAN_SCHEDULE_PREFIX + d.name
            if await schedules_sql.get(conn, name) is not None:
                continue
            inp = ScheduleInput(
                name=name,
                pipeline=SCAN_PIPELINE,
                params={"dataset": d.name},
                interval_seconds=SCAN_EVERY_SECONDS,
                enabled=False,
            )
            await scheduling.create(conn, registry, settings, inp)
            created.append(name)
    return created
