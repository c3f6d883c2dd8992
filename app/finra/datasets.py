"""FINRA's datasets: `finra_otc_weekly`, a week x tier, from the weekly files landed
or fetched from FINRA's Query API (app.finra.sources).

A load records its materializations in its own transaction (`record_load`):
one per tier its file held, with the file's sha256 and the load's counts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import Dataset, Freshness, Partition
from app.engine.landing import LandingPattern
from app.engine.partitions import NewMaterialization, Source
from app.finra.sources import NON_ATS_SUMMARY, weekly_source
from app.finra.tiers import PUBLICATION_DELAY, TIER_NAMES, TIERS, tier_id

__all__ = ["DATASETS", "FINRA_OTC_WEEKLY", "record_load"]


def _params(partition: Partition, path: str | None) -> dict[str, Any]:
    """A partition's params always pass its week; the file is the one landed for it."""
    params: dict[str, Any] = {"week": partition.start.isoformat()}
    if path is not None:
        params["file"] = path
    return params


FINRA_OTC_WEEKLY = Dataset(
    name="finra_otc_weekly",
    description="FINRA OTC Transparency: weekly shares and trades per symbol and venue, "
    "by week and tier.",
    scheme="week",
    pipeline="finra_weekly_ingest",
    params=_params,
    start=date(2025, 12, 15),
    key2=TIERS,
    key2_names=TIER_NAMES,
    landing="finra/finra_otc_weekly_{key2}_{week:%Y%m%d}.csv",
    freshness=Freshness(by_key2=PUBLICATION_DELAY),
    remote=weekly_source(NON_ATS_SUMMARY, "remote/finra/finra_otc_weekly_{key2}_{week:%Y%m%d}.csv"),
)

DATASETS = (FINRA_OTC_WEEKLY,)
_PATTERN = LandingPattern(FINRA_OTC_WEEKLY)

_TIERS_OF_LOAD = "SELECT DISTINCT tier FROM finra_file_rows ORDER BY tier"


async def record_load(
    conn: AsyncConn,
    *,
    execution_id: str,
    load_id: int,
    source_file: str,
    summary: dict[str, Any],
    mtime: datetime | None,
) -> None:
    """Record the materialization of each (week, tier) a load replaced, in its transaction.

    The tier comes from the file's name when it follows the landing pattern,
    else from the rows (a file of several tiers gives each the file's counts).
    """
    if summary.get("week") is None:
        return
    week = date.fromisoformat(summary["week"])
    named = _PATTERN.match(source_file)
    if named is not None and named.start == week:
        tiers = [named.key2]
    else:
        rows = await (await conn.execute(_TIERS_OF_LOAD)).fetchall()
        tiers = [tier_id(str(r["tier"])) for r in rows]
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
                dataset=FINRA_OTC_WEEKLY.name,
                key=Partition("week", week, tier).key,
                execution_id=execution_id,
                load_id=load_id,
                inserted=summary["inserted"],
                changed=summary["changed"],
                removed=summary["removed"],
                unchanged=summary["unchanged"],
                rejected=summary["rejected"],
                source=source,
            )
            for tier in tiers
        ],
    )
