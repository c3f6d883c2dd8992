"""Stream a Reg SHO daily file into a staging table with one COPY (bounded memory).

FINRA publishes pipe-delimited text with CRLF line ends, the header HEADER,
one line per symbol, and a trailer: a last line holding the count of data
lines alone (a file with no data is the header and `0`). The file is read a
chunk of whole lines at a time (`app.copy_lines.LineChunks`, about 1 MB), each
line made safe for a one-column COPY (CRLF to LF, bytes that are not UTF-8
text marked), and reading the next chunk (in a thread) overlaps with the COPY
of the last. The lines are judged in SQL (normalize.py); what makes a file
unloadable at all (too big, empty, a wrong header) raises `InvalidInputFile`.
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
    "Date",
    "Symbol",
    "ShortVolume",
    "ShortExemptVolume",
    "TotalVolume",
    "Market",
)
HEADER = "|".join(HEADER_FIELDS)
MAX_FILE_BYTES = 64 * 1024 * 1024  # a day's largest file (CNMS) is under 1 MB

# Lines numbered from 2 (the header is line 1) in COPY's row order; dropped at commit.
_CREATE_STAGE: LiteralString = """
    CREATE TEMP TABLE regsho_stage_lines (
        line_no BIGINT GENERATED ALWAYS AS IDENTITY (START WITH 2),
        line    TEXT
    ) ON COMMIT DROP
"""
_COPY_STAGE: LiteralString = "COPY regsho_stage_lines (line) FROM STDIN " + COPY_OPTIONS


@dataclass(frozen=True)
class OpenedFile:
    """A file whose header was checked, its lines not yet read."""

    lines: LineChunks
    file_bytes: int  # the size when opened


@dataclass(frozen=True)
class CopiedFile:
    lines: int  # lines after the header (the trailer included)
    file_bytes: int
    sha256: str


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the lines after it are read by `copy_lines`."""
    size = os.fstat(stream.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInputFile(f"{name!r} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    lines = LineChunks(stream, name, max_bytes=MAX_FILE_BYTES)
    header = lines.first_line()
    if not header.strip() and lines.rest_is_blank():
        raise InvalidInputFile(f"{name!r} is empty; expected the header {HEADER!r}")
    text = header.decode("utf-8", "replace")
    if tuple(part.strip().lower() for part in text.split("|")) != tuple(
        f.lower() for f in HEADER_FIELDS
    ):
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise InvalidInputFile(f"{name!r}: wrong header: expected {HEADER!r}, found {shown!r}")
    return OpenedFile(lines=lines, file_bytes=size)


async def copy_lines(conn: AsyncConn, opened: OpenedFile, name: str) -> CopiedFile:
    """COPY the lines after the header into regsho_stage_lines (line_no, line), a
    temporary table of the caller's transaction."""
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
    return CopiedFile(
        lines=reader.lines, file_bytes=reader.bytes_read, sha256=reader.sha256.hexdigest()
    )
