"""finra_weekly_ingest reads its file a chunk at a time: what is refused, what a load records."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.copy_lines import CHUNK_BYTES, MAX_LINE_BYTES
from app.files import InvalidInputFile
from app.finra.connector import HEADER, MAX_FILE_BYTES
from tests.finra_support import WEEK_FILES, Loader, data_lines, open_loader

Conn = psycopg.Connection[dict[str, Any]]
WEEK = date(2025, 12, 15)


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    yield from open_loader(database_url, tmp_path)


def _nothing_stored(conn: Conn) -> bool:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM finra_loads) + (SELECT count(*) FROM finra_weekly_raw) AS n"
    ).fetchone()
    return row == {"n": 0}


def test_a_file_over_the_cap_is_refused_before_anything_is_read(
    loader: Loader, conn: Conn, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.write(HEADER.encode() + b"\n")
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk, no time
    with pytest.raises(InvalidInputFile, match="over 256 MiB"):
        loader.ingest(big)
    assert _nothing_stored(conn)


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\n"])
def test_an_empty_file_is_refused(
    loader: Loader, conn: Conn, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(InvalidInputFile, match="is empty"):
        loader.ingest(path)
    assert _nothing_stored(conn)


def test_a_header_alone_loads_nothing(loader: Loader) -> None:
    path = loader.write("header.txt", [])
    summary = loader.ingest(path, week=WEEK)
    assert summary["rows_read"] == 0 and summary["inserted"] == 0


def test_a_file_of_many_chunks_loads_every_line_in_order(
    loader: Loader, conn: Conn, tmp_path: Path
) -> None:
    """A real week repeated past several chunks, one over-long line among them: the
    repeats are duplicate keys, the long line is cut and rejected, the checksum is the file's."""
    lines = data_lines(WEEK_FILES[WEEK])
    copies = 3 * CHUNK_BYTES // sum(len(line) + 1 for line in lines) + 1
    body = lines * copies
    body.insert(len(lines) + 1, "OTC|LONG|" + "x" * (2 * MAX_LINE_BYTES))
    path = tmp_path / "many.txt"
    path.write_bytes("".join(f"{line}\n" for line in (HEADER, *body)).encode())
    summary = loader.ingest(path)
    assert summary["rows_read"] == len(body)
    assert summary["inserted"] == len(lines) - summary["rejects_by_reason"].get("empty_symbol", 0)
    assert summary["rejects_by_reason"]["wrong_column_count"] == 1
    assert summary["file_bytes"] == path.stat().st_size
    assert summary["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    stored = conn.execute(
        "SELECT line_no, length(line) AS n FROM finra_weekly_raw ORDER BY line_no"
    ).fetchall()
    assert [r["line_no"] for r in stored] == list(range(2, len(body) + 2))
    assert stored[len(lines) + 1]["n"] == MAX_LINE_BYTES  # the long line, cut
