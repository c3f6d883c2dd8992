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


def open_file(stream: BinaryIO, name: str) -> OpenedFile:
    """Check the size and the header; the data lines are read by `copy_lines`."""
    return open_headed_file(stream, name, header_fields=HEADER_FIELDS, max_bytes=MAX_FILE_BYTES)


async def copy_lines(conn: AsyncConn, opened: OpenedFile, load_id: int, name: str) -> CopiedFile:
    """COPY the file's data lines into finra_weekly_raw under `load_id` (caller's transaction).

    They stay in the temporary table finra_stage_lines (line_no, line) until the
    commit, so the normalizer reads this file's lines without a scan of every load's.
    """
    copied = await copy_to_stage(
        conn, opened, name, create_stage=_CREATE_STAGE, copy_stage=_COPY_STAGE
    )
    await conn.execute(_STAGE_TO_RAW, (load_id,))
    return copied
