"""LineChunks: a file as chunks of whole sanitized lines, the same lines as reading it whole."""

from __future__ import annotations

import io
import random

import pytest

from app.copy_lines import (
    BOM,
    CHUNK_BYTES,
    MAX_LINE_BYTES,
    LineChunks,
    cut_long_lines,
    sanitize,
)
from app.files import InvalidInputFile


def _read_all(data: bytes, max_bytes: int = 1 << 30) -> tuple[bytes, bytes, LineChunks]:
    reader = LineChunks(io.BytesIO(data), "f.txt", max_bytes=max_bytes)
    header = reader.first_line()
    chunks = []
    while (chunk := reader.next_chunk()) is not None:
        assert chunk.endswith(b"\n")
        chunks.append(chunk)
    return header, b"".join(chunks), reader


def test_chunks_hold_exactly_the_lines_of_the_whole_file() -> None:
    rng = random.Random(31)
    pieces = [b"h|e|a|d\r\n"]
    for _ in range(80_000):  # several chunks, CRLF and odd bytes across their edges
        pieces.append(
            bytes(rng.choice(b"ab|\xc3\xa9\xff\r\x00 ") for _ in range(rng.randrange(60)))
        )
        pieces.append(rng.choice([b"\n", b"\r\n"]))
    data = b"".join(pieces)
    assert len(data) > 2 * CHUNK_BYTES
    header, body, reader = _read_all(data)
    whole_body = data.partition(b"\n")[2]
    assert header == b"h|e|a|d"
    assert body == sanitize(whole_body)
    assert reader.lines == body.count(b"\n") == 80_000
    assert reader.bytes_read == len(data)


def test_a_bom_goes_and_a_last_line_without_newline_gets_one() -> None:
    header, body, reader = _read_all(BOM + b"h\r\nx\ny")
    assert (header, body, reader.lines) == (b"h", b"x\ny\n", 2)


def test_a_line_too_long_is_cut_and_the_next_kept() -> None:
    long_line = b"z" * (3 * CHUNK_BYTES)  # longer than a chunk: never held whole
    _, body, reader = _read_all(b"h\na\n" + long_line + b"\nb\n")
    assert body == b"a\n" + b"z" * MAX_LINE_BYTES + b"\nb\n"
    assert reader.lines == 3


def test_a_header_too_long_is_cut() -> None:
    header, body, _ = _read_all(b"h" * (2 * CHUNK_BYTES) + b"\nx\n")
    assert header == b"h" * MAX_LINE_BYTES and body == b"x\n"


@pytest.mark.parametrize("length", [MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1])
def test_cut_long_lines_at_the_edge(length: int) -> None:
    body = b"a\n" + b"q" * length + b"\nb\n"
    expected = b"a\n" + b"q" * min(length, MAX_LINE_BYTES) + b"\nb\n"
    assert cut_long_lines(body) == expected


def test_cut_long_lines_finds_every_long_line() -> None:
    body = (b"s\n" * 40_000 + b"L" * 200_000 + b"\n") * 3
    assert cut_long_lines(body) == (b"s\n" * 40_000 + b"L" * MAX_LINE_BYTES + b"\n") * 3


def test_more_than_max_bytes_is_refused_while_reading() -> None:
    with pytest.raises(InvalidInputFile, match="over 1 MiB"):
        _read_all(b"h\n" + b"line\n" * CHUNK_BYTES, max_bytes=CHUNK_BYTES)


@pytest.mark.parametrize(("data", "blank"), [(b"", True), (b" \n\n \r\n", True), (b"\n\nx", False)])
def test_rest_is_blank(data: bytes, blank: bool) -> None:
    reader = LineChunks(io.BytesIO(data), "f.txt", max_bytes=1 << 20)
    assert reader.first_line().strip() == b""
    assert reader.rest_is_blank() is blank


def test_utf16_is_refused() -> None:
    with pytest.raises(InvalidInputFile, match="UTF-16"):
        _read_all(b"\xff\xfeh\x00\n\x00")
