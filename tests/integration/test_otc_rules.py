"""The line rules: each reject reason, normalization, and the connector's fast path agreeing
with the full rules (otc_parse_line) on generated lines."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import db
from app.config import get_settings
from app.otc import connector as otc_connector
from app.otc.pipelines import ingest_file

Conn = psycopg.Connection[dict[str, Any]]
VALID = ["T1", "ACME", "2026-01-05T15:00:00Z", "10.5", "100", "B", "OTCN"]


def line_with(index: int, value: str) -> str:
    fields = list(VALID)
    fields[index] = value
    return ",".join(fields)


REJECTS = [
    ("", "blank_line"),
    (" \t ", "blank_line"),
    (line_with(0, "T" * 5000), "line_too_long"),
    (line_with(1, "AC\ufffdME"), "invalid_bytes"),
    ('"T1,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN', "malformed_csv"),
    ('T"1",ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN', "malformed_csv"),
    ('"T1"x,ACME,2026-01-05T15:00:00Z,10.5,100,B,OTCN', "malformed_csv"),
    ("T1,ACME,2026-01-05T15:00:00Z,10.5,100,B", "wrong_column_count"),
    (",".join([*VALID, "extra"]), "wrong_column_count"),
    ("\\.", "wrong_column_count"),
    (line_with(0, ""), "missing_trade_id"),
    (line_with(0, "   "), "missing_trade_id"),
    (line_with(0, "T" * 65), "bad_trade_id"),
    (line_with(0, "T\x071"), "bad_trade_id"),
    (line_with(1, ""), "missing_symbol"),
    (line_with(1, "acme"), "bad_symbol"),
    (line_with(1, "ABCDEFGHIJKLM"), "bad_symbol"),
    (line_with(1, "AC ME"), "bad_symbol"),
    (line_with(1, "ACME!"), "bad_symbol"),
    (line_with(2, ""), "missing_executed_at"),
    (line_with(2, "2026-01-05T15:00:00"), "executed_at_without_offset"),
    (line_with(2, "2026-01-05 15:00"), "executed_at_without_offset"),
    (line_with(2, "2026-01-05"), "executed_at_without_offset"),
    (line_with(2, "2026-02-30T10:00:00Z"), "bad_executed_at"),
    (line_with(2, "2025-02-29T10:00:00Z"), "bad_executed_at"),
    (line_with(2, "2026-01-05T24:00:00Z"), "bad_executed_at"),
    (line_with(2, "2026-01-05T23:60:00Z"), "bad_executed_at"),
    (line_with(2, "2026-01-05T23:59:60Z"), "bad_executed_at"),
    (line_with(2, "2026-13-01T10:00:00Z"), "bad_executed_at"),
    (line_with(2, "2026-01-05T10:00:00+15:00"), "bad_executed_at"),
    (line_with(2, "0000-01-01T00:00:00Z"), "bad_executed_at"),
    (line_with(2, "1899-12-31T12:00:00Z"), "bad_executed_at"),
    (line_with(2, "yesterday"), "bad_executed_at"),
    (line_with(2, "1736089200"), "bad_executed_at"),
    (line_with(3, ""), "missing_price"),
    (line_with(3, "abc"), "bad_price"),
    (line_with(3, "1e3"), "bad_price"),
    (line_with(3, ".5"), "bad_price"),
    (line_with(3, "5."), "bad_price"),
    (line_with(3, "$5"), "bad_price"),
    (line_with(3, "NaN"), "bad_price"),
    (line_with(3, "1000000000000"), "bad_price"),
    (line_with(3, "1.1234567"), "price_too_precise"),
    (line_with(3, "1.2500000"), "price_too_precise"),
    (line_with(3, "0"), "non_positive_price"),
    (line_with(3, "0.000000"), "non_positive_price"),
    (line_with(3, "-1.25"), "non_positive_price"),
    (line_with(4, ""), "missing_size"),
    (line_with(4, "1.5"), "bad_size"),
    (line_with(4, "100.0"), "bad_size"),
    (line_with(4, "1e3"), "bad_size"),
    (line_with(4, "9223372036854775808"), "bad_size"),
    (line_with(4, "0"), "non_positive_size"),
    (line_with(4, "-100"), "non_positive_size"),
    (line_with(5, ""), "missing_side"),
    (line_with(5, "X"), "bad_side"),
    (line_with(5, "BUYS"), "bad_side"),
    (line_with(5, "1"), "bad_side"),
    (line_with(6, ""), "missing_venue"),
    (line_with(6, "otcn"), "bad_venue"),
    (line_with(6, "OTC"), "bad_venue"),
    (line_with(6, "OTCNX"), "bad_venue"),
    (line_with(6, "OTC1"), "bad_venue"),
    # The first broken rule wins, in file order.
    ("T1,acme,2026-01-05,abc,0,X,otc", "bad_symbol"),
]


@pytest.mark.parametrize(("line", "reason"), REJECTS)
def test_each_reject_reason(conn: Conn, line: str, reason: str) -> None:
    row = conn.execute("SELECT * FROM otc_parse_line(%s)", (line,)).fetchone()
    assert row is not None
    assert row["reason"] == reason
    assert row["trade_id"] is None and row["price"] is None
    assert not otc_connector.is_plain_line(line.encode())


OK = ("T1", "ACME", "10.5", 100, "B", "OTCN")
ACCEPTED = [
    (",".join(VALID), ("T1", "ACME", "10.5", 100, "B", "OTCN")),
    (line_with(5, "buy"), ("T1", "ACME", "10.5", 100, "B", "OTCN")),
    (line_with(5, " Sell "), ("T1", "ACME", "10.5", 100, "S", "OTCN")),
    (line_with(5, "s"), ("T1", "ACME", "10.5", 100, "S", "OTCN")),
    (" T1 , ACME ,2026-01-05T15:00:00Z, 10.5 ,\t100,B, OTCN ", OK),
    (line_with(3, "+0010.500000"), ("T1", "ACME", "10.5", 100, "B", "OTCN")),
    (line_with(3, "999999999999.999999"), ("T1", "ACME", "999999999999.999999", 100, "B", "OTCN")),
    (line_with(4, "+0000100"), ("T1", "ACME", "10.5", 100, "B", "OTCN")),
    (line_with(4, "9223372036854775807"), ("T1", "ACME", "10.5", 2**63 - 1, "B", "OTCN")),
    ('"T,1","ACME","2026-01-05T15:00:00Z","10.5","100","B","OTCN"', ("T,1", *OK[1:])),
    ('"say ""hi""",BRK.A,2026-01-05T15:00:00Z,10.5,100,B,OTCN', ('say "hi"', "BRK.A", *OK[2:])),
    (line_with(1, "X-1.Y"), ("T1", "X-1.Y", "10.5", 100, "B", "OTCN")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), ACCEPTED)
def test_accepted_and_normalized(conn: Conn, line: str, expected: tuple[Any, ...]) -> None:
    row = conn.execute("SELECT * FROM otc_parse_line(%s)", (line,)).fetchone()
    assert row is not None
    assert row["reason"] is None
    got = (row["trade_id"], row["symbol"], row["price"], row["size"], row["side"], row["venue"])
    assert got == (expected[0], expected[1], Decimal(expected[2]), *expected[3:])
    assert row["executed_at"] == datetime(2026, 1, 5, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-01-05T10:00:00-05:00", datetime(2026, 1, 5, 15, tzinfo=UTC)),
        ("2026-01-05T20:30:00+0530", datetime(2026, 1, 5, 15, tzinfo=UTC)),
        ("2026-01-05T16:00+01", datetime(2026, 1, 5, 15, tzinfo=UTC)),
        ("2026-01-05t15:00:00.1234567z", datetime(2026, 1, 5, 15, 0, 0, 123457, tzinfo=UTC)),
        ("2024-02-29T15:00:00Z", datetime(2024, 2, 29, 15, tzinfo=UTC)),
        ("2000-02-29T15:00:00Z", datetime(2000, 2, 29, 15, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(conn: Conn, text: str, utc: datetime) -> None:
    row = conn.execute("SELECT * FROM otc_parse_line(%s)", (line_with(2, text),)).fetchone()
    assert row is not None
    assert row["reason"] is None
    assert row["executed_at"] == utc


# --- the fast path agrees with the full rules ----------------------------------------


def _timestamp(years: list[int], months: st.SearchStrategy[int], days: st.SearchStrategy[int],
               hours: st.SearchStrategy[int], minutes: st.SearchStrategy[int],
               seconds: list[str], fractions: list[str], separators: list[str],
               offsets: list[str]) -> st.SearchStrategy[str]:  # fmt: skip
    return st.builds(
        lambda y, mo, d, h, mi, s, f, sep, off: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}"
        f"{s}{f}{off}",
        st.sampled_from(years), months, days, hours, minutes, st.sampled_from(seconds),
        st.sampled_from(fractions), st.sampled_from(separators), st.sampled_from(offsets),
    )  # fmt: skip


# Per field (symbol .. venue): values the contract accepts, and odd ones around its edges.
_VALID_FIELDS = (
    st.sampled_from(["ACME", "A", "BRK.A", "X-1", "ABCDEFGHIJKL"]),
    _timestamp(
        [1900, 2000, 2026, 2999], st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
        st.integers(0, 59), ["", ":00", ":59"], ["", ".1", ".123456"], ["T", " "],
        ["Z", "+00:00", "-05:00", "+0530", "+14:59", "-14:00"],
    ),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1e6"), places=6).map(str),
    st.integers(1, 10**18).map(str),
    st.sampled_from(["B", "S", "b", "s", "buy", "SELL", "Sell"]),
    st.sampled_from(["OTCN", "ARCA", "PPEX"]),
)  # fmt: skip
_ODD_FIELDS = (
    st.sampled_from(["ABCDEFGHIJKLM", "acme", " ACME", "AC ME", "", '"ACME"', "AC\u00c9"]),
    _timestamp(
        [1899, 1900, 2024, 2025, 2026, 2999, 3000], st.integers(0, 13), st.integers(0, 32),
        st.integers(0, 24), st.integers(0, 60), ["", ":00", ":60", ":5"],
        ["", ".1234567", "."], ["T", " ", "t", "_"],
        ["Z", "z", "", "+05", "+15:00", "-1", " Z", "+05:60"],
    ),
    st.one_of(
        st.decimals(min_value=Decimal("-1"), max_value=Decimal("1e13"), places=7).map(str),
        st.sampled_from(["", "0", "0.000", "1e3", ".5", "5.", "+1.5", "007.25", " 2.5", "-0"]),
    ),
    st.one_of(
        st.integers(-5, 10**19).map(str),
        st.sampled_from(["", "1.0", "+5", "007", "1e2", " 9", "0"]),
    ),
    st.sampled_from(["x", "", " B", "BS", "BUYS"]),
    st.sampled_from(["otcn", "OTC", "OTCNN", "", " OTCN", "OT-N", "Otcn"]),
)  # fmt: skip


@st.composite
def _row(draw: st.DrawFn) -> tuple[str, ...]:
    """A valid row with, most of the time, one field replaced by an odd value."""
    fields = [draw(strategy) for strategy in _VALID_FIELDS]
    odd = draw(st.integers(-1, len(fields) - 1))
    if odd >= 0:
        fields[odd] = draw(_ODD_FIELDS[odd])
    return tuple(fields)


_rows = st.lists(_row(), min_size=1, max_size=40)

_never = re.compile(rb"(?!)")
_example = itertools.count()


@pytest.fixture
def runner(database_url: str) -> Iterator[tuple[asyncio.Runner, db.AsyncPool]]:
    with asyncio.Runner() as loop:
        pool = loop.run(db.open_async_pool(database_url, get_settings()))
        try:
            yield loop, pool
        finally:
            loop.run(pool.close())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_rows)
def test_fast_path_agrees_with_full_rules(
    runner: tuple[asyncio.Runner, db.AsyncPool],
    conn: Conn,
    tmp_path: Path,
    rows: list[tuple[str, ...]],
) -> None:
    loop, pool = runner
    n = next(_example)

    def load(prefix: str, *, fast: bool) -> dict[str, Any]:
        path = tmp_path / f"{prefix}.csv"
        body = "".join(f"{prefix}-{i}," + ",".join(row) + "\n" for i, row in enumerate(rows))
        path.write_text("trade_id,symbol,executed_at,price,size,side,venue\n" + body)
        patches = (
            []
            if fast
            else [
                mock.patch.object(otc_connector, "_PLAIN_LINES", _never),
                mock.patch.object(otc_connector, "_PLAIN", _never),
            ]
        )
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            return loop.run(
                ingest_file(
                    pool,
                    execution_id=f"{prefix}",
                    path=path,
                    source_file=path.name,
                    market_tz="America/New_York",
                )
            )

    fast = load(f"F{n}", fast=True)
    full = load(f"S{n}", fast=False)
    for key in ("rows_read", "inserted", "rejected", "rejects_by_reason"):
        assert fast[key] == full[key], key

    def outcome(prefix: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        trades = conn.execute(
            "SELECT substr(trade_id, strpos(trade_id, '-') + 1) AS i, symbol, executed_at,"
            " trade_date, price, size, side, venue FROM otc_trades WHERE trade_id LIKE %s"
            " ORDER BY 1",
            (f"{prefix}-%",),
        ).fetchall()
        rejects = conn.execute(
            "SELECT j.line_no, j.reason FROM otc_trades_rejects j JOIN otc_loads l"
            " ON l.id = j.load_id WHERE l.execution_id = %s ORDER BY 1",
            (prefix,),
        ).fetchall()
        return [tuple(r.values()) for r in trades], [tuple(r.values()) for r in rejects]

    assert outcome(f"F{n}") == outcome(f"S{n}")
