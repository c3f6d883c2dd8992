"""The dashboard's datasets pages: each dataset's partitions as a calendar strip coloured by
state (late red, stale amber), a partition's lineage, and the backfills with their progress.

Reads through the same engine modules as the API (dataset_reads, partitions,
backfills); the datasets come from the app's state (the catalog's).
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import Template

from app.engine import backfills, dataset_reads
from app.engine.datasets import PARTITION_STATES, DatasetCatalog
from app.web.connection import DbConn

__all__ = ["DATASET_PAGES", "datasets_page", "partition_page"]

STRIP_LENGTH: Final = 400
"""The newest partitions a dataset's strip shows."""
BACKFILLS_SHOWN: Final = 20


@get("/datasets", name="ui_datasets")
async def datasets_page(conn: DbConn, state: State) -> Template:
    """Every dataset: counts by state, its newest partitions as a strip, then the backfills."""
    catalog: DatasetCatalog = state.datasets
    tz = state.settings.market_tz
    shown = []
    for dataset in catalog:
        summary, rows = await dataset_reads.summarize(conn, dataset, catalog, market_tz=tz)
        shown.append({"summary": summary, "strip": rows[-STRIP_LENGTH:]})
    recent = await backfills.list_recent(conn, limit=BACKFILLS_SHOWN)
    return Template(
        "datasets.html",
        context={"datasets": shown, "states": PARTITION_STATES, "backfills": recent},
    )


@get("/datasets/{name:str}/partitions/{key:path}", name="ui_partition")
async def partition_page(
    conn: DbConn,
    state: State,
    name: Annotated[str, PathParameter(max_length=200)],
    key: Annotated[str, PathParameter(description="The partition key.")],
) -> Template:
    """A partition's lineage: its state, materializations (source, execution, load, counts),
    and its upstream and downstream partitions."""
    catalog: DatasetCatalog = state.datasets
    if name not in catalog:
        raise NotFoundException(f"no dataset {name}")
    dataset = catalog.get(name)
    try:
        part = dataset.partition(key.lstrip("/"))
    except ValueError as exc:
        raise NotFoundException(str(exc)) from None
    found = await dataset_reads.lineage(conn, catalog, dataset, part)
    return Template("partition.html", context={"dataset": dataset, "lineage": found})


DATASET_PAGES = [datasets_page, partition_page]
