"""Reg SHO pipelines: `regsho_ingest` (one day's file of one market -> regsho_daily_volume)
and `regsho_compute` (one day of the derived short_volume_daily).

An ingest is one transaction: the COPY, the trailer check, the rejects, the
replacement of the (day, market) and the record of its materialization commit
together or not at all, so a refused or interrupted file leaves nothing
behind. A retry of an execution whose load did commit returns that load's
summary instead of loading again.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, BinaryIO

import msgspec

from app.db import AsyncConn, AsyncPool
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.landing import LandingPattern
from app.engine.registry import Pipeline, Summary
from app.file_loads import load_once
from app.files import InvalidInputFile, open_input, resolve_input_path
from app.regsho import connector, loads
from app.regsho.datasets import REGSHO_DAILY, record_compute, record_load
from app.regsho.keys import Market
from app.regsho.normalize import normalize_file
from app.regsho.short_volume import compute_day

__all__ = ["PIPELINES", "ComputeParams", "IngestParams", "compute", "ingest_file"]

_NAMES = LandingPattern(REGSHO_DAILY)


class IngestParams(msgspec.Struct, forbid_unknown_fields=True):
    file: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=1024,
            description="A Reg SHO daily file ({MARKET}shvol{YYYYMMDD}.txt), relative to "
            "SPINE_DATA_DIR.",
            examples=["regsho/CNMSshvol20200102.txt"],
        ),
    ]
    date: Annotated[
        date | None, msgspec.Meta(description="The trading day; none: from the file's name.")
    ] = None
    market: Annotated[
        Market | None, msgspec.Meta(description="The market; none: from the file's name.")
    ] = None


class ComputeParams(msgspec.Struct, forbid_unknown_fields=True):
    date: Annotated[date, msgspec.Meta(description="The trading day to (re)compute.")]


def _check_ingest(params: IngestParams, settings: PipelineSettings) -> None:
    """The file must be inside SPINE_DATA_DIR, its day and market known: checked at submit
    and again when run."""
    try:
        resolve_input_path(settings.data_dir, params.file)
        _day_and_market(params)
    except InvalidInputFile as exc:
        raise ValueError(str(exc)) from None


def _day_and_market(params: IngestParams) -> tuple[date, str]:
    """The params' day and market, else those the file's name gives (`CNMSshvol20200102.txt`)."""
    named = _NAMES.match(f"regsho/{PurePosixPath(params.file).name}")
    day = params.date or (named.start if named else None)
    market = params.market or (named.key2 if named else None)
    if day is None or market is None:
        raise InvalidInputFile(
            f"{params.file!r}: pass `date` and `market`, or name the file "
            "{MARKET}shvol{YYYYMMDD}.txt"
        )
    return day, market


async def regsho_ingest(ctx: PipelineContext, params: IngestParams) -> Summary:
    path = resolve_input_path(ctx.settings.data_dir, params.file)
    day, market = _day_and_market(params)
    await ctx.progress(0, None, f"loading {params.file}")
    return await ingest_file(
        ctx.pool,
        execution_id=ctx.execution_id,
        path=path,
        source_file=params.file,
        day=day,
        market=market,
    )


async def ingest_file(
    pool: AsyncPool, *, execution_id: str, path: Path, source_file: str, day: date, market: str
) -> dict[str, Any]:
    """Load `path` (already resolved inside the data directory) as one transaction.

    Returns the summary: rows_read, inserted, changed, removed, unchanged,
    rejected, rejects_by_reason, trailer_count, the date and market, the load's
    id, file and checksum, and db_seconds (the load's SQL, from COPY to the end).
    """
    with open_input(path) as stream:
        opened = await asyncio.to_thread(connector.open_file, stream, source_file)
        return await load_once(
            pool,
            execution_id,
            loads.get_summary,
            lambda conn: _load(
                conn,
                opened,
                execution_id=execution_id,
                source_file=source_file,
                day=day,
                market=market,
                mtime=_mtime(stream),
            ),
        )


async def _load(
    conn: AsyncConn,
    opened: connector.OpenedFile,
    *,
    execution_id: str,
    source_file: str,
    day: date,
    market: str,
    mtime: datetime,
) -> dict[str, Any]:
    started = time.perf_counter()
    load_id = await loads.create_load(
        conn, execution_id=execution_id, source_file=source_file, file_bytes=opened.file_bytes
    )
    copied = await connector.copy_lines(conn, opened, source_file)
    result = await normalize_file(
        conn, load_id, day=day, market=market, name=source_file, sha256=copied.sha256
    )
    summary: dict[str, Any] = {
        "rows_read": result.rows_read,
        "inserted": result.inserted,
        "changed": result.changed,
        "removed": result.removed,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "rejects_by_reason": result.rejects_by_reason,
        "trailer_count": result.trailer_count,
        "date": day.isoformat(),
        "market": market,
        "load_id": load_id,
        "file": source_file,
        "file_bytes": copied.file_bytes,
        "file_sha256": copied.sha256,
        "db_seconds": round(time.perf_counter() - started, 4),
    }
    await loads.finish_load(
        conn, load_id, file_sha256=copied.sha256, trade_date=day, market=market, summary=summary
    )
    await record_load(
        conn, execution_id=execution_id, load_id=load_id, summary=summary, mtime=mtime
    )
    return summary


def _mtime(stream: BinaryIO) -> datetime:
    """The open file's modification time, recorded with its materialization (a scan's stat)."""
    return datetime.fromtimestamp(os.fstat(stream.fileno()).st_mtime, UTC)


async def regsho_compute(ctx: PipelineContext, params: ComputeParams) -> Summary:
    return await compute(ctx.pool, execution_id=ctx.execution_id, day=params.date)


async def compute(pool: AsyncPool, *, execution_id: str, day: date) -> dict[str, Any]:
    """Recompute one day of short_volume_daily and record it, in one transaction."""
    started = time.perf_counter()
    async with pool.connection() as conn, conn.transaction():
        result = await compute_day(conn, day)
        await record_compute(conn, execution_id=execution_id, day=day, counts=result.counts())
    return {
        "date": day.isoformat(),
        **result.counts(),
        "symbols": result.symbols,
        "reconciliation": result.reconciliation,
        "mismatched_symbols": result.mismatched_symbols,
        "db_seconds": round(time.perf_counter() - started, 4),
    }


PIPELINES: tuple[Pipeline[Any], ...] = (
    Pipeline(
        "regsho_ingest",
        "Load a FINRA Reg SHO daily short sale volume file (one day, one market) from the data "
        "directory: its trailer count checked (a mismatch refuses the file whole), rejects "
        "kept with reasons; a republished file replaces the stored (day, market).",
        IngestParams,
        regsho_ingest,
        check=_check_ingest,
    ),
    Pipeline(
        "regsho_compute",
        "Compute one day of short_volume_daily: short, short-exempt and total volume per "
        "symbol summed over the facility files, the short ratio, and CNMS reconciled.",
        ComputeParams,
        regsho_compute,
    ),
)
