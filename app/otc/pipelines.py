"""OTC pipelines: `otc_ingest` (file -> raw -> trades -> metrics) and `otc_compute_metrics`.

An ingest is one transaction: the COPY, the normalization and the metrics of
one file commit together or not at all, so a worker killed half way leaves
nothing behind and the retried execution starts clean. A retry of an
execution whose load did commit returns that load's summary instead of
loading again (otc_loads.execution_id is unique). Concurrent ingests COPY in
parallel and then take turns on the trades lock.

There is no separate `otc_normalize` pipeline: normalizing is part of the load
that read the lines, and replaying an old load's lines later could undo newer
corrections.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec
import psycopg

from app.db import AsyncConn, AsyncPool
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.registry import Pipeline, Summary
from app.otc import connector, datasets, loads, metrics
from app.otc.connector import InvalidInputFile, ProgressFn, resolve_input_path
from app.otc.normalize import StepFn, normalize_load
from app.otc.symbols import SYMBOL_HELP, SYMBOL_PATTERN, normalize_symbol

__all__ = ["PIPELINES", "ComputeMetricsParams", "IngestParams", "ingest_file", "ingest_rows"]


class IngestParams(msgspec.Struct, forbid_unknown_fields=True):
    file: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=1024,
            description="Trades CSV, relative to SPINE_DATA_DIR (must stay inside it).",
        ),
    ] = "otc_sample.csv"


def _check_ingest(params: IngestParams, settings: PipelineSettings) -> None:
    """The file must be inside SPINE_DATA_DIR: checked at submit and again when run."""
    try:
        resolve_input_path(settings.data_dir, params.file)
    except InvalidInputFile as exc:
        raise ValueError(str(exc)) from None


class ComputeMetricsParams(msgspec.Struct, forbid_unknown_fields=True):
    start_date: Annotated[
        date | None, msgspec.Meta(description="First trade date (inclusive); none: the earliest.")
    ] = None
    end_date: Annotated[
        date | None, msgspec.Meta(description="Last trade date (inclusive); none: the latest.")
    ] = None
    symbol: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=SYMBOL_PATTERN, description=f"Only this symbol; none: all. {SYMBOL_HELP}"
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        if self.symbol is not None:
            self.symbol = normalize_symbol(self.symbol)  # the pattern above already passed


async def otc_ingest(ctx: PipelineContext, params: IngestParams) -> Summary:
    path = resolve_input_path(ctx.settings.data_dir, params.file)

    async def on_bytes(done: int, total: int) -> None:
        await ctx.progress(done, total, f"copying {params.file} ({total:,} bytes)", phase="copy")

    async def on_step(phase: str, done: int, total: int, message: str) -> None:
        await ctx.progress(done, total, message, phase=phase, step=True)  # a few, each shown

    return await ingest_file(
        ctx.pool,
        execution_id=ctx.execution_id,
        path=path,
        source_file=params.file,
        market_tz=ctx.settings.market_tz,
        progress=on_bytes,
        step=on_step,
    )


async def otc_compute_metrics(ctx: PipelineContext, params: ComputeMetricsParams) -> Summary:
    first, last, symbol = params.start_date, params.end_date, params.symbol
    async with ctx.pool.connection() as conn, conn.transaction():
        changed = await metrics.recompute(conn, start_date=first, end_date=last, symbol=symbol)
        total = await metrics.count_range(conn, start_date=first, end_date=last, symbol=symbol)
        if symbol is None and first is not None and last is not None:
            # A whole day (or range) recomputed is a materialization of otc_metrics_daily.
            await datasets.record_recompute(
                conn, execution_id=ctx.execution_id, first=first, last=last, changed=changed
            )
    return {
        "metrics_rows_changed": changed,
        "metrics_rows_total": total,
        **msgspec.to_builtins(params),
    }


async def ingest_file(
    pool: AsyncPool,
    *,
    execution_id: str,
    path: Path,
    source_file: str,
    market_tz: str,
    progress: ProgressFn | None = None,
    step: StepFn | None = None,
) -> dict[str, Any]:
    """Load `path` (already resolved inside the data directory) as one transaction.

    Returns the summary: rows_read, inserted, changed, removed, unchanged, rejected
    (duplicates and corrections: the old names of unchanged and changed),
    rejects_by_reason, metrics_rows_changed (inserted, updated or deleted by the
    load) and metrics_rows_total (stored after it), and the load's id, file and
    checksum.
    """
    with connector.open_input(path) as stream:
        async with pool.connection() as conn:
            done = await loads.get_load(conn, execution_id)
            if done is not None and done.summary is not None:
                return done.summary  # an earlier attempt of this execution committed it
            try:
                async with conn.transaction():
                    return await _load(
                        conn,
                        stream,
                        execution_id=execution_id,
                        source_file=source_file,
                        market_tz=market_tz,
                        progress=progress,
                        step=step,
                    )
            except psycopg.errors.UniqueViolation:
                done = await loads.get_load(conn, execution_id)
                if done is None or done.summary is None:
                    raise
                return done.summary  # another attempt committed it meanwhile


async def _load(
    conn: AsyncConn,
    stream: BinaryIO,
    *,
    execution_id: str,
    source_file: str,
    market_tz: str,
    progress: ProgressFn | None,
    step: StepFn | None,
) -> dict[str, Any]:
    size = os.fstat(stream.fileno()).st_size
    load_id = await loads.create_load(
        conn,
        execution_id=execution_id,
        source_file=source_file,
        file_bytes=size,
        market_tz=market_tz,
    )
    copied = await connector.copy_file(conn, stream, load_id, name=source_file, progress=progress)
    try:
        result = await normalize_load(
            conn,
            load_id,
            rows_read=copied.lines,
            check_lines=copied.check_lines,
            market_tz=market_tz,
            step=step,
        )
    finally:
        copied.check_lines.close()
    summary: dict[str, Any] = {
        "rows_read": result.rows_read,
        # The one set of row-count names (issue 26): inserted, changed, removed,
        # unchanged, rejected; `duplicates` and `corrections` stay one release as aliases.
        "inserted": result.inserted,
        "changed": result.corrections,
        "removed": 0,
        "unchanged": result.duplicates,
        "rejected": result.rejected,
        "duplicates": result.duplicates,
        "corrections": result.corrections,
        "rejects_by_reason": result.rejects_by_reason,
        "metrics_rows_changed": result.metrics_rows_changed,
        "metrics_rows_total": result.metrics_rows_total,
        "load_id": load_id,
        "file": source_file,
        "file_bytes": copied.file_bytes,
        "file_sha256": copied.sha256,
    }
    await loads.finish_load(conn, load_id, file_sha256=copied.sha256, summary=summary)
    await datasets.record_load(conn, execution_id=execution_id, load_id=load_id, summary=summary)
    return summary


def ingest_rows(summary: dict[str, Any]) -> dict[str, int]:
    """An ingest's lines by outcome, for the worker pool's row counter."""
    return {
        "inserted": summary["inserted"],
        "duplicate": summary["duplicates"],
        "correction": summary["corrections"],
        "rejected": summary["rejected"],
    }


PIPELINES: tuple[Pipeline[Any], ...] = (
    Pipeline(
        "otc_ingest",
        "Load a trades CSV from the data directory: raw lines, normalized trades "
        "(rejects kept with reasons, duplicates and corrections by trade_id), daily metrics.",
        IngestParams,
        otc_ingest,
        check=_check_ingest,
        rows=ingest_rows,
    ),
    Pipeline(
        "otc_compute_metrics",
        "Recompute daily OTC metrics from the stored trades for a date range (default: all), "
        "optionally one symbol.",
        ComputeMetricsParams,
        otc_compute_metrics,
    ),
)
