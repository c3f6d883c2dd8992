"""The datasets' built-in pipelines and schedules: a scan per dataset, and propagation.

`pipelines()` makes `dataset_scan` (params: the dataset), `dataset_propagate`
and `dataset_fetch` (app.engine.remote) for a catalog of datasets; the first two
submit, so they are given what submit needs:
the registry they belong to, the settings and the backend, as callables (the
registry is built with them in it, and a worker process reads its settings
once). A scan looks at the dataset's landing area (`app.engine.scans`) and, for
a dataset with a remote source, fetches its recent due partitions that are not
loaded (`app.engine.remote_scans`): a remote dataset keeps itself current on its
scan's schedule. `sync()` (run by `spine db init`) stores the dependency graph
and creates the schedule of each dataset with a landing pattern or a remote
source, `dataset-scan:<name>`, paused: an operator resumes the scans they want
(`spine schedules resume`), and a schedule they changed is left as it is.
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
from app.engine.datasets import Dataset, DatasetCatalog
from app.engine.partitions import PROPAGATE_PIPELINE, PROPAGATE_RETRY
from app.engine.propagation import propagate
from app.engine.queries import load
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from app.engine.remote import fetch_pipeline
from app.engine.remote_scans import RemoteScanResult, scan_remote
from app.engine.retry import RetryPolicy
from app.engine.scans import ScanResult, scan
from app.engine.schedules import ScheduleInput

__all__ = [
    "SCAN_PIPELINE",
    "SCAN_SCHEDULE_PREFIX",
    "ScanParams",
    "pipelines",
    "scan_dataset",
    "scan_summary",
    "sync",
]

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
        if dataset.landing is None and dataset.remote is None:
            raise ValueError(
                f"dataset {params.dataset} has no landing pattern nor remote source to scan"
            )

    async def run_scan(ctx: PipelineContext, params: ScanParams) -> Summary:
        found, dataset = settings(), datasets.get(params.dataset)
        async with ctx.pool.connection() as conn:
            landed, fetched = await scan_dataset(conn, registry(), found, backend(found), dataset)
        return scan_summary(dataset, landed, fetched)

    async def run_propagate(ctx: PipelineContext, params: NoParams) -> Summary:
        found = settings()
        async with ctx.pool.connection() as conn:
            done = await propagate(conn, registry(), found, backend(found), datasets)
        return {"submitted": done}

    return [
        Pipeline(
            SCAN_PIPELINE,
            "Scan a dataset: materialize partitions whose landed file is new or changed, and "
            "fetch its recent due partitions that are not loaded from its remote source.",
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


async def scan_dataset(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    backend: OrchestratorBackend,
    dataset: Dataset,
    *,
    remote: bool = True,
) -> tuple[ScanResult | None, RemoteScanResult | None]:
    """A dataset's scan (its schedule's, or `spine datasets scan`): its landing area, then
    (`remote`) the fetches of its recent due partitions the landing scan did not handle.
    None for a part the dataset does not have (or was not asked)."""
    landed = fetched = None
    if dataset.landing is not None:
        landed = await scan(conn, registry, settings, backend, dataset)
    if remote and dataset.remote is not None:
        handled = set(landed.submitted + landed.joined) if landed else set()
        fetched = await scan_remote(conn, registry, settings, backend, dataset, skip=handled)
    return landed, fetched


def scan_summary(
    dataset: Dataset, landed: ScanResult | None, fetched: RemoteScanResult | None
) -> dict[str, Any]:
    """A scan's summary: the landing scan's counts and keys, and `remote` (when it ran)."""
    summary: dict[str, Any] = {"dataset": dataset.name}
    if landed is not None:
        summary.update(msgspec.to_builtins(landed))
    if fetched is not None:
        summary["remote"] = msgspec.to_builtins(fetched)
    return summary


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
    """Store the dependency graph; create the missing scan schedules (datasets with a
    landing pattern or a remote source), paused. Returns the names of those created."""
    created: list[str] = []
    async with conn.transaction():
        await store_graph(conn, datasets)
        for d in datasets:
            if d.landing is None and d.remote is None:
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
