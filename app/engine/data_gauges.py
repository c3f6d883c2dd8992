"""The datasets', backfills' and schedules' numbers for a metrics scrape (sql/data_gauges.sql).

- partitions of each dataset by state, and its freshness lag (app.engine.dataset_reads);
- partitions of the backfills in progress, by their execution's state;
- slots skipped per schedule, a counter (the pools were down, or past the misfire grace).
"""

from __future__ import annotations

import msgspec

from app.db import AsyncConn
from app.engine.dataset_reads import DatasetSummary, summaries
from app.engine.datasets import DatasetCatalog
from app.engine.queries import load

__all__ = ["DataGauges", "read_data_gauges"]

_SQL = load("data_gauges")


class DataGauges(msgspec.Struct, frozen=True):
    datasets: list[DatasetSummary]
    backfill_partitions: dict[str, int]
    slots_skipped: dict[str, int]


async def read_data_gauges(
    conn: AsyncConn, datasets: DatasetCatalog, *, market_tz: str
) -> DataGauges:
    backfill = await (await conn.execute(_SQL["backfill_partitions"])).fetchall()
    skipped = await (await conn.execute(_SQL["slots_skipped"])).fetchall()
    return DataGauges(
        datasets=await summaries(conn, datasets, market_tz=market_tz),
        backfill_partitions={str(r["state"]): int(r["n"]) for r in backfill},  # type: ignore[call-overload]
        slots_skipped={str(r["name"]): int(r["slots"]) for r in skipped},  # type: ignore[call-overload]
    )
