"""Daily per-symbol metrics, recomputed exactly from otc_trades.

Never incremental: a pair's row is always recomputed from all of its trades
with one GROUP BY, so the result cannot drift from the trades. An ingest
recomputes only the pairs it changed (a correction that moves a trade to
another symbol or date changes both pairs); a pair left with no trades loses
its row. Rows whose values come out equal are not rewritten, so re-running
changes nothing. Definitions (NUMERIC, exact) are in migrations/012.
"""

from __future__ import annotations

from datetime import date
from typing import Any, LiteralString

from psycopg import sql

from app.db import AsyncConn
from app.otc.loads import count

__all__ = ["TRADES_LOCK", "VWAP_DECIMALS", "lock_trades", "recompute", "recompute_touched"]

# Serializes every writer of otc_trades and otc_metrics_daily (ingest, recompute):
# a load's duplicate/correction decisions and a metrics recompute read what the
# previous writer committed. Taken per transaction, after the COPY.
TRADES_LOCK = 0x4F5443_7472  # "OTC" "tr"
VWAP_DECIMALS = 10
"""VWAP is rounded half up to this many places (the literals of `_VWAP` below)."""


async def lock_trades(conn: AsyncConn) -> None:
    """Wait for, then hold until commit, the right to write trades and metrics."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (TRADES_LOCK,))


async def try_lock_trades(conn: AsyncConn) -> bool:
    """`lock_trades` if nobody holds it now (True), without waiting (False)."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS got", (TRADES_LOCK,))
    row = await cur.fetchone()
    return bool(row and row["got"])


async def recompute(
    conn: AsyncConn,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    symbol: str | None = None,
) -> int:
    """Recompute a date range (inclusive; None: unbounded), optionally for one symbol.

    Runs in its own transaction under the trades lock; returns metric rows changed.
    """
    async with conn.transaction():
        await lock_trades(conn)
        return await _recompute_range(conn, start_date=start_date, end_date=end_date, symbol=symbol)


# Exact VWAP: total_notional / total_volume rounded half up to VWAP_DECIMALS places,
# by integer division (no intermediate rounding, unlike numeric `/`).
_VWAP: LiteralString = (
    "div(total_notional * 20000000000 + total_volume, total_volume * 2) * 0.0000000001"
)

_UPSERT_METRICS: LiteralString = f"""
    upserted AS (
        INSERT INTO otc_metrics_daily AS m (symbol, trade_date, trade_count, total_volume,
                                            total_notional, vwap, high_price, low_price)
        SELECT symbol, trade_date, trade_count, total_volume, total_notional, {_VWAP},
               high_price, low_price
          FROM fresh
        ON CONFLICT (symbol, trade_date) DO UPDATE
           SET trade_count = excluded.trade_count, total_volume = excluded.total_volume,
               total_notional = excluded.total_notional, vwap = excluded.vwap,
               high_price = excluded.high_price, low_price = excluded.low_price,
               computed_at = now()
         WHERE (m.trade_count, m.total_volume, m.total_notional, m.vwap, m.high_price,
                m.low_price)
               IS DISTINCT FROM (excluded.trade_count, excluded.total_volume,
                                 excluded.total_notional, excluded.vwap, excluded.high_price,
                                 excluded.low_price)
        RETURNING 1
    )
"""

_AGGREGATES: LiteralString = """
    count(*) AS trade_count, sum(t.size) AS total_volume, sum(t.price * t.size) AS total_notional,
    max(t.price) AS high_price, min(t.price) AS low_price
"""


async def recompute_touched(conn: AsyncConn) -> int:
    """Recompute the pairs a load marked in pg_temp.otc_touched; returns rows changed or deleted.

    One index range scan per pair (LATERAL): right for a few pairs and still
    fine for all of them, whatever the statistics of a table that just grew.
    """
    cur = await conn.execute(
        f"""
        WITH computed AS (
            SELECT p.symbol, p.trade_date, a.*
              FROM (SELECT DISTINCT symbol, trade_date FROM pg_temp.otc_touched) AS p
             CROSS JOIN LATERAL (
                   SELECT {_AGGREGATES} FROM otc_trades t
                    WHERE t.symbol = p.symbol AND t.trade_date = p.trade_date) AS a
        ),
        fresh AS (SELECT * FROM computed WHERE trade_count > 0),
        {_UPSERT_METRICS},
        deleted AS (
            DELETE FROM otc_metrics_daily m USING computed c
             WHERE m.symbol = c.symbol AND m.trade_date = c.trade_date AND c.trade_count = 0
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM deleted) AS n
        """
    )
    return count(await cur.fetchone())


async def count_range(
    conn: AsyncConn,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    symbol: str | None = None,
) -> int:
    """The metric rows in a date range (inclusive; None: unbounded), optionally of one symbol."""
    cur = await conn.execute(
        """
        SELECT count(*)::int AS n FROM otc_metrics_daily
         WHERE (%(start)s::date IS NULL OR trade_date >= %(start)s)
           AND (%(end)s::date IS NULL OR trade_date <= %(end)s)
           AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
        """,
        {"start": start_date, "end": end_date, "symbol": symbol},
    )
    return count(await cur.fetchone())


async def _recompute_range(
    conn: AsyncConn,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    symbol: str | None = None,
) -> int:
    """Recompute every pair in a date range (inclusive; None: unbounded), optionally one symbol.

    Returns metric rows changed or deleted; pairs that lost all their trades are deleted.
    """
    conditions: list[sql.SQL] = []
    params: dict[str, Any] = {"start": start_date, "end": end_date, "symbol": symbol}
    if start_date is not None:
        conditions.append(sql.SQL("{alias}.trade_date >= %(start)s"))
    if end_date is not None:
        conditions.append(sql.SQL("{alias}.trade_date <= %(end)s"))
    if symbol is not None:
        conditions.append(sql.SQL("{alias}.symbol = %(symbol)s"))

    def where(alias: str) -> sql.Composable:
        if not conditions:
            return sql.SQL("true")
        return sql.SQL(" AND ").join(c.format(alias=sql.Identifier(alias)) for c in conditions)

    query = sql.SQL(
        f"""
        WITH fresh AS (
            SELECT t.symbol, t.trade_date, {_AGGREGATES}
              FROM otc_trades t WHERE {{trades_where}}
             GROUP BY t.symbol, t.trade_date
        ),
        {_UPSERT_METRICS},
        deleted AS (
            DELETE FROM otc_metrics_daily m
             WHERE {{metrics_where}}
               AND NOT EXISTS (SELECT FROM fresh f
                                WHERE f.symbol = m.symbol AND f.trade_date = m.trade_date)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM deleted) AS n
        """
    ).format(trades_where=where("t"), metrics_where=where("m"))
    cur = await conn.execute(query, params)
    return count(await cur.fetchone())
