"""Stream a FINRA OTC Transparency weekly file into finra_weekly_raw with one COPY.

FINRA publishes pipe-delimited text with the header HEADER. The file is read
a chunk of whole lines at a time (`app.copy_lines.LineChunks`, about 1 MB),
so a worker's memory does not grow with the file, as for otc_ingest:

- a UTF-8 byte-order mark is dropped and the header is checked before the
  load starts;
- the data lines go through `app.copy_lines.sanitize` (CRLF, bytes that are
  not UTF-8 text, COPY's reserved characters, an end-of-data marker line),
  and a line longer than 64 KiB is cut there (no valid row comes near it);
- reading the next chunk (in a thread) overlaps with the COPY of the last.

Every line then becomes one raw row: the COPY's delimiter and quote never
occur in the data, so PostgreSQL never splits or refuses a line, and bad lines
are judged one by one in SQL (see normalize.py) instead of failing the file.
What makes a file unloadable at all (too big, empty, not UTF-8, a wrong header)
raises `InvalidInputFile` with a message for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import BinaryIO, LiteralString

from app.copy_lines import COPY_OPTIONS, LineChunks
from app.db import AsyncConn
from app.files import InvalidInputFile

__all__ = ["HEADER", "MAX_FILE_BYTES", "CopiedFile", "OpenedFile", "copy_lines", "open_file"]

HEADER_FIELDS = (
    "tierDescription",
    "issueSymbolIdentifier",
    "issueName",
    "marketParticipantName",
    "MPID",
    "totalWeeklyShareQuantity",
    "totalWeeklyTradeCount",
    "lastUpdateDate",
)
HEADER = "|".join(HEADER_FIELDS)
MAX_FILE_BYTES = 256 * 1024 * 1024  # a full week of every tier is under 10 MB

# Lines numbered from 2 (the header is line 1) in COPY's row order; dropped at commit.
_CREATE_STAGE: LiteralString = """
    CREATE TEMP TABLE finra_stage_lines (
        line_no BIGINT GENERATED ALWAYS AS IDENTITY (START WITH 2),
        line    TEXT
    ) ON COMMIT DROP
"""
_COPY_STAGE: LiteralString = "COPY finra_stage_lines (line) FROM STDIN " + COPY_OPTIONS
_STAGE_TO_RAW: LiteralString = """
    INSERT INTO finra_weekly_raw (load_id, line_no, line)
    SELECT %s, line_no, line FROM finra_stage_lines ORDER BY line_no
"""


@dataclass(frozen=True)
class OpenedFile:
    """A file whose header was checked, its data lines not yet read."""

    lines: LineChunks
    file_bytes: int  # the size when opened


@dataclass(frozen=True)
class CopiedFile:
    lines: int  # data lines (the header excluded)
    file_bytes: int
    sha256: str


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the data lines are read by `copy_lines`."""
    size = os.fstat(stream.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInputFile(f"{name!r} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    lines = LineChunks(stream, name, max_bytes=MAX_FILE_BYTES)
    header = lines.first_line()
    if not header.strip() and lines.rest_is_blank():
        raise InvalidInputFile(f"{name!r} is empty; expected the header {HEADER!r}")
    _check_header(header, name)
    return OpenedFile(lines=lines, file_bytes=size)


def _check_header(header: bytes, name: str) -> None:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputFile(
            f"{name!r}: the header is not UTF-8 text; expected {HEADER!r}"
        ) from None
    names = tuple(part.strip().lower() for part in text.split("|"))
    if names != tuple(f.lower() for f in HEADER_FIELDS):
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise InvalidInputFile(f"{name!r}: wrong header: expected {HEADER!r}, found {shown!r}")


async def copy_lines(conn: AsyncConn, opened: OpenedFile, load_id: int, name: str) -> CopiedFile:
    """COPY the file's data lines into finra_weekly_raw under `load_id` (caller's transaction).

    They stay in the temporary table finra_stage_lines (line_no, line) until the
    commit, so the normalizer reads this file's lines without a scan of every load's.
    """
    reader = opened.lines
    await conn.execute(_CREATE_STAGE)
    async with conn.cursor() as cur:
        pending: asyncio.Future[bytes | None] | None = None
        try:
            async with cur.copy(_COPY_STAGE) as copy:
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                while (chunk := await pending) is not None:
                    pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                    await copy.write(chunk)
                pending = None
        finally:
            if pending is not None:
                with contextlib.suppress(Exception):
                    await pending  # let the reading thread finish before the file closes
        copied = cur.rowcount
    if copied != reader.lines:
        raise RuntimeError(f"server stored {copied} lines; {reader.lines} were sent")
    if reader.bytes_read != opened.file_bytes:
        raise InvalidInputFile(
            f"{name!r} changed while it was read ({opened.file_bytes} bytes when opened, "
            f"{reader.bytes_read} read); load it again"
        )
    await conn.execute(_STAGE_TO_RAW, (load_id,))
    return CopiedFile(
        lines=reader.lines, file_bytes=reader.bytes_read, sha256=reader.sha256.hexdigest()
    )
