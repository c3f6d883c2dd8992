"""Sizes of a run (full or `--quick`) and what a scenario is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Row, Scratch

PEER_SCENARIOS = ("drain", "wakeup", "submit")


@dataclass(frozen=True)
class Sizes:
    drain_executions: int = 5_000
    drain_processes: tuple[int, ...] = (1, 2, 4)
    drain_schedules: int = 0  # schedules present while draining (none due): `--schedules`
    peers_drain_executions: int = 20_000  # --jobs; 2,000 drain in under half a second
    peers_submits: int = 3_000
    wakeup_executions: int = 200
    wakeup_processes: int = 2
    ingest_rows: int = 1_000_000
    ingest_symbols: int = 50
    ingest_days: int = 20
    warmup_rows: int = 50_000
    http_seconds: float = 15.0
    http_warmup_seconds: float = 3.0
    http_concurrency: int = 32
    http_rows: int = 100_000
    scan_files: int = 10_000
    backfill_partitions: int = 250
    scale_rows: tuple[int, ...] = (1_000_000,)  # finished executions behind the queue
    scale_drain: int = 20_000
    scale_submits: int = 2_000
    scale_wakeups: int = 100
    scale_reads: int = 30


FULL = Sizes()
QUICK = Sizes(
    drain_executions=300,
    peers_drain_executions=300,
    peers_submits=300,
    drain_processes=(1, 2),
    wakeup_executions=30,
    ingest_rows=20_000,
    ingest_symbols=10,
    ingest_days=5,
    warmup_rows=2_000,
    http_seconds=2.0,
    http_warmup_seconds=0.5,
    http_concurrency=8,
    http_rows=5_000,
    scan_files=1_000,
    backfill_partitions=50,
    scale_rows=(20_000,),
    scale_drain=1_000,
    scale_submits=1_000,
    scale_wakeups=10,
    scale_reads=5,
)


@dataclass
class Context:
    """Everything a scenario needs; rows it measures are appended to `rows`."""

    scratch: Scratch
    sizes: Sizes
    repeat: int
    work_dir: Path  # generated files and process logs, removed at the end
    http_client: str = "auto"  # "auto" (wrk when installed), "wrk" or "httpx"
    peer_scenarios: tuple[str, ...] = PEER_SCENARIOS  # what `--peers` runs (`--peers-only`)
    celery_broker: str | None = None  # also drain through a Celery node on this broker
    rows: list[Row] = field(default_factory=list)
    peer_rows: list[Any] = field(default_factory=list)  # bench.peers.run.PeerRow (the extra)
    shared: dict[str, object] = field(default_factory=dict)  # e.g. a loaded OTC database

    def log_path(self, name: str) -> Path:
        return self.work_dir / f"{name}.log"
