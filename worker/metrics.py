"""A worker pool's Prometheus metrics: what its processes ran, and how it went.

The supervisor picks the mode before this module is first imported: with
SPINE_METRICS_PORT set it points PROMETHEUS_MULTIPROC_DIR at a directory of
its own, so each child's counts live in files there (prometheus-client's
multiprocess mode) and survive the child; the supervisor serves their sum.
Without it, the counts stay in each process's memory and nobody reads them.

Labels are bounded: pipeline names (the registry), lanes and a few fixed
outcome words; never an execution id, a worker id or a symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

from app.engine.models import Execution
from app.metric_children import child

__all__ = [
    "DURATION_BUCKETS",
    "execution_finished",
    "execution_started",
    "lease_recovered",
    "pool_registry",
    "process_dead",
    "worker_restarted",
]

RETRYING = "retrying"
"""The runner's outcome for a failed attempt scheduled to run again (a retry policy)."""

# From a noop (about a millisecond) to an hour-long backfill.
DURATION_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

STARTED = Counter(
    "spine_executions_started", "Executions a worker began running (one per attempt).", ["pipeline"]
)
FINISHED = Counter(
    "spine_executions_finished",
    "Attempts that ended in this pool, by outcome: completed, failed, cancelled, "
    "retrying (failed, scheduled again), deferred (asked to run again at a time), "
    "requeued (the database went away) or lost "
    "(the claim was taken meanwhile).",
    ["pipeline", "outcome"],
)
DURATION = Histogram(
    "spine_execution_duration_seconds",
    "How long an attempt ran: the pipeline's own time, from its start to its end.",
    ["pipeline"],
    buckets=DURATION_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "spine_execution_queue_wait_seconds",
    "From an execution's creation to this attempt's claim (database clock).",
    ["lane"],
    buckets=DURATION_BUCKETS,
)
RETRIES = Counter(
    "spine_retries_scheduled", "Failed attempts scheduled to run again.", ["pipeline"]
)
RECOVERIES = Counter(
    "spine_lease_recoveries",
    "Executions taken back from a worker that stopped heartbeating, by what they became: "
    "pending (run again), failed (attempts used up) or cancelled.",
    ["outcome"],
)
RESTARTS = Counter("spine_worker_restarts", "Worker processes the supervisor restarted.")
ROWS = Counter(
    "spine_pipeline_rows",
    "Rows a completed run handled, by outcome (OTC ingest: inserted, duplicate, "
    "correction, rejected); from the pipeline's `rows` of its summary.",
    ["pipeline", "outcome"],
)


def execution_started(execution: Execution) -> None:
    child(STARTED, execution.pipeline).inc()
    if execution.queued_at is not None:
        wait = (execution.queued_at - execution.created_at).total_seconds()
        child(QUEUE_WAIT, execution.lane).observe(max(wait, 0.0))


def execution_finished(
    pipeline: str, outcome: str, seconds: float, rows: Mapping[str, int] | None = None
) -> None:
    child(FINISHED, pipeline, outcome).inc()
    if outcome == RETRYING:
        child(RETRIES, pipeline).inc()
    child(DURATION, pipeline).observe(seconds)
    for name, count in (rows or {}).items():
        child(ROWS, pipeline, name).inc(count)


def lease_recovered(outcome: str) -> None:
    RECOVERIES.labels(outcome).inc()


def worker_restarted() -> None:
    RESTARTS.inc()


def process_dead(pid: int, directory: Path) -> None:
    """A child is gone: drop its live-gauge files (its counters stay in the sum)."""
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def pool_registry(directory: Path) -> CollectorRegistry:
    """The sum over every process of the pool, dead ones included, read at each scrape."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry
