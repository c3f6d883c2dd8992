"""Read a FINRA OTC Transparency weekly file and COPY its lines into finra_weekly_raw.

FINRA publishes pipe-delimited text with the header HEADER. Weekly files are
small (about 5,000 lines, 0.5 MB), so the file is read whole and prepared with
bytes-level operations (no Python loop over lines):

- a UTF-8 byte-order mark is dropped and the header is checked;
- the data lines go through `app.copy_lines.sanitize` (CRLF, bytes that are
  not UTF-8 text, COPY's reserved characters, an end-of-data marker line),
  as the OTC connector's do.

Every line then becomes one raw row: the COPY's delimiter and quote never
occur in the data, so PostgreSQL never splits or refuses a line, and bad lines
are judged one by one in SQL (see normalize.py) instead of failing the file.
What makes a file unloadable at all (too big, empty, not UTF-8, a wrong header)
raises `InvalidInputFile` with a message for people.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO, LiteralString

from app.copy_lines import BOM, COPY_OPTIONS, refuse_utf16, sanitize
from app.db import AsyncConn
from app.files import InvalidInputFile

__all__ = ["HEADER", "MAX_FILE_BYTES", "PreparedFile", "copy_lines", "prepare"]

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
class PreparedFile:
    payload: bytes  # the data lines, sanitized, each ending with a newline
    lines: int  # data lines (the header excluded)
    file_bytes: int
    sha256: str


def prepare(stream: BinaryIO, name: str) -> PreparedFile:
    """Read the whole file, check its header, and make its data lines safe for COPY."""
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInputFile(f"{name!r} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    sha256 = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InvalidInputFile(f"{name!r} is empty; expected the header {HEADER!r}")
    refuse_utf16(data, name)
    header, _, body = data.removeprefix(BOM).partition(b"\n")
    _check_header(header.removesuffix(b"\r"), name)
    if body and not body.endswith(b"\n"):
        body += b"\n"  # the last line had no newline
    body = sanitize(body)
    return PreparedFile(payload=body, lines=body.count(b"\n"), file_bytes=len(data), sha256=sha256)


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


async def copy_lines(conn: AsyncConn, prepared: PreparedFile, load_id: int) -> None:
    """COPY the prepared lines into finra_weekly_raw under `load_id` (caller's transaction).

    They stay in the temporary table finra_stage_lines (line_no, line) until the
    commit, so the normalizer reads this file's lines without a scan of every load's.
    """
    await conn.execute(_CREATE_STAGE)
    async with conn.cursor() as cur:
        async with cur.copy(_COPY_STAGE) as copy:
            await copy.write(prepared.payload)
        copied = cur.rowcount
    if copied != prepared.lines:
        raise RuntimeError(f"server stored {copied} lines; {prepared.lines} were sent")
    await conn.execute(_STAGE_TO_RAW, (load_id,))
