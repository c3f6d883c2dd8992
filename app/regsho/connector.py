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


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the lines after it are read by `copy_lines`."""
    return open_headed_file(
        stream, name, header_fields=HEADER_FIELDS, max_bytes=MAX_FILE_BYTES, utf8_header=False
    )


async def copy_lines(conn: AsyncConn, opened: OpenedFile, name: str) -> CopiedFile:
    """COPY the lines after the header into regsho_stage_lines (line_no, line), a
    temporary table of the caller's transaction."""
    return await copy_to_stage(
        conn, opened, name, create_stage=_CREATE_STAGE, copy_stage=_COPY_STAGE
    )
