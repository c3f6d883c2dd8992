"""OTC reads for the API and the CLI: daily metrics and one symbol's trades.

Rows are msgspec Structs with exact Decimals, ordered for keyset pagination:
pass the last row's key as `after` to get the next page.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
from psycopg import sql
from psycopg.rows import class_row, tuple_row

from app.db import AsyncConn

__all__ = ["DailyMetric", "Trade", "daily_metrics", "daily_metrics_json", "symbols", "trades"]


class DailyMetric(msgspec.Struct, frozen=True):
    """One symbol's metrics for one trade date; money and prices are exact Decimals."""

    symbol: str
    date: date
    trade_count: int
    total_volume: int
    total_notional: Decimal
    vwap: Decimal
    high_price: Decimal
    low_price: Decimal


class Trade(msgspec.Struct, frozen=True):
    trade_id: str
    symbol: str
    executed_at: datetime
    trade_date: date
    price: Decimal
    size: int
    side: str
    venue: str


async def daily_metrics(
    conn: AsyncConn,
    *,
    symbol: str | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    limit: int = 100,
    after: tuple[str, date] | None = None,
) -> list[DailyMetric]:
    """Metrics ordered by (symbol, date); `after` is the last row's (symbol, date)."""
    rows = await _daily_rows(
        conn,
        as_json=False,
        symbol=symbol,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        after=after,
    )
    # Tuples into the Struct by position: a keyword row factory cost ~5% of a GET.
    return [
        DailyMetric(sym, day, count, int(volume), notional, vwap, high, low)
        for sym, day, count, volume, notional, vwap, high, low in rows
    ]


async def daily_metrics_json(
    conn: AsyncConn,
    *,
    symbol: str | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    limit: int = 100,
    after: tuple[str, date] | None = None,
) -> list[tuple[str, str, str]]:
    """The rows of `daily_metrics` as (symbol, ISO date, JSON object).

    PostgreSQL writes the object: DailyMetric's fields, numbers exact and
    without trailing zeros (`trim_scale`: 12.500000 is 12.5). The API sends it
    as is: typing each row in Python only to encode it again was a third of a
    GET's CPU.
    """
    return await _daily_rows(
        conn,
        as_json=True,
        symbol=symbol,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        after=after,
    )


async def _daily_rows(
    conn: AsyncConn,
    *,
    as_json: bool,
    symbol: str | None,
    start_date: date | None,
    end_date: date | None,
    limit: int,
    after: tuple[str, date] | None,
) -> list[Any]:
    """One page of daily metrics as tuples, typed or (symbol, date, JSON) per `as_json`."""
    query = _daily_sql(
        symbol is not None,
        start_date is not None,
        end_date is not None,
        after is not None,
        as_json=as_json,
    )
    params = {
        "symbol": symbol,
        "start": start_date,
        "end": end_date,
        "after_symbol": after[0] if after else None,
        "after_date": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


_DAILY = """
    SELECT symbol, trade_date AS date, trade_count, total_volume, total_notional, vwap,
           high_price, low_price
      FROM otc_metrics_daily
     WHERE {where}
     ORDER BY symbol, trade_date
     LIMIT %(limit)s
"""
_DAILY_JSON = """
    SELECT m.symbol, to_char(m.date, 'YYYY-MM-DD'), row_to_json(m)::text
      FROM (SELECT symbol, trade_date AS date, trade_count,
                   trim_scale(total_volume) AS total_volume,
                   trim_scale(total_notional) AS total_notional, trim_scale(vwap) AS vwap,
                   trim_scale(high_price) AS high_price, trim_scale(low_price) AS low_price
              FROM otc_metrics_daily
             WHERE {where}
             ORDER BY symbol, trade_date
             LIMIT %(limit)s) AS m
     ORDER BY m.symbol, m.date
"""


@functools.cache
def _daily_sql(
    symbol: bool, start: bool, end: bool, after: bool, *, as_json: bool = False
) -> bytes:
    """The statement for one set of filters, composed once per process, not per request."""
    conditions: list[sql.Composable] = []
    if symbol:
        conditions.append(sql.SQL("symbol = %(symbol)s"))
    if start:
        conditions.append(sql.SQL("trade_date >= %(start)s"))
    if end:
        conditions.append(sql.SQL("trade_date <= %(end)s"))
    if after:
        conditions.append(sql.SQL("(symbol, trade_date) > (%(after_symbol)s, %(after_date)s)"))
    query = sql.SQL(_DAILY_JSON if as_json else _DAILY).format(
        where=sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    )
    return query.as_bytes(None)


async def trades(
    conn: AsyncConn,
    symbol: str,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    limit: int = 100,
    after: tuple[date, datetime, str] | None = None,
) -> list[Trade]:
    """One symbol's trades ordered by (trade_date, executed_at, trade_id); `after` is the last
    row's (trade_date, executed_at, trade_id)."""
    conditions: list[sql.Composable] = [sql.SQL("symbol = %(symbol)s")]
    if start_date is not None:
        conditions.append(sql.SQL("trade_date >= %(start)s"))
    if end_date is not None:
        conditions.append(sql.SQL("trade_date <= %(end)s"))
    if after is not None:
        conditions.append(
            sql.SQL("(trade_date, executed_at, trade_id) > (%(a_date)s, %(a_time)s, %(a_id)s)")
        )
    query = sql.SQL(
        """
        SELECT trade_id, symbol, executed_at, trade_date, price, size, side, venue
          FROM otc_trades
         WHERE {where}
         ORDER BY trade_date, executed_at, trade_id
         LIMIT %(limit)s
        """
    ).format(where=sql.SQL(" AND ").join(conditions))
    params = {
        "symbol": symbol,
        "start": start_date,
        "end": end_date,
        "a_date": after[0] if after else None,
        "a_time": after[1] if after else None,
        "a_id": after[2] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(Trade)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def symbols(conn: AsyncConn, limit: int = 5000) -> list[str]:
    """The symbols that have daily metrics, in order (a skip scan: one index probe each)."""
    cur = await conn.execute(
        """
        WITH RECURSIVE s (symbol) AS (
            (SELECT symbol FROM otc_metrics_daily ORDER BY symbol LIMIT 1)
          UNION ALL
            SELECT (SELECT m.symbol FROM otc_metrics_daily m
                    WHERE m.symbol > s.symbol ORDER BY m.symbol LIMIT 1)
            FROM s WHERE s.symbol IS NOT NULL
        )
        SELECT symbol FROM s WHERE symbol IS NOT NULL LIMIT %s
        """,
        (limit,),
    )
    return [str(r["symbol"]) for r in await cur.fetchall()]
