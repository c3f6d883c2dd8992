"""Malformed input files: each fails with a clear message or loads what is valid and rejects
the rest with reasons. Never a hang, never a lost line: rows_read = inserted + duplicates +
corrections + rejected, and every line is in otc_trades_raw under its own number."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import db
from app.config import get_settings
from app.otc.connector import MAX_LINE_BYTES, InvalidInputFile
from app.otc.pipelines import ingest_file

Conn = psycopg.Connection[dict[str, Any]]
HEADER = b"trade_id,symbol,executed_at,price,size,side,venue\n"
GOOD = b"T%d,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN"


class Files:
    def __init__(self, runner: asyncio.Runner, pool: db.AsyncPool, tmp: Path) -> None:
        self.runner, self.pool, self.tmp = runner, pool, tmp
        self._ids = itertools.count(1)

    def ingest(self, data: bytes) -> dict[str, Any]:
        n = next(self._ids)
        path = self.tmp / f"f{n}.csv"
        path.write_bytes(data)
        return self.runner.run(
            ingest_file(
                self.pool,
                execution_id=f"file-{n}",
                path=path,
                source_file=path.name,
                market_tz="America/New_York",
            )
        )


@pytest.fixture
def files(database_url: str, tmp_path: Path) -> Iterator[Files]:
    with asyncio.Runner() as runner:
        pool = runner.run(db.open_async_pool(database_url, get_settings()))
        try:
            yield Files(runner, pool, tmp_path)
        finally:
            runner.run(pool.close())


def good(*numbers: int) -> bytes:
    return b"".join(GOOD % n + b"\n" for n in numbers)


def check(conn: Conn, summary: dict[str, Any]) -> dict[int, str]:
    """The invariants of any load; returns its rejects as {line_no: reason}."""
    parts = ("inserted", "duplicates", "corrections", "rejected")
    assert summary["rows_read"] == sum(summary[p] for p in parts), summary
    raw = conn.execute(
        "SELECT count(*) AS n, coalesce(min(line_no), 2) AS first, coalesce(max(line_no), 1)"
        " AS last FROM otc_trades_raw WHERE load_id = %s",
        (summary["load_id"],),
    ).fetchone()
    assert raw == {"n": summary["rows_read"], "first": 2, "last": summary["rows_read"] + 1}
    rejects = conn.execute(
        "SELECT line_no, reason FROM otc_trades_rejects WHERE load_id = %s",
        (summary["load_id"],),
    ).fetchall()
    assert len(rejects) == summary["rejected"]
    return {row["line_no"]: row["reason"] for row in rejects}


def raw_line(conn: Conn, summary: dict[str, Any], line_no: int) -> str | None:
    row = conn.execute(
        "SELECT line FROM otc_trades_raw WHERE load_id = %s AND line_no = %s",
        (summary["load_id"], line_no),
    ).fetchone()
    assert row is not None
    return row["line"]  # type: ignore[no-any-return]


# --- files that cannot be loaded at all ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"id,sym,when,price,qty,side,mpid\n" + good(1), "wrong header"),
        (good(1, 2), "wrong header"),  # no header line
        (b"trade_id,symbol,executed_at,price,size,side\n", "wrong header"),
        (b"trade_id;symbol;executed_at;price;size;side;venue\n", "wrong header"),
        ("trade_id,symbol\n".encode("utf-16"), "UTF-16"),
        (b"trade_id,symbol,\xff\n", "not UTF-8"),
        (b"x" * (MAX_LINE_BYTES + 10), "first line is over"),
        (b"\x00\x01\x02\x03", "wrong header"),
    ],
)
def test_unloadable_files_fail_clearly(files: Files, conn: Conn, data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputFile, match=message):
        files.ingest(data)
    assert conn.execute("SELECT count(*) AS n FROM otc_loads").fetchone() == {"n": 0}


def test_header_only_loads_nothing(files: Files, conn: Conn) -> None:
    summary = files.ingest(HEADER)
    assert summary["rows_read"] == 0
    check(conn, summary)


@pytest.mark.parametrize(
    "header",
    [
        b"\xef\xbb\xbftrade_id,symbol,executed_at,price,size,side,venue\r\n",
        b'"trade_id","symbol","executed_at","price","size","side","venue"\n',
        b" TRADE_ID , Symbol ,executed_at,price,size,side,venue\n",
    ],
)
def test_header_variants(files: Files, conn: Conn, header: bytes) -> None:
    summary = files.ingest(header + good(1, 2))
    assert summary["inserted"] == 2
    check(conn, summary)


# --- files with bad lines -------------------------------------------------------------------


def test_crlf_and_no_final_newline(files: Files, conn: Conn) -> None:
    data = HEADER.replace(b"\n", b"\r\n") + good(1, 2).replace(b"\n", b"\r\n") + GOOD % 3
    summary = files.ingest(data)
    assert summary["inserted"] == 3
    check(conn, summary)
    assert raw_line(conn, summary, 2) == (GOOD % 1).decode()
    assert raw_line(conn, summary, 4) == (GOOD % 3).decode()


def test_bytes_that_are_not_text(files: Files, conn: Conn) -> None:
    lines = [
        GOOD % 1,
        b"T2,AC\xffME,2026-01-05T15:00:00Z,10.5,100,B,OTCN",  # not UTF-8
        b"T3,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN\x00",  # NUL
        b"T4,ACME,2026-01-05T15:00:00Z,10.5\x01,100,B,OTCN",  # COPY's reserved delimiter
        b"T5,\x02ACME\x02,2026-01-05T15:00:00Z,10.5,100,B,OTCN",  # ... and quote
        b"T6,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN\rT7,ACME",  # a stray CR
        "T8,ACMÉ,2026-01-05T15:00:00Z,10.5,100,B,OTCN".encode(),  # UTF-8, but a bad symbol
        "T9,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN".encode("utf-16-le"),
        GOOD % 10,
    ]
    summary = files.ingest(HEADER + b"\n".join(lines) + b"\n")
    rejects = check(conn, summary)
    assert summary["inserted"] == 2
    assert rejects == {
        3: "invalid_bytes",
        4: "invalid_bytes",
        5: "invalid_bytes",
        6: "invalid_bytes",
        7: "invalid_bytes",
        8: "bad_symbol",
        9: "invalid_bytes",
    }
    assert raw_line(conn, summary, 3) == "T2,AC\ufffdME,2026-01-05T15:00:00Z,10.5,100,B,OTCN"
    assert raw_line(conn, summary, 9) is not None


def test_copy_end_marker_line_does_not_end_the_file(files: Files, conn: Conn) -> None:
    # PostgreSQL before 18 stops a CSV COPY at a line holding only \. unless it is quoted.
    data = HEADER + good(1) + b"\\.\n" + good(2) + b"\\.\n\\.\n" + good(3) + b"\\."
    summary = files.ingest(data)
    rejects = check(conn, summary)
    assert summary["inserted"] == 3
    assert rejects == {3: "wrong_column_count", 5: "wrong_column_count",
                       6: "wrong_column_count", 8: "wrong_column_count"}  # fmt: skip
    assert raw_line(conn, summary, 5) == "\\."


def test_huge_lines_are_cut_and_rejected(files: Files, conn: Conn) -> None:
    huge = b"T2,ACME," + b"9" * (3 << 20) + b",10.5,100,B,OTCN"
    data = HEADER + good(1) + huge + b"\n" + good(3) + b"x" * (200 * 1024) + b"\n" + good(5)
    data += b"T6," + b"\xe2\x82\xac" * 50_000  # multi-byte characters, no final newline
    summary = files.ingest(data)
    rejects = check(conn, summary)
    assert rejects == {3: "line_too_long", 5: "line_too_long", 7: "line_too_long"}
    assert summary["inserted"] == 3
    for line_no in (3, 5, 7):
        text = raw_line(conn, summary, line_no)
        assert text is not None and len(text.encode()) <= MAX_LINE_BYTES


def test_columns_quotes_and_blank_lines(files: Files, conn: Conn) -> None:
    lines = [
        b'"T1","ACME","2026-01-05T15:00:00Z","10.5","100","B","OTCN"',  # all quoted
        b'"T,2",ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN',  # a quoted comma
        b'"T3,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN',  # unbalanced quote
        b"T4,ACME,2026-01-05T15:00:00Z,10,5,100,B,OTCN",  # an unquoted comma: 8 fields
        b"T5,ACME,2026-01-05T15:00:00Z,10.5,100,B",  # 6 fields
        b"",
        b"   ",
        b"T8,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN,",  # trailing comma
        b'"T9\nACME",2026-01-05T15:00:00Z,10.5,100,B,OTCN',  # a quoted newline: two lines
        GOOD % 10,
    ]
    summary = files.ingest(HEADER + b"\n".join(lines) + b"\n")
    rejects = check(conn, summary)
    assert rejects == {
        4: "malformed_csv",
        5: "wrong_column_count",
        6: "wrong_column_count",
        7: "blank_line",
        8: "blank_line",
        9: "wrong_column_count",
        10: "malformed_csv",
        11: "malformed_csv",
    }
    ids = {r["trade_id"] for r in conn.execute("SELECT trade_id FROM otc_trades").fetchall()}
    assert ids == {"T1", "T,2", "T10"}


def test_a_fifo_is_refused_without_hanging(files: Files, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    from app.otc.connector import open_input, resolve_input_path

    with pytest.raises(InvalidInputFile, match="not a regular file"):
        resolve_input_path(tmp_path, "pipe.csv")
    with pytest.raises(InvalidInputFile, match="not a regular file"):
        open_input(fifo)


# --- generated malformed input -------------------------------------------------------------

_junk = st.sampled_from(
    [b",", b'"', b'""', b"\r", b"\r\n", b"\n", b"\x00", b"\x01", b"\x02", b"\xff", b"\xc3",
     b"\xef\xbb\xbf", b"\\.", b"\\", b" ", b"\t", "é".encode(), b"x" * 70_000, b"ACME", b"-1",
     b"2026-01-05T15:00:00Z", b"B", b"OTCN"]
)  # fmt: skip
_lines = st.lists(
    st.one_of(
        st.integers(1, 50).map(lambda n: GOOD % n),
        st.lists(_junk, max_size=8).map(b"".join),
        st.binary(max_size=80),
        st.tuples(st.integers(1, 50), st.integers(0, 40), _junk).map(
            lambda t: (GOOD % t[0])[: t[1]] + t[2] + (GOOD % t[0])[t[1] :]
        ),
    ),
    max_size=30,
)
_ids = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=_lines, ending=st.sampled_from([b"\n", b"\r\n", b""]))
def test_generated_malformed_lines(
    files: Files, conn: Conn, lines: list[bytes], ending: bytes
) -> None:
    data = HEADER + b"\n".join(lines) + ending
    summary = files.ingest(data)
    check(conn, summary)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(HEADER.__add__)))
def test_random_bytes(files: Files, conn: Conn, data: bytes) -> None:
    error = summary = None
    try:
        summary = files.ingest(data)
    except InvalidInputFile as exc:
        error = str(exc)
    if summary is None:
        assert error  # a message for people
    else:
        check(conn, summary)


# --- raw lines in chunks (migration 014) -----------------------------------------------


def test_raw_lines_keep_their_numbers_and_text_across_many_chunks(
    files: Files, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.copy_lines.CHUNK_BYTES", 64)  # a chunk every line or two
    monkeypatch.setattr("app.otc.connector.CHUNK_BYTES", 64)  # the flagged lines' reads too
    odd = [b"", b"\\.", b"a\tb\\c", b"  ", b"caf\xc3\xa9", b"bad \xff byte", b'"q,"",x"']
    lines = [GOOD % n for n in range(1, 40)]
    for i, line in enumerate(odd):
        lines.insert(3 + 5 * i, line)
    summary = files.ingest(HEADER + b"\r\n".join(lines) + b"\r\n")
    check(conn, summary)
    chunks = conn.execute(
        "SELECT count(*) AS n, sum(line_count) AS lines FROM otc_raw_chunks WHERE load_id = %s",
        (summary["load_id"],),
    ).fetchone()
    assert chunks is not None and chunks["n"] > 10 and chunks["lines"] == len(lines)
    stored = conn.execute(
        "SELECT line_no, line FROM otc_trades_raw WHERE load_id = %s ORDER BY line_no",
        (summary["load_id"],),
    ).fetchall()
    expected = [line.decode("utf-8", "replace") or None for line in lines]
    assert [r["line_no"] for r in stored] == list(range(2, len(lines) + 2))
    assert [r["line"] for r in stored] == expected
    assert summary["inserted"] == 39
