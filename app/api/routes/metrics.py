"""GET /metrics: the API's HTTP metrics and the queue's gauges, in Prometheus text format.

HTTP requests are counted by `app.web.http_metrics.HttpMetrics`, by route
template, method and status, with a latency histogram. The queue's gauges are
read from the database at each scrape (app.engine.gauges: indexes and catalogs
only) and exposed through a collector made for that one scrape; if the database
cannot answer, the HTTP metrics are still served and `spine_database_up` says 0.

With PROMETHEUS_MULTIPROC_DIR set (`spine api --workers N` sets it), the
HTTP metrics are the sum over every uvicorn process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import psycopg
import psycopg_pool
from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.config import Settings
from app.engine.data_gauges import DataGauges, read_data_gauges
from app.engine.datasets import PARTITION_STATES
from app.engine.gauges import QueueGauges, read_gauges
from app.engine.models import ACTIVE, LANES, TERMINAL
from app.errors import first_line

__all__ = ["MULTIPROC_ENV", "metrics"]

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SCRAPE_DB_TIMEOUT = (
    2.0  # seconds to wait for a pooled connection before reporting the database down
)


class _Families(Collector):
    """Metric families computed for one scrape (a registry wants a collector)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class _Process(Collector):
    """This process's own registry (the HTTP middleware's metrics, the client's defaults)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def queue_families(gauges: QueueGauges | None) -> list[Metric]:
    """The queue's numbers as gauges; only `spine_database_up 0` when they could not be read."""
    up = GaugeMetricFamily(
        "spine_database_up", "1 when this scrape could read the queue's numbers, else 0."
    )
    up.add_metric([], 0 if gauges is None else 1)
    if gauges is None:
        return [up]
    active = GaugeMetricFamily(
        "spine_executions",
        "Active executions by status (pending, queued, running) and lane; exact.",
        labels=["status", "lane"],
    )
    for status in ACTIVE:
        for lane in LANES:
            active.add_metric([status, lane], gauges.active.get((status, lane), 0))
    finished = GaugeMetricFamily(
        "spine_executions_finished_estimate",
        "Finished executions by status, the planner's estimate from the last ANALYZE "
        "(the rate of change is in the worker pools' spine_executions_finished_total).",
        labels=["status"],
    )
    for status in TERMINAL:
        finished.add_metric([status], gauges.finished_estimate.get(status, 0))
    oldest = GaugeMetricFamily(
        "spine_oldest_pending_age_seconds",
        "Seconds the longest-due pending execution has been claimable (since its "
        "available_at), per lane; 0 when none is due. Executions not yet due are not counted.",
        labels=["lane"],
    )
    for lane in LANES:
        oldest.add_metric([lane], gauges.oldest_pending_s.get(lane) or 0.0)
    not_due = GaugeMetricFamily(
        "spine_pending_not_due",
        "Pending executions not yet due, per lane: a delayed run or a retry's backoff.",
        labels=["lane"],
    )
    for lane in LANES:
        not_due.add_metric([lane], gauges.not_due.get(lane, 0))
    workers = GaugeMetricFamily(
        "spine_live_workers", "Worker processes heartbeating within the lease timeout."
    )
    workers.add_metric([], gauges.live_workers)
    return [up, active, finished, oldest, not_due, workers]


def data_families(data: DataGauges | None) -> list[Metric]:
    """The datasets', backfills' and schedules' numbers (none when they could not be read)."""
    if data is None:
        return []
    partitions = GaugeMetricFamily(
        "spine_dataset_partitions",
        "A dataset's partitions by state, from its start to today.",
        labels=["dataset", "state"],
    )
    lag = GaugeMetricFamily(
        "spine_dataset_freshness_lag_seconds",
        "Seconds since the oldest partition that should be loaded and is not (missing, "
        "late or failed) became due; 0 when none is.",
        labels=["dataset"],
    )
    for d in data.datasets:
        for state in PARTITION_STATES:
            partitions.add_metric([d.name, state], d.partitions.get(state, 0))
        lag.add_metric([d.name], d.freshness_lag_seconds)
    backfill = GaugeMetricFamily(
        "spine_backfill_partitions",
        "Partitions of the backfills in progress, by their execution's state "
        "(no_source: no input).",
        labels=["state"],
    )
    for outcome, n in sorted(data.backfill_partitions.items()):
        backfill.add_metric([outcome], n)
    skipped = CounterMetricFamily(
        "spine_schedule_slots_skipped",
        "Slots a schedule did not fire (the pools were down, or past its misfire grace).",
        labels=["schedule"],
    )
    for name, n in sorted(data.slots_skipped.items()):
        skipped.add_metric([name], n)
    return [partitions, lag, backfill, skipped]


async def _read_data(state: State) -> DataGauges | None:
    settings: Settings = state.settings
    try:
        async with state.pool.connection(timeout=SCRAPE_DB_TIMEOUT) as conn:
            return await read_data_gauges(conn, state.datasets, market_tz=settings.market_tz)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        log.warning("metrics: cannot read the datasets' numbers (%s)", first_line(exc))
        return None


async def _read(state: State) -> QueueGauges | None:
    settings: Settings = state.settings
    try:
        async with state.pool.connection(timeout=SCRAPE_DB_TIMEOUT) as conn:
            return await read_gauges(conn, lease_timeout=settings.lease_timeout)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        log.warning("metrics: cannot read the queue's numbers (%s)", first_line(exc))
        return None


@get("/metrics", include_in_schema=False, media_type=CONTENT_TYPE_LATEST)
async def metrics(state: State) -> Response[bytes]:
    """Prometheus text format (version 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    families = queue_families(await _read(state)) + data_families(await _read_data(state))
    registry.register(_Families(families))
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Process())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
