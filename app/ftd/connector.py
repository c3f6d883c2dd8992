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

from typing import BinaryIO, LiteralString

from app.copy_lines import (
    COPY_OPTIONS,
    CopiedFile,
    OpenedFile,
    copy_to_stage,
    open_headed_file,
)
from app.db import AsyncConn

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


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the other lines are read by `copy_lines`."""
    return open_headed_file(
        stream, name, header_fields=HEADER_FIELDS, max_bytes=MAX_FILE_BYTES, fold=str.upper
    )


async def copy_lines(conn: AsyncConn, opened: OpenedFile, name: str) -> CopiedFile:
    """COPY the lines after the header into ftd_stage_lines (the caller's transaction)."""
    return await copy_to_stage(
        conn, opened, name, create_stage=_CREATE_STAGE, copy_stage=_COPY_STAGE
    )
