"""The remote sources' Prometheus metrics: requests by outcome, bytes per fetch.

Counted where the fetch runs (a worker pool's processes, in its multiprocess
mode when SPINE_METRICS_PORT is set). Labels are bounded: a source's name (the
datasets declare them) and four outcome words.

The metrics are made at the first count, not at import: prometheus-client
fixes its multiprocess mode when it is first imported, and this module is
imported with the catalog, before the worker pool's supervisor has set
PROMETHEUS_MULTIPROC_DIR (worker/supervisor.py).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

__all__ = ["SOURCE_OUTCOMES", "SourceOutcome", "count_request"]

SourceOutcome = Literal["fetched", "not_modified", "not_published", "error"]
SOURCE_OUTCOMES: Final = ("fetched", "not_modified", "not_published", "error")


@functools.cache
def _metrics() -> tuple[Counter, Histogram]:
    from prometheus_client import Counter, Histogram

    requests = Counter(
        "spine_source_requests",
        "Fetches from a publisher, by source and outcome: fetched (a body landed), "
        "not_modified (304, or the same content), not_published (404, 403, an empty API "
        "result) or error (transient or permanent).",
        ["source", "outcome"],
    )
    fetch_bytes = Histogram(
        "spine_source_fetch_bytes",
        "Bytes landed per fetch (after unzipping), by source.",
        ["source"],
        buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9),
    )
    return requests, fetch_bytes


def count_request(source: str, outcome: SourceOutcome, landed_bytes: int | None = None) -> None:
    requests, fetch_bytes = _metrics()
    requests.labels(source, outcome).inc()
    if landed_bytes is not None:
        fetch_bytes.labels(source).observe(landed_bytes)
