"""FINRA pipelines: `finra_weekly_ingest` (a weekly OTC Transparency file -> weekly volume).

A file holds one venue kind, ATS or non-ATS, named by the `venue_kind` param
(default non-ATS, what every file held before FINRA's ATS data came in); the
datasets pass it for their partitions. A file whose name follows one kind's
landing pattern must be loaded as that kind: a mismatch is refused rather than
stored under the wrong kind.

An ingest is one transaction: the COPY of the raw lines, the rejects and the
replacement of the week's rows commit together or not at all, so a worker
killed half way leaves nothing behind. A retry of an execution whose load did
commit returns that load's summary instead of loading again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec

from app.dates import is_week_start
from app.db import AsyncConn, AsyncPool
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.registry import Pipeline, Summary
from app.file_loads import load_once
from app.files import check_input_path, file_mtime, open_input, resolve_input_path
from app.finra import connector, loads
from app.finra.datasets import kind_of_file, record_load
from app.finra.normalize import normalize_load
from app.finra.venue_kinds import DEFAULT_VENUE_KIND, VenueKind

__all__ = ["PIPELINES", "IngestParams", "ingest_file"]


class IngestParams(msgspec.Struct, forbid_unknown_fields=True):
    file: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=1024,
            description="FINRA weekly file (pipe-delimited), relative to SPINE_DATA_DIR.",
            examples=["finra/finra_otc_weekly_otc_20251215.csv"],
        ),
    ]
    week: Annotated[
        date | None,
        msgspec.Meta(description="The week's Monday; none: the file's lastUpdateDate."),
    ] = None
    venue_kind: Annotated[
        VenueKind,
        msgspec.Meta(
            description="What the file holds: FINRA's ATS file or its non-ATS one; a load "
            "replaces only its kind's rows of the week and tiers."
        ),
    ] = DEFAULT_VENUE_KIND

    def __post_init__(self) -> None:
        if self.week is not None and not is_week_start(self.week):
            raise ValueError(f"week {self.week} is not a Monday")
        check_kind(self.file, self.venue_kind)


def check_kind(source_file: str, venue_kind: VenueKind) -> None:
    """Refuse a file whose landing name says the other kind (ValueError for people)."""
    named = kind_of_file(source_file)
    if named is not None and named != venue_kind:
        raise ValueError(
            f"{source_file!r} is named as {named} data (its dataset's landing pattern); "
            f"pass venue_kind={named}, not {venue_kind}"
        )


def _check_ingest(params: IngestParams, settings: PipelineSettings) -> None:
    """The file must be inside SPINE_DATA_DIR: checked at submit and again when run."""
    check_input_path(settings.data_dir, params.file)


async def finra_weekly_ingest(ctx: PipelineContext, params: IngestParams) -> Summary:
    path = resolve_input_path(ctx.settings.data_dir, params.file)
    await ctx.progress(0, None, f"loading {params.file}")
    return await ingest_file(
        ctx.pool,
        execution_id=ctx.execution_id,
        path=path,
        source_file=params.file,
        week=params.week,
        venue_kind=params.venue_kind,
    )


async def ingest_file(
    pool: AsyncPool,
    *,
    execution_id: str,
    path: Path,
    source_file: str,
    week: date | None = None,
    venue_kind: VenueKind = DEFAULT_VENUE_KIND,
) -> dict[str, Any]:
    """Load `path` (already resolved inside the data directory) as one transaction.

    Returns the summary: rows_read, inserted, changed, removed, unchanged,
    rejected, rejects_by_reason, the week, venue kind and lastUpdateDate, the load's id,
    file and checksum, and db_seconds (the load's SQL, from COPY to the end).
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
                week=week,
                venue_kind=venue_kind,
                mtime=file_mtime(path),
            ),
        )


async def _load(
    conn: AsyncConn,
    opened: connector.OpenedFile,
    *,
    execution_id: str,
    source_file: str,
    week: date | None,
    venue_kind: VenueKind,
    mtime: datetime,
) -> dict[str, Any]:
    started = time.perf_counter()
    load_id = await loads.create_load(
        conn,
        execution_id=execution_id,
        source_file=source_file,
        file_bytes=opened.file_bytes,
        venue_kind=venue_kind,
    )
    copied = await connector.copy_lines(conn, opened, load_id, source_file)
    result = await normalize_load(
        conn, load_id, rows_read=copied.lines, week=week, venue_kind=venue_kind
    )
    summary: dict[str, Any] = {
        "rows_read": result.rows_read,
        "inserted": result.inserted,
        "changed": result.changed,
        "removed": result.removed,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "rejects_by_reason": result.rejects_by_reason,
        "week": result.week.isoformat() if result.week else None,
        "venue_kind": venue_kind,
        "last_update_date": (
            result.last_update_date.isoformat() if result.last_update_date else None
        ),
        "load_id": load_id,
        "file": source_file,
        "file_bytes": copied.file_bytes,
        "file_sha256": copied.sha256,
        "db_seconds": round(time.perf_counter() - started, 4),
    }
    await loads.finish_load(
        conn,
        load_id,
        file_sha256=copied.sha256,
        week_start=result.week,
        last_update_date=result.last_update_date,
        summary=summary,
    )
    await record_load(
        conn,
        execution_id=execution_id,
        load_id=load_id,
        source_file=source_file,
        summary=summary,
        mtime=mtime,
        venue_kind=venue_kind,
    )
    return summary


PIPELINES: tuple[Pipeline[Any], ...] = (
    Pipeline(
        "finra_weekly_ingest",
        "Load a FINRA OTC Transparency weekly file (per symbol and venue, ATS or non-ATS) "
        "from the data directory: rejects kept with reasons; a republished week replaces "
        "the stored one of its venue kind.",
        IngestParams,
        finra_weekly_ingest,
        check=_check_ingest,
    ),
)
