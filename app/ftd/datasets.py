"""The SEC's fails-to-deliver as a dataset: `sec_ftd`, one partition per half-month file.

A load records its half-month's materialization in its own transaction
(`record_load`), with the file's sha256 and the load's counts. The half-month
is due SPINE_FTD_DUE_DAYS after it ends: the dataset is built from the settings
each time the catalog asks for it (`DATASETS`, a module attribute computed on
access), so a process that reads its settings once sees one value.

A half-month not landed is fetched from the SEC (`SEC_FILES`): the zip the SEC
publishes, unzipped into the landing area; the SEC wants a User-Agent naming a
contact (SPINE_HTTP_USER_AGENT), so a fetch without one is refused.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from app.config import get_settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import Dataset, Freshness, Partition
from app.engine.partitions import NewMaterialization, Source
from app.engine.sources import RemoteSource

__all__ = ["NAME", "record_load", "sec_ftd"]  # and DATASETS, computed on access

NAME = "sec_ftd"
LANDING = "ftd/cnsfails{month:%Y%m}{half}.txt"
"""The SEC's names, `cnsfails202212a.txt`; older ones end `.TXT` (extensions match in any case)."""


SEC_FILES = RemoteSource(
    name="sec",
    base_setting="source_sec",
    url="/files/data/fails-deliver-data/cnsfails{month:%Y%m}{half}.zip",
    landing="remote/ftd/cnsfails{month:%Y%m}{half}.txt",
    zipped=True,
    contact_required=True,
    probe="/files/data/fails-deliver-data/",
)
"""`{SPINE_SOURCE_SEC}/files/data/fails-deliver-data/cnsfails{YYYYMM}{a|b}.zip`: one file
zipped, its trailers kept (it lands as the SEC wrote it)."""


def _params(partition: Partition, path: str | None) -> dict[str, Any]:
    """A partition's params always pass its period; the file is the one landed for it."""
    params: dict[str, Any] = {"period": partition.period}
    if path is not None:
        params["file"] = path
    return params


def sec_ftd(due_days: int) -> Dataset:
    """The dataset, due `due_days` after each half-month ends (SPINE_FTD_DUE_DAYS)."""
    return Dataset(
        name=NAME,
        description="SEC fails-to-deliver: per settlement date, each security's failed "
        "shares, CUSIP, symbol and price, by half-month (a: 1st-14th, b: 15th-end).",
        scheme="half_month",
        pipeline="sec_ftd_ingest",
        params=_params,
        start=date(2022, 12, 1),
        landing=LANDING,
        freshness=Freshness(due_after=timedelta(days=due_days)),
        remote=SEC_FILES,
    )


def __getattr__(name: str) -> tuple[Dataset, ...]:
    """`DATASETS` (what `app.domains.Domain.datasets` reads), from the process's settings."""
    if name == "DATASETS":
        return (sec_ftd(get_settings().ftd_due_days),)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def record_load(
    conn: AsyncConn,
    *,
    execution_id: str,
    load_id: int,
    source_file: str,
    summary: dict[str, Any],
    mtime: datetime | None,
) -> None:
    """Record the materialization of the half-month a load replaced, in its transaction."""
    source = Source(
        path=source_file,
        bytes=summary["file_bytes"],
        sha256=summary["file_sha256"],
        mtime=mtime,
    )
    await partitions.record(
        conn,
        [
            NewMaterialization(
                dataset=NAME,
                key=summary["period"],
                execution_id=execution_id,
                load_id=load_id,
                inserted=summary["inserted"],
                changed=summary["changed"],
                removed=summary["removed"],
                unchanged=summary["unchanged"],
                rejected=summary["rejected"],
                source=source,
            )
        ],
    )
