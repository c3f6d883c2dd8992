"""FINRA's datasets, each a week x tier from the weekly files landed or fetched from
FINRA's Query API (app.finra.sources): `finra_otc_weekly` (the non-ATS venues) and
`finra_ats_weekly` (the ATS), one per kind FINRA publishes.

Both are materialized by `finra_weekly_ingest`; a partition's params pass its
`venue_kind` (the ATS dataset's; the non-ATS one passes none, the default), so
the file's name is never what decides the kind. A load records its
materializations in its own transaction (`record_load`): one per tier its file
held, in its kind's dataset, with the file's sha256 and the load's counts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import Dataset, Freshness, Partition
from app.engine.landing import LandingPattern
from app.engine.partitions import NewMaterialization, Source
from app.finra.sources import ATS_SUMMARY, NON_ATS_SUMMARY, weekly_source
from app.finra.tiers import PUBLICATION_DELAY, TIER_NAMES, TIERS, tier_id
from app.finra.venue_kinds import DEFAULT_VENUE_KIND, VenueKind

__all__ = [
    "DATASETS",
    "DATASET_OF_KIND",
    "FINRA_ATS_WEEKLY",
    "FINRA_OTC_WEEKLY",
    "kind_of_file",
    "record_load",
]


def _params(partition: Partition, path: str | None) -> dict[str, Any]:
    """A partition's params always pass its week; the file is the one landed for it."""
    params: dict[str, Any] = {"week": partition.start.isoformat()}
    if path is not None:
        params["file"] = path
    return params


def _ats_params(partition: Partition, path: str | None) -> dict[str, Any]:
    """The week's params, naming the kind: the ingest's default is non-ATS."""
    return _params(partition, path) | {"venue_kind": "ats"}


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

FINRA_ATS_WEEKLY = Dataset(
    name="finra_ats_weekly",
    description="FINRA OTC Transparency, ATS: weekly shares and trades per symbol and "
    "alternative trading system, by week and tier.",
    scheme="week",
    pipeline="finra_weekly_ingest",
    params=_ats_params,
    start=date(2025, 12, 15),
    key2=TIERS,
    key2_names=TIER_NAMES,
    landing="finra/finra_ats_weekly_{key2}_{week:%Y%m%d}.csv",
    freshness=Freshness(by_key2=PUBLICATION_DELAY),  # FINRA's ATS schedule is the same
    remote=weekly_source(ATS_SUMMARY, "remote/finra/finra_ats_weekly_{key2}_{week:%Y%m%d}.csv"),
)

DATASETS = (FINRA_OTC_WEEKLY, FINRA_ATS_WEEKLY)
DATASET_OF_KIND: dict[VenueKind, Dataset] = {"non_ats": FINRA_OTC_WEEKLY, "ats": FINRA_ATS_WEEKLY}
_PATTERNS = {kind: LandingPattern(d) for kind, d in DATASET_OF_KIND.items()}


def kind_of_file(source_file: str) -> VenueKind | None:
    """The kind a file's name says it holds (its dataset's landing pattern), if any."""
    for kind, pattern in _PATTERNS.items():
        if pattern.match(source_file) is not None:
            return kind
    return None


_TIERS_OF_LOAD = "SELECT DISTINCT tier FROM finra_file_rows ORDER BY tier"


async def record_load(
    conn: AsyncConn,
    *,
    execution_id: str,
    load_id: int,
    source_file: str,
    summary: dict[str, Any],
    mtime: datetime | None,
    venue_kind: VenueKind = DEFAULT_VENUE_KIND,
) -> None:
    """Record the materialization of each (week, tier) a load replaced, in its transaction,
    in the dataset of the load's `venue_kind`.

    The tier comes from the file's name when it follows that dataset's landing
    pattern, else from the rows (a file of several tiers gives each the file's counts).
    """
    if summary.get("week") is None:
        return
    dataset = DATASET_OF_KIND[venue_kind]
    week = date.fromisoformat(summary["week"])
    named = _PATTERNS[venue_kind].match(source_file)
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
                dataset=dataset.name,
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
