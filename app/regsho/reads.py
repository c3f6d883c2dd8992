"""Reg SHO analytics for the API, the CLI and the page: days, a day's symbols and markets,
a symbol's history. Everything is computed in SQL on NUMERIC.

`market` is `all` (the default: short_volume_daily, the five facility files
summed, CNMS left out so nothing is counted twice) or one of the six file
codes (that file's rows as published). Ratios are `regsho_pct` (100 x short /
total, round(numeric, 4), null when total is 0). A symbol's history counts
*loaded days*: for `all` the days short_volume_daily holds, for one market the
days its file is loaded. `short_ratio_avg_5d_pct` is volume-weighted over the 5
most recent loaded days up to the day (fewer when fewer are loaded; a loaded
day without the symbol adds 0 to both sums); `ratio_change_pp` is the exact
ratio minus the previous loaded day's, in points, rounded to 4 (null when the
symbol has no row that day). The ratio counts FINRA-reported (off-exchange)
volume only, not exchange volume, and it is not short interest.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, LiteralString

import msgspec
from psycopg import sql
from psycopg.rows import class_row

from app.db import AsyncConn
from app.regsho.keys import ALL, CONSOLIDATED, MarketChoice

__all__ = [
    "DaySummary",
    "MarketShare",
    "Mismatch",
    "SymbolDay",
    "SymbolSort",
    "day_loaded",
    "days",
    "latest_day",
    "markets",
    "mismatches",
    "sort_value",
    "symbol_history",
    "symbols",
]

SymbolSort = Literal["short_ratio", "short_volume", "total_volume"]


class DaySummary(msgspec.Struct, frozen=True):
    date: date
    markets: list[str]
    symbols: int | None
    nms_symbols: int | None
    otc_symbols: int | None
    short_volume: Decimal | None
    total_volume: Decimal | None
    short_ratio_pct: Decimal | None
    nms_short_volume: Decimal | None
    nms_total_volume: Decimal | None
    otc_short_volume: Decimal | None
    otc_total_volume: Decimal | None
    reconciliation: str
    mismatched_symbols: int | None
    computed_at: datetime | None
    stale: bool


class SymbolDay(msgspec.Struct, frozen=True):
    date: date
    symbol: str
    short_volume: Decimal
    short_exempt_volume: Decimal
    total_volume: Decimal
    short_ratio_pct: Decimal | None
    markets: list[str]
    short_ratio_avg_5d_pct: Decimal | None = None
    ratio_change_pp: Decimal | None = None


class MarketShare(msgspec.Struct, frozen=True):
    market: str
    symbols: int
    short_volume: Decimal
    short_exempt_volume: Decimal
    total_volume: Decimal
    short_ratio_pct: Decimal | None
    share_of_total_volume_pct: Decimal | None
    share_of_short_volume_pct: Decimal | None


class Mismatch(msgspec.Struct, frozen=True):
    symbol: str
    cnms_short_volume: Decimal
    cnms_short_exempt_volume: Decimal
    cnms_total_volume: Decimal
    facilities_short_volume: Decimal
    facilities_short_exempt_volume: Decimal
    facilities_total_volume: Decimal
    short_volume_diff: Decimal
    total_volume_diff: Decimal


_DAYS: LiteralString = """
    WITH f AS (
        SELECT trade_date, array_agg(market ORDER BY market) AS markets,
               max(loaded_at) AS last_changed
          FROM regsho_files
         WHERE %(after)s::date IS NULL OR trade_date > %(after)s
         GROUP BY trade_date ORDER BY trade_date LIMIT %(limit)s
    )
    SELECT f.trade_date AS date, f.markets,
           d.nms_symbols + d.otc_symbols AS symbols, d.nms_symbols, d.otc_symbols,
           d.nms_short_volume + d.otc_short_volume AS short_volume,
           d.nms_total_volume + d.otc_total_volume AS total_volume,
           regsho_pct(d.nms_short_volume + d.otc_short_volume,
                      d.nms_total_volume + d.otc_total_volume) AS short_ratio_pct,
           d.nms_short_volume, d.nms_total_volume, d.otc_short_volume, d.otc_total_volume,
           coalesce(d.reconciliation, 'not_computed') AS reconciliation, d.mismatched_symbols,
           d.computed_at, coalesce(d.computed_at < f.last_changed, false) AS stale
      FROM f LEFT JOIN regsho_days d ON d.trade_date = f.trade_date
     ORDER BY f.trade_date
"""

_ALL_ROWS: LiteralString = """
    SELECT trade_date, symbol, short_volume, short_exempt_volume, total_volume,
           short_ratio_pct, markets
      FROM regsho_short_volume_daily
"""
_MARKET_ROWS: LiteralString = """
    SELECT trade_date, symbol, short_volume, short_exempt_volume, total_volume,
           regsho_pct(short_volume, total_volume) AS short_ratio_pct, ARRAY[market] AS markets
      FROM regsho_daily_volume
"""
_WHERE_ALL: LiteralString = "trade_date = %(day)s"
_WHERE_MARKET: LiteralString = "trade_date = %(day)s AND market = %(market)s"

_SORT_KEYS = {
    "short_ratio": sql.SQL("coalesce(short_ratio_pct, -1)"),
    "short_volume": sql.SQL("short_volume"),
    "total_volume": sql.SQL("total_volume"),
}

# Keyset order: the sort key descending, then the symbol (bytes, COLLATE "C").
_DAY_SYMBOLS = sql.SQL(
    """
    SELECT trade_date AS date, symbol, short_volume, short_exempt_volume, total_volume,
           short_ratio_pct, markets
      FROM ({rows} WHERE {where}) s
     WHERE (%(min_volume)s::numeric IS NULL OR total_volume >= %(min_volume)s)
       AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
       AND (%(after_key)s::numeric IS NULL
            OR (-{key}, symbol) > (-%(after_key)s::numeric, %(after_symbol)s::text))
     ORDER BY {key} DESC, symbol
     LIMIT %(limit)s
"""
)

_ON_DAY_ALL: LiteralString = "trade_date = l.trade_date"
_ON_DAY_MARKET: LiteralString = "trade_date = l.trade_date AND market = %(market)s"
_LOADED_ALL: LiteralString = "SELECT trade_date FROM regsho_days"
_LOADED_MARKET: LiteralString = "SELECT trade_date FROM regsho_files WHERE market = %(market)s"

# Every loaded day up to end_date, the symbol's row of each (a primary-key probe),
# then the windows over loaded days; the days without a row are dropped last.
_HISTORY = sql.SQL(
    """
    WITH loaded AS (
        SELECT trade_date, row_number() OVER (ORDER BY trade_date) AS n
          FROM ({loaded}) l
         WHERE %(end)s::date IS NULL OR trade_date <= %(end)s
    ), by_day AS (
        SELECT l.n, l.trade_date, r.symbol, r.short_volume, r.short_exempt_volume,
               r.total_volume, r.short_ratio_pct, r.markets
          FROM loaded l
          LEFT JOIN LATERAL ({rows} WHERE {where} AND symbol = %(symbol)s) r ON true
    ), windowed AS (
        SELECT by_day.*,
               sum(coalesce(short_volume, 0)) OVER five AS short_5d,
               sum(coalesce(total_volume, 0)) OVER five AS total_5d,
               lag(short_volume) OVER (ORDER BY n) AS prev_short,
               lag(total_volume) OVER (ORDER BY n) AS prev_total
          FROM by_day
        WINDOW five AS (ORDER BY n ROWS BETWEEN 4 PRECEDING AND CURRENT ROW)
    )
    SELECT trade_date AS date, symbol, short_volume, short_exempt_volume, total_volume,
           short_ratio_pct, markets,
           regsho_pct(short_5d, total_5d) AS short_ratio_avg_5d_pct,
           regsho_pp(short_volume, total_volume, prev_short, prev_total) AS ratio_change_pp
      FROM windowed
     WHERE symbol IS NOT NULL
       AND (%(start)s::date IS NULL OR trade_date >= %(start)s)
       AND (%(after)s::date IS NULL OR trade_date > %(after)s)
     ORDER BY trade_date
     LIMIT %(limit)s
"""
)

_MARKETS: LiteralString = """
    WITH m AS (
        SELECT f.market, count(v.symbol)::int AS symbols,
               coalesce(sum(v.short_volume), 0) AS short_volume,
               coalesce(sum(v.short_exempt_volume), 0) AS short_exempt_volume,
               coalesce(sum(v.total_volume), 0) AS total_volume
          FROM regsho_files f
          LEFT JOIN regsho_daily_volume v ON v.trade_date = f.trade_date AND v.market = f.market
         WHERE f.trade_date = %(day)s
         GROUP BY f.market
    )
    SELECT market, symbols, short_volume, short_exempt_volume, total_volume,
           regsho_pct(short_volume, total_volume) AS short_ratio_pct,
           regsho_pct(total_volume,
                      sum(total_volume) FILTER (WHERE market <> %(cnms)s) OVER ())
               AS share_of_total_volume_pct,
           regsho_pct(short_volume,
                      sum(short_volume) FILTER (WHERE market <> %(cnms)s) OVER ())
               AS share_of_short_volume_pct
      FROM m ORDER BY market
"""

_MISMATCHES: LiteralString = """
    SELECT symbol, cnms_short_volume, cnms_short_exempt_volume, cnms_total_volume,
           facilities_short_volume, facilities_short_exempt_volume, facilities_total_volume,
           cnms_short_volume - facilities_short_volume AS short_volume_diff,
           cnms_total_volume - facilities_total_volume AS total_volume_diff
      FROM regsho_reconciliation WHERE trade_date = %(day)s
     ORDER BY abs(cnms_total_volume - facilities_total_volume) DESC, symbol
     LIMIT %(limit)s
"""


def _source(market: MarketChoice) -> tuple[sql.SQL, sql.SQL]:
    if market == ALL:
        return sql.SQL(_ALL_ROWS), sql.SQL(_WHERE_ALL)
    return sql.SQL(_MARKET_ROWS), sql.SQL(_WHERE_MARKET)


async def day_loaded(conn: AsyncConn, day: date) -> bool:
    """Whether any file of `day` is loaded (so an empty listing is a filter, not a 404)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT FROM regsho_files WHERE trade_date = %s) AS loaded", (day,)
    )
    row = await cur.fetchone()
    return row is not None and row["loaded"] is True


async def latest_day(conn: AsyncConn) -> date | None:
    """The most recent day with a file loaded, if any."""
    cur = await conn.execute("SELECT max(trade_date) AS day FROM regsho_files")
    row = await cur.fetchone()
    day = None if row is None else row["day"]
    return day if isinstance(day, date) else None


async def days(conn: AsyncConn, *, limit: int = 100, after: date | None = None) -> list[DaySummary]:
    """Days with a file loaded, oldest first: files, symbols, totals, reconciliation."""
    async with conn.cursor(row_factory=class_row(DaySummary)) as cur:
        await cur.execute(_DAYS, {"after": after, "limit": limit})
        return await cur.fetchall()


async def symbols(
    conn: AsyncConn,
    day: date,
    *,
    market: MarketChoice = "all",
    symbol: str | None = None,
    min_volume: int | None = None,
    sort: SymbolSort = "short_ratio",
    limit: int = 100,
    after: tuple[Decimal, str] | None = None,
) -> list[SymbolDay]:
    """A day's symbols by `sort` descending, then symbol; `after` is the last row's
    (sort value, symbol), with -1 for a null ratio."""
    rows, where = _source(market)
    query = _DAY_SYMBOLS.format(rows=rows, where=where, key=_SORT_KEYS[sort])
    params = {
        "day": day,
        "market": market,
        "symbol": symbol,
        "min_volume": min_volume,
        "after_key": after[0] if after else None,
        "after_symbol": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(SymbolDay)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def sort_value(row: SymbolDay, sort: SymbolSort) -> Decimal:
    """The keyset value of `row` under `sort` (what `symbols(after=...)` expects)."""
    if sort == "short_ratio":
        return row.short_ratio_pct if row.short_ratio_pct is not None else Decimal(-1)
    return row.short_volume if sort == "short_volume" else row.total_volume


async def symbol_history(
    conn: AsyncConn,
    symbol: str,
    *,
    market: MarketChoice = "all",
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    after: date | None = None,
) -> list[SymbolDay]:
    """One symbol on every loaded day it has a row (from `start` to `end`), oldest first,
    with its 5-day volume-weighted ratio and its change; `after` is the last row's date."""
    rows, _ = _source(market)
    loaded = sql.SQL(_LOADED_ALL if market == ALL else _LOADED_MARKET)
    where = sql.SQL(_ON_DAY_ALL if market == ALL else _ON_DAY_MARKET)
    query = _HISTORY.format(loaded=loaded, rows=rows, where=where)
    params = {
        "symbol": symbol,
        "market": market,
        "start": start,
        "end": end,
        "after": after,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(SymbolDay)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def markets(conn: AsyncConn, day: date) -> list[MarketShare]:
    """Each file of `day`: its volume, its ratio, and its share of the five facility
    files' total and short volume (CNMS's share is the NMS part)."""
    async with conn.cursor(row_factory=class_row(MarketShare)) as cur:
        await cur.execute(_MARKETS, {"day": day, "cnms": CONSOLIDATED})
        return await cur.fetchall()


async def mismatches(conn: AsyncConn, day: date, *, limit: int = 100) -> list[Mismatch]:
    """The symbols of `day` where CNMS differs from the NMS facilities' sum, largest first."""
    async with conn.cursor(row_factory=class_row(Mismatch)) as cur:
        await cur.execute(_MISMATCHES, {"day": day, "limit": limit})
        return await cur.fetchall()
