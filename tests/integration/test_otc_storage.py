"""otc_trades' leaner storage (migration 015): existing trades carried over unchanged, and
keyset pages in (trade_date, executed_at, trade_id) order with an index that lacks trade_id."""

from __future__ import annotations

import asyncio
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.migrations import apply_pending, migrations_dir
from app.otc import reads

Conn = psycopg.Connection[dict[str, Any]]
COLUMNS = "trade_id, symbol, executed_at, trade_date, price, size, side, venue, load_id, line_no"
TRADES = (
    ("T2", "ACME", "2026-01-05T15:00:00Z", "2026-01-05", "10.500000", 100, "B", "OTCN", 1, 3),
    ("T1", "ACME", "2026-01-05T15:00:00Z", "2026-01-05", "0.000001", 5, "S", "OTCX", 1, 2),
    (
        "T3",
        "BLTX",
        "2026-01-06T01:00:00Z",
        "2026-01-05",
        "999999999999.999999",
        9,
        "B",
        "ARCA",
        2,
        7,
    ),
)


def _trades(conn: Conn) -> list[tuple[Any, ...]]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM otc_trades ORDER BY trade_id").fetchall()
    return [tuple(r.values()) for r in rows]


def test_migration_015_keeps_every_trade_and_swaps_the_index(bare_url: str, tmp_path: Path) -> None:
    before = tmp_path / "before_015"
    before.mkdir()
    for path in sorted(migrations_dir().glob("*.sql")):
        if path.name < "015":
            shutil.copy(path, before / path.name)
    with db.connect(bare_url) as conn:
        apply_pending(conn, before)
        conn.cursor().executemany(
            f"INSERT INTO otc_trades ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})", TRADES
        )
        old = _trades(conn)

        assert "015_otc_trades_leaner.sql" in apply_pending(conn)
        assert _trades(conn) == old
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def"
            " FROM pg_index WHERE indrelid = 'otc_trades'::regclass ORDER BY 1"
        ).fetchall()
        assert [(r["name"], str(r["def"]).split(" USING ")[1]) for r in indexes] == [
            ("idx_otc_trades_symbol_date", "btree (symbol, trade_date, executed_at)"),
            ("otc_trades_pkey", "btree (trade_id)"),
        ]
        # The constraints are still there, under their names.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                f"INSERT INTO otc_trades ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})", TRADES[0]
            )
        with pytest.raises(psycopg.errors.CheckViolation, match="otc_trades_side_check"):
            conn.execute(
                f"INSERT INTO otc_trades ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})",
                ("T9", *TRADES[0][1:6], "X", *TRADES[0][7:]),
            )


def test_keyset_pages_break_time_ties_by_trade_id(conn: Conn, database_url: str) -> None:
    """Many trades at one instant: pages still follow trade_id, none lost or repeated."""
    trades = [
        (f"T{n:03d}", "2026-01-05T15:00:01Z" if n % 3 == 0 else "2026-01-05T15:00:00Z")
        for n in range(60)
    ]
    conn.cursor().executemany(
        f"INSERT INTO otc_trades ({COLUMNS})"
        " VALUES (%s, 'ACME', %s, '2026-01-05', 1, 1, 'B', 'OTCN', 1, %s)",
        [(trade_id, at, n) for n, (trade_id, at) in enumerate(reversed(trades))],
    )

    async def pages() -> list[list[str]]:
        out: list[list[str]] = []
        async with await db.aconnect(database_url) as aconn:
            after: tuple[date, datetime, str] | None = None
            while rows := await reads.trades(aconn, "ACME", limit=7, after=after):
                out.append([r.trade_id for r in rows])
                after = (rows[-1].trade_date, rows[-1].executed_at, rows[-1].trade_id)
        return out

    got = asyncio.run(pages())
    expected = [trade_id for trade_id, _ in sorted(trades, key=lambda t: (t[1], t[0]))]
    assert [i for page in got for i in page] == expected
    assert all(len(page) == 7 for page in got[:-1])
