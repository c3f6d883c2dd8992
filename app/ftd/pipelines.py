"""FTD pipelines: `sec_ftd_ingest` (an SEC fails-to-deliver half-month file -> ftd_fails).

An ingest is one transaction: the COPY of the lines, the trailer check, the
rejects, the replacement of the half-month's rows and the record of its
materialization commit together or not at all, so a worker killed half way
leaves nothing behind, and a file refused whole (its trailers do not match)
leaves nothing either. A retry of an execution whose load did commit returns
that load's summary instead of loading again.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import msgspec

from app.db import AsyncConn, AsyncPool
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.registry import Pipeline, Summary
from app.file_loads import load_once
from app.files import InvalidInputFile, check_input_path, file_mtime, open_input, resolve_input_path
from app.ftd import connector, keys, loads
from app.ftd.datasets import record_load
from app.ftd.normalize import normalize_load

__all__ = ["PIPELINES", "IngestParams", "ingest_file", "period_of_name"]

_NAME = re.compile(r"cnsfails(\d{4})(\d{2})([ab])\.txt", re.IGNORECASE)


class IngestParams(msgspec.Struct, forbid_unknown_fields=True):
    file: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=1024,
            description="SEC fails-to-deliver file (pipe-delimited), relative to SPINE_DATA_DIR.",
            examples=["ftd/cnsfails202212a.TXT"],
        ),
    ]
    period: Annotated[
        Annotated[str, msgspec.Meta(pattern=keys.PERIOD_PATTERN)] | None,
        msgspec.Meta(
            description="The half-month (2022-12a: the 1st-14th, 2022-12b: the 15th-end); "
            "none: from the file's name (cnsfails202212a.txt).",
        ),
    ] = None

    def __post_init__(self) -> None:
        if self.period is not None:
            keys.period_key(self.period)
        elif period_of_name(self.file) is None:
            raise ValueError(
                f"{self.file!r} is not named cnsfailsYYYYMM(a|b).txt; pass the period (2022-12a)"
            )


def period_of_name(file: str) -> str | None:
    """The half-month a file's SEC name says (`cnsfails202212a.TXT` -> 2022-12a), or None."""
    found = _NAME.fullmatch(PurePosixPath(file).name)
    if found is None:
        return None
    try:
        return keys.period_key(f"{found[1]}-{found[2]}{found[3].lower()}")
    except ValueError:
        return None


def _check_ingest(params: IngestParams, settings: PipelineSettings) -> None:
    """The file must be inside SPINE_DATA_DIR: checked at submit and again when run."""
    check_input_path(settings.data_dir, params.file)


async def sec_ftd_ingest(ctx: PipelineContext, params: IngestParams) -> Summary:
    path = resolve_input_path(ctx.settings.data_dir, params.file)
    await ctx.progress(0, None, f"loading {params.file}")
    return await ingest_file(
        ctx.pool,
        execution_id=ctx.execution_id,
        path=path,
        source_file=params.file,
        period=params.period,
    )


async def ingest_file(
    pool: AsyncPool, *, execution_id: str, path: Path, source_file: str, period: str | None = None
) -> dict[str, Any]:
    """Load `path` (already resolved inside the data directory) as one transaction.

    Returns the summary: rows_read, inserted, changed, removed, unchanged,
    rejected, rejects_by_reason, the period, the trailers and what was loaded
    (quantity, settlement dates), the load's id, file and checksum, and
    db_seconds (the load's SQL, from COPY to the end).
    """
    period = period or period_of_name(source_file)
    if period is None:
        raise InvalidInputFile(f"{source_file!r} names no half-month; pass the period (2022-12a)")
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
                period=period,
                mtime=file_mtime(path),
            ),
        )


async def _load(
    conn: AsyncConn,
    opened: connector.OpenedFile,
    *,
    execution_id: str,
    source_file: str,
    period: str,
    mtime: datetime,
) -> dict[str, Any]:
    started = time.perf_counter()
    load_id = await loads.create_load(
        conn, execution_id=execution_id, source_file=source_file, file_bytes=opened.file_bytes
    )
    copied = await connector.copy_lines(conn, opened, source_file)
    first_day, last_day = keys.period_dates(period)
    result = await normalize_load(
        conn, load_id, lines=copied.lines, period=period, first_day=first_day, last_day=last_day
    )
    summary: dict[str, Any] = {
        "period": period,
        "rows_read": result.rows_read,
        "inserted": result.inserted,
        "changed": result.changed,
        "removed": result.removed,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "rejects_by_reason": result.rejects_by_reason,
        "trailer_record_count": result.trailers.record_count,
        "trailer_total_quantity": result.trailers.total_quantity,
        "loaded_rows": result.rows_read - result.rejected,
        "loaded_quantity": result.quantity,
        "settlement_dates": result.settlement_dates,
        "load_id": load_id,
        "file": source_file,
        "file_bytes": copied.file_bytes,
        "file_sha256": copied.sha256,
    }
    summary["db_seconds"] = round(time.perf_counter() - started, 4)
    await loads.finish_load(
        conn, load_id, file_sha256=copied.sha256, period=period, summary=summary
    )
    await record_load(
        conn,
        execution_id=execution_id,
        load_id=load_id,
        source_file=source_file,
        summary=summary,
        mtime=mtime,
    )
    return summary


PIPELINES: tuple[Pipeline[Any], ...] = (
    Pipeline(
        "sec_ftd_ingest",
        "Load an SEC fails-to-deliver half-month file from the data directory: both trailers "
        "must match (else refused whole); rejects kept with reasons; a republished half-month "
        "replaces the stored one.",
        IngestParams,
        sec_ftd_ingest,
        check=_check_ingest,
    ),
)
