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

This module belongs to no domain (app.otc and app.finra both import it).
"""

from __future__ import annotations

import re
from typing import LiteralString

from app.files import InvalidInputFile

__all__ = ["BOM", "COPY_OPTIONS", "REPLACEMENT", "refuse_utf16", "sanitize"]

BOM = b"\xef\xbb\xbf"
REPLACEMENT = "\ufffd".encode()
# The COPY options that keep a line whole (one text column per line).
COPY_OPTIONS: LiteralString = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"

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
