"""Stream a trades CSV into the load's raw lines with one COPY, whatever the file holds.

Each line of the file becomes one raw line, in order and numbered (line 1 is
the header), stored in chunks of whole lines (otc_raw_chunks, read line by
line through the view otc_trades_raw; migration 014): PostgreSQL never splits,
unquotes or refuses a line, and malformed lines are judged later, one by one,
instead of failing the file.
Before the bytes go out, per chunk and with bytes-level operations only (no
Python loop over lines unless a chunk holds a suspect line):

- a UTF-8 byte-order mark is dropped, and each chunk of whole lines goes
  through `app.copy_lines.sanitize` (CRLF, bytes that are not UTF-8 text,
  COPY's reserved characters, an end-of-data marker line);
- a line longer than MAX_LINE_BYTES is cut there (it is rejected anyway), so
  memory stays bounded by one chunk;
- one regular expression proves most lines plainly valid; the numbers of the
  other lines are spooled (`FlaggedLines`: a temporary file past 1 MB, so a
  file of millions of unusual lines costs disk, not memory) for the
  normalizer, which COPYs them in and parses those lines with the full rules
  (`otc_parse_line`). The regex is deliberately narrower than those rules: a
  plain line is always valid and yields the same values.

What makes a file unloadable at all (a path outside the data directory, not a
regular file, empty, a wrong header) raises `InvalidInputFile` with a message
for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from app.copy_lines import CHUNK_BYTES, MAX_LINE_BYTES, LineChunks, refuse_utf16, sanitize
from app.db import AsyncConn
from app.files import InvalidInputFile, open_input, resolve_input_path
from app.otc import loads

__all__ = [
    "CHUNK_BYTES",
    "HEADER",
    "MAX_LINE_BYTES",
    "CopyResult",
    "FlaggedLines",
    "InvalidInputFile",
    "ProgressFn",
    "copy_file",
    "is_plain_line",
    "open_input",
    "resolve_input_path",
]

HEADER_FIELDS = ("trade_id", "symbol", "executed_at", "price", "size", "side", "venue")
HEADER = ",".join(HEADER_FIELDS)
SPOOL_BYTES = 1 << 20
FLAG_SLICE_BYTES = 64 * 1024  # lines flagged at a time (bounds the per-line objects alive)

# A plainly valid line (see otc_parse_line in migrations/010 for the full rules).
_PLAIN_FIELDS = (
    rb"[0-9A-Za-z._:/#-]{1,64}",  # trade_id
    rb"[A-Z0-9.-]{1,12}",  # symbol
    # executed_at: a real date in 1900-2999 (29 February goes the long way), a time, an offset
    rb"(?:19|2[0-9])[0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    rb"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rb"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    rb"(?:Z|[+-](?:0[0-9]|1[0-4]):?[0-5][0-9])",
    rb"(?=[0-9.]*[1-9])[0-9]{1,12}(?:\.[0-9]{1,6})?",  # price: positive, <= 6 decimals
    rb"0*[1-9][0-9]{0,17}",  # size: positive, fits BIGINT
    rb"(?:[BbSs]|[Bb][Uu][Yy]|[Ss][Ee][Ll][Ll])",  # side
    rb"[A-Z]{4}",  # venue
)
_PLAIN = re.compile(b",".join(_PLAIN_FIELDS))
_PLAIN_LINES = re.compile(rb"(?m)^" + b",".join(_PLAIN_FIELDS) + rb"\n")

ProgressFn = Callable[[int, int], Awaitable[None]]


def is_plain_line(line: bytes) -> bool:
    """Whether the connector lets `line` (no newline) skip the full parse."""
    return _PLAIN.fullmatch(line) is not None


class FlaggedLines:
    """Numbers of the lines to parse with the full rules, as COPY text (one per line).

    Held in memory up to SPOOL_BYTES, then in a temporary file: the worker's
    memory stays bounded however many lines a file flags. Close it when done.
    """

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.count = 0

    def add(self, line_nos: list[int]) -> None:
        if line_nos:
            self._file.write(("\n".join(map(str, line_nos)) + "\n").encode())
            self.count += len(line_nos)

    def chunks(self) -> Iterator[bytes]:
        """The numbers as COPY text, CHUNK_BYTES at a time (whole lines not guaranteed)."""
        self._file.seek(0)
        while chunk := self._file.read(CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class CopyResult:
    lines: int  # data lines copied (the header excluded)
    file_bytes: int
    sha256: str
    check_lines: FlaggedLines = field(repr=False)  # lines to parse with the full rules


async def copy_file(
    conn: AsyncConn,
    stream: BinaryIO,
    load_id: int,
    *,
    name: str = "input",
    progress: ProgressFn | None = None,
) -> CopyResult:
    """COPY every data line of `stream` into otc_trades_raw under `load_id`.

    Runs inside the caller's transaction. Reading and preparing the next chunk
    (in a thread) overlaps with the server ingesting the previous one. The
    caller closes the result's `check_lines`.
    """
    total = os.fstat(stream.fileno()).st_size
    reader = _Reader(stream, name, load_id)
    try:
        return await _copy(conn, reader, load_id, name=name, total=total, progress=progress)
    except BaseException:
        reader.check_lines.close()
        raise


async def _copy(
    conn: AsyncConn,
    reader: _Reader,
    load_id: int,
    *,
    name: str,
    total: int,
    progress: ProgressFn | None,
) -> CopyResult:
    await asyncio.to_thread(reader.read_header)
    copy_lines = await loads.begin_raw_copy(conn, load_id)
    async with conn.cursor() as cur:
        pending: asyncio.Future[bytes | None] | None = None
        try:
            async with cur.copy(copy_lines) as copy:
                await copy.write(loads.COPY_BINARY_HEADER)
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_payload))
                while (payload := await pending) is not None:
                    pending = asyncio.ensure_future(asyncio.to_thread(reader.next_payload))
                    await copy.write(payload)
                    if progress is not None:
                        await progress(reader.bytes_read, total)
                pending = None
                await copy.write(loads.COPY_BINARY_TRAILER)
        finally:
            if pending is not None:
                with contextlib.suppress(Exception):
                    await pending  # let the reading thread finish before the file closes
        copied = cur.rowcount
    if copied != reader.chunks:
        raise RuntimeError(f"server stored {copied} chunks of {name!r}; {reader.chunks} were sent")
    await loads.attach_raw_lines(conn, load_id)
    return CopyResult(
        lines=reader.lines,
        file_bytes=reader.bytes_read,
        sha256=reader.sha256.hexdigest(),
        check_lines=reader.check_lines,
    )


class _Reader:
    """Turns the file into COPY payloads of whole, sanitized lines; not thread-safe (one call
    at a time). The lines come from `LineChunks.next_lines`; preparing them is OTC's own."""

    def __init__(self, stream: BinaryIO, name: str, load_id: int) -> None:
        self._source = LineChunks(stream, name, max_bytes=None)
        self._name = name
        self._load_id = load_id
        self.sha256 = self._source.sha256  # of every byte read
        self.lines = 0  # data lines sent so far
        self.chunks = 0  # raw chunk rows sent so far
        self.check_lines = FlaggedLines()

    @property
    def bytes_read(self) -> int:
        return self._source.bytes_read

    def read_header(self) -> None:
        header = self._source.first_line()
        if self._source.bytes_read == 0:
            raise InvalidInputFile(f"{self._name!r} is empty; expected the header {HEADER!r}")
        if self._source.first_line_cut:
            raise InvalidInputFile(
                f"{self._name!r}: the first line is over {MAX_LINE_BYTES} bytes; "
                f"expected the header {HEADER!r}"
            )
        header = header.rstrip(b"\r")
        refuse_utf16(header, self._name)
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputFile(
                f"{self._name!r}: the header is not UTF-8 text; expected {HEADER!r}"
            ) from None
        names = tuple(part.strip().strip('"').strip().lower() for part in text.split(","))
        if names != HEADER_FIELDS:
            shown = text if len(text) <= 200 else text[:200] + "..."
            raise InvalidInputFile(
                f"{self._name!r}: wrong header: expected {HEADER!r}, found {shown!r}"
            )

    def next_payload(self) -> bytes | None:
        """The next run of whole lines as one raw chunk row; None at the end of the file."""
        body = self._source.next_lines()
        return None if body is None else self._prepare(body)

    def _prepare(self, body: bytes) -> bytes:
        body = sanitize(body)
        if b"\x02" in body:
            # sanitize quoted `\.` lines for a text COPY (QUOTE 0x02, its only 0x02 left);
            # a binary COPY takes them as they are.
            body = body.replace(b"\x02", b"")
        first = self.lines + 2
        if _PLAIN_LINES.sub(b"", body):
            body = self._flag_lines(body, first)
        count = body.count(b"\n")
        self.lines += count
        self.chunks += 1
        return loads.raw_chunk(self._load_id, first, count, body)

    def _flag_lines(self, body: bytes, first: int) -> bytes:
        """Record which lines of `body` need the full parse; cut over-long ones.

        A slice of FLAG_SLICE_BYTES at a time: a chunk of a million one-byte
        lines would otherwise hold a million line and number objects at once.
        """
        pieces: list[bytes] = []
        cut = False
        start = 0
        while start < len(body):
            end = body.find(b"\n", min(start + FLAG_SLICE_BYTES, len(body) - 1)) + 1
            piece = body[start:end]
            flagged = self._flag_slice(piece, first)
            cut = cut or flagged is not piece
            pieces.append(flagged)
            first += piece.count(b"\n")
            start = end
        return b"".join(pieces) if cut else body

    def _flag_slice(self, body: bytes, first: int) -> bytes:
        lines = body.split(b"\n")
        lines.pop()  # body ends with a newline
        cut = False
        flagged = []
        for index, line in enumerate(lines):
            if _PLAIN.fullmatch(line) is None:
                flagged.append(first + index)
                if len(line) > MAX_LINE_BYTES:
                    lines[index] = line[:MAX_LINE_BYTES].decode("utf-8", "ignore").encode()
                    cut = True
        self.check_lines.add(flagged)
        return b"\n".join(lines) + b"\n" if cut else body
