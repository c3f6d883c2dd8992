"""The scenarios, in the order a full run takes them (engine first, then OTC, then HTTP)."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context
from bench.scenarios import datasets, drain, http, otc, scale, wakeup

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, Callable[[Context], None]] = {
    "drain": drain.run,
    "wakeup": wakeup.run,
    "ingest": otc.run_ingest,
    "metrics": otc.run_metrics,
    "http": http.run,
    "datasets": datasets.run,
    "scale": scale.run,
}
