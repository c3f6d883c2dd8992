"""Stream an SEC fails-to-deliver file into a staging table with one COPY.

The SEC publishes pipe-delimited text with the header HEADER and two trailer
lines. The file is read a chunk of whole lines at a time
(`app.copy_lines.LineChunks`, about 1 MB), so a worker's memory does not grow
with the file; reading the next chunk (in a thread) overlaps with the COPY of
the last. Every line after the header, the trailers included, becomes one row
of the temporary table ftd_stage_lines (line_no, line), numbered from 2 in file
order: the trailers and the data lines are judged there, in SQL (normalize.py).
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

HEADER_FIELDS = ("SETTLEMENT DATE", "CUSIP", "SYMBOL", "QUANTITY (FAILS)", "DESCRIPTION", "PRICE")
HEADER = "|".join(HEADER_FIELDS)
MAX_FILE_BYTES = 64 * 1024 * 1024  # a half-month is about 4 MB

# Dropped at commit; the normalizer reads this file's lines from here.
_CREATE_STAGE: LiteralString = """
    CREATE TEMP TABLE ftd_stage_lines (
        line_no BIGINT GENERATED ALWAYS AS IDENTITY (START WITH 2),
        line    TEXT
    ) ON COMMIT DROP
"""
_COPY_STAGE: LiteralString = "COPY ftd_stage_lines (line) FROM STDIN " + COPY_OPTIONS


@dataclass(frozen=True)
class OpenedFile:
    """A file whose header was checked, its other lines not yet read."""

    lines: LineChunks
    file_bytes: int  # the size when opened


@dataclass(frozen=True)
class CopiedFile:
    lines: int  # lines after the header (the trailers included)
    file_bytes: int
    sha256: str


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the other lines are read by `copy_lines`."""
    size = os.fstat(stream.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInputFile(f"{name!r} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    lines = LineChunks(stream, name, max_bytes=MAX_FILE_BYTES)
    header = lines.first_line()
    if not header.strip() and lines.rest_is_blank():
        raise InvalidInputFile(f"{name!r} is empty; expected the header {HEADER!r}")
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputFile(
            f"{name!r}: the header is not UTF-8 text; expected {HEADER!r}"
        ) from None
    if tuple(part.strip().upper() for part in text.split("|")) != HEADER_FIELDS:
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise InvalidInputFile(f"{name!r}: wrong header: expected {HEADER!r}, found {shown!r}")
    return OpenedFile(lines=lines, file_bytes=size)


async def copy_lines(conn: AsyncConn, opened: OpenedFile, name: str) -> CopiedFile:
    """COPY the lines after the header into ftd_stage_lines (the caller's transaction)."""
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
