"""OTC's datasets: `otc_trades` and `otc_metrics_daily`, by trading day in the market time zone.

`otc_trades` is observed, not scanned: its files carry no date in their names,
so each `otc_ingest` load records a materialization of every day it touched
(`record_load`, in the load's transaction). The load recomputes those days'
metrics in the same transaction, so it records `otc_metrics_daily` for them
too; `otc_compute_metrics` of one day is how that dataset is backfilled
(`record_recompute`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, LiteralString

from app.db import AsyncConn
from app.engine import partitions
from app.engine.datasets import Dataset, Partition, Upstream, periods
from app.engine.partitions import NewMaterialization, Source

__all__ = ["DATASETS", "OTC_METRICS_DAILY", "OTC_TRADES", "record_load", "record_recompute"]


def _no_params(partition: Partition, path: str | None) -> dict[str, Any]:
    """otc_trades is loaded by file; a day's params name that day's file when one is given."""
    return {} if path is None else {"file": path}


def _one_day(partition: Partition, path: str | None) -> dict[str, Any]:
    day = partition.start.isoformat()
    return {"start_date": day, "end_date": day}


START = date(2026, 1, 5)
"""The first trading day of the committed sample (data/otc_sample.csv)."""

OTC_TRADES = Dataset(
    name="otc_trades",
    description="OTC trades by trading day (SPINE_MARKET_TZ), as loaded by otc_ingest.",
    scheme="day",
    pipeline="otc_ingest",
    params=_no_params,
    start=START,
    observed=True,
)

OTC_METRICS_DAILY = Dataset(
    name="otc_metrics_daily",
    description="Exact daily metrics per symbol, computed from that day's trades.",
    scheme="day",
    pipeline="otc_compute_metrics",
    params=_one_day,
    start=START,
    upstreams=(Upstream(OTC_TRADES.name),),
)

DATASETS = (OTC_TRADES, OTC_METRICS_DAILY)

# Per day the load touched (pg_temp.otc_touched, already in the market time zone):
# the trades the load set (new or corrected) and the symbols whose metrics it recomputed.
_TOUCHED_DAYS: LiteralString = """
    SELECT p.trade_date, count(DISTINCT p.symbol) AS symbols,
           (SELECT count(*) FROM otc_trades t
             WHERE t.symbol = ANY (array_agg(DISTINCT p.symbol))
               AND t.trade_date = p.trade_date AND t.load_id = %(load_id)s) AS trades
      FROM pg_temp.otc_touched p
     GROUP BY p.trade_date ORDER BY p.trade_date
"""

_METRIC_ROWS_BY_DAY: LiteralString = """
    SELECT trade_date, count(*) AS n FROM otc_metrics_daily
     WHERE trade_date BETWEEN %(first)s AND %(last)s GROUP BY trade_date
"""


async def record_load(
    conn: AsyncConn, *, execution_id: str, load_id: int, summary: dict[str, Any]
) -> None:
    """Record otc_trades and otc_metrics_daily for every day the load touched.

    A day's otc_trades counts the trades the load set on it as `inserted`
    (new or corrected; the load's summary splits them); its otc_metrics_daily
    counts the symbols recomputed as `changed`. The file's sha256 is the source
    of both (the file holds many days).
    """
    rows = await (await conn.execute(_TOUCHED_DAYS, {"load_id": load_id})).fetchall()
    source = Source(
        path=summary["file"], bytes=summary["file_bytes"], sha256=summary["file_sha256"]
    )
    new: list[NewMaterialization] = []
    for r in rows:
        day = r["trade_date"]
        assert isinstance(day, date)
        key = day.isoformat()
        new.append(
            NewMaterialization(
                dataset=OTC_TRADES.name,
                key=key,
                execution_id=execution_id,
                load_id=load_id,
                inserted=int(r["trades"]),  # type: ignore[call-overload]
                source=source,
            )
        )
        new.append(
            NewMaterialization(
                dataset=OTC_METRICS_DAILY.name,
                key=key,
                execution_id=execution_id,
                load_id=load_id,
                changed=int(r["symbols"]),  # type: ignore[call-overload]
                source=source,
            )
        )
    await partitions.record(conn, new)


async def record_recompute(
    conn: AsyncConn, *, execution_id: str, first: date, last: date, changed: int
) -> None:
    """Record otc_metrics_daily for each weekday an otc_compute_metrics run recomputed.

    Its metric rows changed are counted for the whole range: a one-day run (a
    backfill's partition) has them exactly; a longer one gives each day the
    range's count, so any change marks every day of it changed.
    """
    args = {"first": first, "last": last}
    rows = await (await conn.execute(_METRIC_ROWS_BY_DAY, args)).fetchall()
    stored = {r["trade_date"]: int(r["n"]) for r in rows}  # type: ignore[call-overload]
    await partitions.record(
        conn,
        [
            NewMaterialization(
                dataset=OTC_METRICS_DAILY.name,
                key=day.isoformat(),
                execution_id=execution_id,
                changed=changed,
                unchanged=max(0, stored.get(day, 0) - changed),
            )
            for day in periods("day", first, last)
        ],
    )
