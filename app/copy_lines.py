"""Whole lines of a text file made safe for a one-column COPY, one raw row per line.

Both data domains load files the same way: every line becomes one raw row, and
bad lines are judged later in SQL instead of failing the file. For that the
COPY uses a delimiter (0x01) and a quote (0x02) that never reach the server, so
PostgreSQL never splits, unquotes or refuses a line. `sanitize` makes that true
with bytes-level operations only (no Python loop over lines):

- CRLF becomes LF;
- bytes that are not UTF-8 text, NUL, a stray CR and the two reserved control
  characters become U+FFFD (the normalizers reject such lines as `invalid_bytes`);
- a line of just `\\.` is quoted so that PostgreSQL < 18 does not take it for
  the end of the data.

`LineChunks` reads a file as runs of such lines, a chunk at a time, so an
ingest's memory is bounded by a chunk whatever the file's size or shape.
`open_headed_file` checks a pipe-delimited file's size and header and
`copy_to_stage` COPYs the lines after it into a domain's staging table: the
way FINRA, Reg SHO and FTD files are read (each domain names its header, limit
and tables).

This module belongs to no domain (every file-ingest domain imports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, LiteralString

from app.db import AsyncConn
from app.files import InvalidInputFile

__all__ = [
    "BOM",
    "CHUNK_BYTES",
    "COPY_OPTIONS",
    "MAX_LINE_BYTES",
    "REPLACEMENT",
    "CopiedFile",
    "LineChunks",
    "OpenedFile",
    "copy_to_stage",
    "cut_long_lines",
    "open_headed_file",
    "refuse_utf16",
    "sanitize",
]

BOM = b"\xef\xbb\xbf"
REPLACEMENT = "\ufffd".encode()
# The COPY options that keep a line whole (one text column per line).
COPY_OPTIONS: LiteralString = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 * 1024
"""A longer line is cut there (no valid row comes near it), so memory stays bounded."""

_RESERVED = (b"\x00", b"\x01", b"\x02")  # NUL cannot be stored; 01/02 are COPY's delimiter/quote
_END_MARKER_LINE = re.compile(rb"(?m)^\\\.$")


def refuse_utf16(head: bytes, name: str) -> None:
    """A file starting with a UTF-16 byte-order mark cannot be read line by line as UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInputFile(f"{name!r} is UTF-16; save it as UTF-8")


def sanitize(body: bytes) -> bytes:
    """`body` (whole lines, each ending with LF) with every line safe for COPY_OPTIONS."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            body = body.replace(b"\r", REPLACEMENT)
    if not body.isascii():
        body = body.decode("utf-8", "replace").encode("utf-8")
    for reserved in _RESERVED:
        if reserved in body:
            body = body.replace(reserved, REPLACEMENT)
    if b"\\." in body:
        body = _END_MARKER_LINE.sub(b"\x02\\\\.\x02", body)
    return body


class LineChunks:
    """A file as runs of whole lines, sanitized, of about CHUNK_BYTES each.

    `first_line()` gives the header; `next_chunk()` the data lines after it,
    each ending with LF (one the last line lacked is added), until None. It
    counts the data lines it gives (`lines`) and hashes and counts every byte
    it reads. Past `max_bytes` (None: no limit) it raises InvalidInputFile. One call at a time:
    callers overlap reading with their COPY by running it in a thread.
    """

    def __init__(self, stream: BinaryIO, name: str, *, max_bytes: int | None) -> None:
        self._stream = stream
        self._name = name
        self._max_bytes = max_bytes
        self._rest = b""  # read but not yet given: the start of a line
        self._skipping = False  # dropping the tail of an over-long line
        self._eof = False
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.lines = 0
        self.first_line_cut = False  # the first line was over MAX_LINE_BYTES, with no newline

    def _read(self) -> bytes:
        data = self._stream.read(CHUNK_BYTES)
        if not data:
            self._eof = True
            return data
        self.bytes_read += len(data)
        if self._max_bytes is not None and self.bytes_read > self._max_bytes:
            raise InvalidInputFile(f"{self._name!r} is over {self._max_bytes // (1024 * 1024)} MiB")
        self.sha256.update(data)
        return data

    def first_line(self) -> bytes:
        """The first line, without a UTF-8 byte-order mark or its line end (b"": empty file)."""
        buffer = b""
        while b"\n" not in buffer and len(buffer) <= MAX_LINE_BYTES and not self._eof:
            buffer += self._read()
        refuse_utf16(buffer, self._name)
        end = buffer.find(b"\n")
        if end < 0:
            line, self._skipping = buffer[:MAX_LINE_BYTES], len(buffer) > MAX_LINE_BYTES
            self.first_line_cut = self._skipping
        else:
            line, self._rest = buffer[:end], buffer[end + 1 :]
        return line.removeprefix(BOM).removesuffix(b"\r")

    def rest_is_blank(self) -> bool:
        """Whether nothing but whitespace follows (reads on until it knows)."""
        data = self._rest
        while not data.strip():
            if self._eof:
                return True
            data = self._read()
        return False

    def next_chunk(self) -> bytes | None:
        """The next run of whole, sanitized lines; None at the end of the file."""
        body = self.next_lines()
        if body is None:
            return None
        body = sanitize(cut_long_lines(body))
        self.lines += body.count(b"\n")
        return body

    def next_lines(self) -> bytes | None:
        """The next run of whole lines as read, each ending with LF; None at the end.

        Not sanitized, and only a line longer than what is held is cut (at
        MAX_LINE_BYTES, its rest skipped): for a caller that prepares lines its own
        way (app.otc.connector); `next_chunk` is this, made safe for COPY.
        """
        while True:
            if self._eof and not self._rest:
                return None
            data = self._rest + (b"" if self._eof else self._read())
            self._rest = b""
            if self._skipping:
                end = data.find(b"\n")
                if end < 0:
                    continue  # still inside the over-long line: drop it
                data = data[end + 1 :]
                self._skipping = False
            cut = data.rfind(b"\n")
            body, rest = data[: cut + 1], data[cut + 1 :]
            if self._eof and rest:
                body, rest = data + b"\n", b""  # the last line had no newline
            elif len(rest) > MAX_LINE_BYTES:
                body += rest[:MAX_LINE_BYTES] + b"\n"
                rest = b""
                self._skipping = True
            self._rest = rest
            if body:
                return body


def cut_long_lines(body: bytes) -> bytes:
    """`body` (whole lines) with every line longer than MAX_LINE_BYTES cut there.

    Linear in the size whatever the lines: a line that long contains a whole
    window of half that size with no newline, and only such windows are looked at.
    """
    half = MAX_LINE_BYTES // 2
    i = 0
    while i + half <= len(body):
        if body.find(b"\n", i, i + half) >= 0:
            i += half
            continue
        start = body.rfind(b"\n", 0, i) + 1
        end = body.find(b"\n", i)
        end = len(body) if end < 0 else end
        if end - start > MAX_LINE_BYTES:
            body = body[: start + MAX_LINE_BYTES] + body[end:]
            end = start + MAX_LINE_BYTES
        i = end + 1
    return body


@dataclass(frozen=True)
class OpenedFile:
    """A file whose header was checked, the lines after it not yet read."""

    lines: LineChunks
    file_bytes: int  # the size when opened


@dataclass(frozen=True)
class CopiedFile:
    lines: int  # lines after the header
    file_bytes: int
    sha256: str


def open_headed_file(
    stream: BinaryIO,
    name: str,
    *,
    header_fields: tuple[str, ...],
    max_bytes: int,
    fold: Callable[[str], str] = str.lower,
    utf8_header: bool = True,
) -> OpenedFile:
    """Check a pipe-delimited file's size and header; the lines after it are read later.

    The header's names are compared after `fold` (case is not the publisher's
    contract); `utf8_header` refuses a header that is not UTF-8 with its own message
    (else it is only a wrong header). What makes a file unloadable raises
    InvalidInputFile with a message for people.
    """
    header = "|".join(header_fields)
    size = os.fstat(stream.fileno()).st_size
    if size > max_bytes:
        raise InvalidInputFile(f"{name!r} is over {max_bytes // (1024 * 1024)} MiB")
    lines = LineChunks(stream, name, max_bytes=max_bytes)
    first = lines.first_line()
    if not first.strip() and lines.rest_is_blank():
        raise InvalidInputFile(f"{name!r} is empty; expected the header {header!r}")
    if utf8_header:
        try:
            text = first.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputFile(
                f"{name!r}: the header is not UTF-8 text; expected {header!r}"
            ) from None
    else:
        text = first.decode("utf-8", "replace")
    if tuple(fold(part.strip()) for part in text.split("|")) != tuple(map(fold, header_fields)):
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise InvalidInputFile(f"{name!r}: wrong header: expected {header!r}, found {shown!r}")
    return OpenedFile(lines=lines, file_bytes=size)


async def copy_to_stage(
    conn: AsyncConn,
    opened: OpenedFile,
    name: str,
    *,
    create_stage: LiteralString,
    copy_stage: LiteralString,
) -> CopiedFile:
    """COPY the lines after the header with `copy_stage` (COPY_OPTIONS) into the table
    `create_stage` makes, in the caller's transaction.

    Reading the next chunk (in a thread) overlaps with the COPY of the last. A file
    that changed while it was read is refused (InvalidInputFile).
    """
    reader = opened.lines
    await conn.execute(create_stage)
    async with conn.cursor() as cur:
        pending: asyncio.Future[bytes | None] | None = None
        try:
            async with cur.copy(copy_stage) as copy:
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
