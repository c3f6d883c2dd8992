"""Reg SHO's datasets: `regsho_daily` (day x market, the files) and `short_volume_daily`
(day, derived from all six files of the same date).

A load records its (day, market) materialization in its own transaction
(`record_load`), with the file's sha256 and the load's counts, so a
republished file that changed rows marks that day's `short_volume_daily`
stale, and propagation recomputes it (`regsho_compute`, which records the day
in its transaction: `record_compute`); a day never computed is computed once
all six of its files are there (loaded, or `no_data`).

A file not landed is fetched from FINRA's CDN (`REGSHO_CDN`), where FINRA
publishes each one the same evening. Both datasets follow the NYSE calendar: a
market holiday has no files, and its partitions are `no_data`, never late.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import Dataset, Freshness, Partition, Upstream
from app.engine.partitions import NewMaterialization, Source
from app.engine.sources import RemoteSource
from app.regsho.keys import MARKETS

__all__ = ["DATASETS", "REGSHO_DAILY", "SHORT_VOLUME_DAILY", "record_compute", "record_load"]


def _file_params(partition: Partition, path: str | None) -> dict[str, Any]:
    """A file's params name its day and market; the file is the one landed for it."""
    params: dict[str, Any] = {"date": partition.start.isoformat(), "market": partition.key2}
    if path is not None:
        params["file"] = path
    return params


def _day_params(partition: Partition, path: str | None) -> dict[str, Any]:
    return {"date": partition.start.isoformat()}


START = date(2020, 1, 2)
"""The first trading day of the committed files (data/regsho/)."""

DUE = Freshness(due_after=timedelta(hours=-4), grace=timedelta(hours=2))
"""FINRA posts a day's files the same evening: due by 20:00 in the market time zone
(SPINE_MARKET_TZ, New York by default: 4 hours before the day ends), late from 22:00."""

REGSHO_CDN = RemoteSource(
    name="finra_cdn",
    base_setting="source_finra_cdn",
    url="/equity/regsho/daily/{market}shvol{date:%Y%m%d}.txt",
    landing="remote/regsho/{market}shvol{date:%Y%m%d}.txt",
    calendar=True,
    probe="/equity/regsho/daily/",
)
"""`{SPINE_SOURCE_FINRA_CDN}/equity/regsho/daily/{market}shvol{YYYYMMDD}.txt`, one file
per facility and day, as FINRA serves it (CRLF and trailer kept: it lands byte for byte)."""

REGSHO_DAILY = Dataset(
    name="regsho_daily",
    description="FINRA Reg SHO daily short sale volume files: short, short-exempt and total "
    "volume per symbol, by trading day and market (five facilities and CNMS).",
    scheme="day",
    pipeline="regsho_ingest",
    params=_file_params,
    start=START,
    key2=MARKETS,
    landing="regsho/{market}shvol{date:%Y%m%d}.txt",
    freshness=DUE,
    remote=REGSHO_CDN,
    trading_days=True,
)

SHORT_VOLUME_DAILY = Dataset(
    name="short_volume_daily",
    description="Short volume per symbol and day, summed over the facility files (CNMS left "
    "out), with the short ratio and CNMS reconciled against the NMS facilities.",
    scheme="day",
    pipeline="regsho_compute",
    params=_day_params,
    start=START,
    upstreams=(Upstream(REGSHO_DAILY.name, "all_keys_of_date"),),
    freshness=DUE,
    trading_days=True,
)

DATASETS = (REGSHO_DAILY, SHORT_VOLUME_DAILY)


async def record_load(
    conn: AsyncConn,
    *,
    execution_id: str,
    load_id: int,
    summary: dict[str, Any],
    mtime: datetime | None,
) -> None:
    """Record the (day, market) a load replaced, in the load's transaction."""
    key = Partition("day", date.fromisoformat(summary["date"]), summary["market"]).key
    source = Source(
        path=summary["file"],
        bytes=summary["file_bytes"],
        sha256=summary["file_sha256"],
        mtime=mtime,
    )
    await partitions.record(
        conn,
        [
            NewMaterialization(
                dataset=REGSHO_DAILY.name,
                key=key,
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


async def record_compute(
    conn: AsyncConn, *, execution_id: str, day: date, counts: dict[str, int]
) -> None:
    """Record a computed day of short_volume_daily, in the computation's transaction."""
    await partitions.record(
        conn,
        [
            NewMaterialization(
                dataset=SHORT_VOLUME_DAILY.name,
                key=day.isoformat(),
                execution_id=execution_id,
                inserted=counts["inserted"],
                changed=counts["changed"],
                removed=counts["removed"],
                unchanged=counts["unchanged"],
            )
        ],
    )
