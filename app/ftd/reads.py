"""FTD analytics for the API, the CLI and the page: exact NUMERIC, computed in SQL.

- `fail_value` is quantity x price, exact; NULL when the SEC gave no price (`.`).
- `consecutive_days` of a symbol on a settlement date: how many consecutive
  settlement dates, counting back from and including it, the symbol was on the
  list (under any of its CUSIPs). The settlement dates are those present
  anywhere in the loaded data, in order: weekends, holidays and a gap between
  loaded periods do not break a run. A gaps-and-islands count over the dates'
  ranks (`_DATES` is a loose index scan of the primary key: one probe per date).
- A period's persistent fails: the CUSIPs on at least `min_days` of the
  period's settlement dates.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, LiteralString

import msgspec
from psycopg import sql
from psycopg.rows import class_row

from app.db import AsyncConn

__all__ = [
    "CusipRun",
    "Fail",
    "FailSort",
    "PeriodSummary",
    "PersistentFail",
    "SymbolDay",
    "cusip_history",
    "date_loaded",
    "fails",
    "latest_date",
    "latest_period",
    "period_loaded",
    "periods",
    "persistent",
    "recent_periods",
    "sort_value",
    "symbol_history",
]

FailSort = Literal["value", "quantity"]


class PeriodSummary(msgspec.Struct, frozen=True):
    period: str
    first_date: date
    last_date: date
    settlement_dates: int
    rows: int
    securities: int
    total_quantity: int
    trailer_record_count: int
    trailer_total_quantity: int
    rejected: int
    trailer_matches: bool
    load_id: int
    loaded_at: datetime


class Fail(msgspec.Struct, frozen=True):
    settlement_date: date
    cusip: str
    symbol: str
    description: str
    quantity: int
    price: Decimal | None
    fail_value: Decimal | None


class SymbolDay(msgspec.Struct, frozen=True):
    settlement_date: date
    symbol: str
    cusips: list[str]
    description: str
    quantity: int
    fail_value: Decimal | None
    consecutive_days: int


class PersistentFail(msgspec.Struct, frozen=True):
    period: str
    cusip: str
    symbol: str
    description: str
    days: int
    period_days: int
    total_quantity: int
    max_quantity: int
    max_value: Decimal | None


class CusipRun(msgspec.Struct, frozen=True):
    cusip: str
    symbol: str
    description: str
    first_date: date
    last_date: date
    settlement_dates: int


# A period's totals are stored by its load (it replaces the period's rows whole).
_PERIODS: LiteralString = """
    SELECT period, first_date, last_date, settlement_dates, rows::int, securities::int,
           total_quantity::bigint, trailer_record_count, trailer_total_quantity::bigint,
           rejected::int,
           (rows = trailer_record_count AND total_quantity = trailer_total_quantity)
               AS trailer_matches,
           load_id, loaded_at
      FROM ftd_periods
     WHERE %(after)s::text IS NULL OR period > %(after)s
     ORDER BY period
     LIMIT %(limit)s
"""

_SORT_KEYS = {
    "value": sql.SQL("coalesce(quantity * price, -1)"),
    "quantity": sql.SQL("quantity::numeric"),
}

# Keyset order: the sort key descending (an unknown value last), then the CUSIP;
# `after` is the last row's (key, CUSIP), compared as (-key, CUSIP).
_FAILS = sql.SQL(
    """
    SELECT settlement_date, cusip, symbol, description, quantity, price,
           quantity * price AS fail_value
      FROM ftd_fails
     WHERE settlement_date = %(day)s
       AND (%(min_value)s::numeric IS NULL OR quantity * price >= %(min_value)s)
       AND (%(after_key)s::numeric IS NULL OR (-{key}, cusip) > (-%(after_key)s, %(after_cusip)s))
     ORDER BY {key} DESC, cusip
     LIMIT %(limit)s
"""
)

# Every loaded settlement date, in order, with its rank: one index probe per date.
_DATES: LiteralString = """
    WITH RECURSIVE d AS (
        (SELECT settlement_date FROM ftd_fails ORDER BY settlement_date LIMIT 1)
        UNION ALL
        SELECT (SELECT f.settlement_date FROM ftd_fails f
                 WHERE f.settlement_date > d.settlement_date
                 ORDER BY f.settlement_date LIMIT 1)
          FROM d WHERE d.settlement_date IS NOT NULL
    ), dates AS (
        SELECT settlement_date, row_number() OVER (ORDER BY settlement_date) AS n
          FROM d WHERE settlement_date IS NOT NULL
    )
"""

_SYMBOL_HISTORY: LiteralString = (
    _DATES
    + """
    , mine AS (
        SELECT settlement_date, array_agg(cusip ORDER BY cusip) AS cusips,
               (array_agg(description ORDER BY cusip))[1] AS description,
               sum(quantity)::bigint AS quantity,
               CASE WHEN bool_and(price IS NOT NULL) THEN sum(quantity * price) END
                   AS fail_value
          FROM ftd_fails WHERE symbol = %(symbol)s
         GROUP BY settlement_date
    ), runs AS (
        SELECT mine.*, dates.n - row_number() OVER (ORDER BY mine.settlement_date) AS island
          FROM mine JOIN dates USING (settlement_date)
    ), counted AS (
        SELECT runs.*,
               row_number() OVER (PARTITION BY island ORDER BY settlement_date)::int
                   AS consecutive_days
          FROM runs
    )
    SELECT settlement_date, %(symbol)s::text AS symbol, cusips, description, quantity,
           fail_value, consecutive_days
      FROM counted
     WHERE (%(start)s::date IS NULL OR settlement_date >= %(start)s)
       AND (%(end)s::date IS NULL OR settlement_date <= %(end)s)
       AND (%(after)s::date IS NULL OR settlement_date > %(after)s)
     ORDER BY settlement_date
     LIMIT %(limit)s
"""
)

# The period's rows are a range of the primary key (its dates), aggregated per
# CUSIP without sorting; the symbol and description (those of its last date in
# the period) are looked up by primary key for the page's rows only.
_PERSISTENT: LiteralString = """
    WITH s AS (
        SELECT cusip, count(*)::int AS days, sum(quantity)::bigint AS total_quantity,
               max(quantity) AS max_quantity, max(quantity * price) AS max_value,
               max(settlement_date) AS last_date
          FROM ftd_fails
         WHERE settlement_date BETWEEN %(first)s AND %(last)s
         GROUP BY cusip
        HAVING count(*) >= %(min_days)s
    ), page AS (
        SELECT * FROM s
         WHERE %(after_days)s::int IS NULL
            OR (-days, -total_quantity, cusip)
               > (-%(after_days)s, -%(after_total)s::bigint, %(after_cusip)s)
         ORDER BY days DESC, total_quantity DESC, cusip
         LIMIT %(limit)s
    )
    SELECT %(period)s::text AS period, page.cusip, f.symbol, f.description, page.days,
           (SELECT settlement_dates FROM ftd_periods WHERE period = %(period)s) AS period_days,
           page.total_quantity, page.max_quantity, page.max_value
      FROM page
      JOIN ftd_fails f ON f.settlement_date = page.last_date AND f.cusip = page.cusip
     ORDER BY page.days DESC, page.total_quantity DESC, page.cusip
"""

# Runs of one (symbol, description) in the CUSIP's settlement dates, in order.
_CUSIP_HISTORY: LiteralString = """
    WITH marked AS (
        SELECT settlement_date, symbol, description,
               (symbol, description) IS DISTINCT FROM
               (lag(symbol) OVER w, lag(description) OVER w) AS starts
          FROM ftd_fails WHERE cusip = %(cusip)s
        WINDOW w AS (ORDER BY settlement_date)
    ), runs AS (
        SELECT marked.*, sum(starts::int) OVER (ORDER BY settlement_date) AS run FROM marked
    )
    SELECT %(cusip)s::text AS cusip, symbol, description, min(settlement_date) AS first_date,
           max(settlement_date) AS last_date, count(*)::int AS settlement_dates
      FROM runs
     GROUP BY run, symbol, description
     ORDER BY run
"""

_RECENT_PERIODS: LiteralString = """
    SELECT period FROM ftd_periods ORDER BY period DESC LIMIT %(limit)s
"""


async def _one(conn: AsyncConn, query: LiteralString, params: tuple[object, ...]) -> object:
    row = await (await conn.execute(query, params)).fetchone()
    return None if row is None else next(iter(row.values()))


async def date_loaded(conn: AsyncConn, day: date) -> bool:
    """Whether any fail of `day` is stored (so an empty listing is a filter, not a 404)."""
    found = await _one(
        conn, "SELECT EXISTS (SELECT FROM ftd_fails WHERE settlement_date = %s)", (day,)
    )
    return found is True


async def period_loaded(conn: AsyncConn, period: str) -> bool:
    found = await _one(conn, "SELECT EXISTS (SELECT FROM ftd_periods WHERE period = %s)", (period,))
    return found is True


async def latest_date(conn: AsyncConn) -> date | None:
    found = await _one(conn, "SELECT max(settlement_date) FROM ftd_fails", ())
    return found if isinstance(found, date) else None


async def latest_period(conn: AsyncConn) -> str | None:
    found = await _one(conn, "SELECT max(period) FROM ftd_periods", ())
    return found if isinstance(found, str) else None


async def recent_periods(conn: AsyncConn, *, limit: int = 48) -> list[str]:
    """The newest loaded periods, newest first (a picker's list)."""
    cur = await conn.execute(_RECENT_PERIODS, {"limit": limit})
    return [str(row["period"]) for row in await cur.fetchall()]


async def periods(
    conn: AsyncConn, *, limit: int = 100, after: str | None = None
) -> list[PeriodSummary]:
    """Loaded half-months, oldest first; `after` is the last row's period."""
    async with conn.cursor(row_factory=class_row(PeriodSummary)) as cur:
        await cur.execute(_PERIODS, {"after": after, "limit": limit})
        return await cur.fetchall()


async def fails(
    conn: AsyncConn,
    day: date,
    *,
    sort: FailSort = "value",
    min_value: Decimal | None = None,
    limit: int = 100,
    after: tuple[Decimal, str] | None = None,
) -> list[Fail]:
    """A settlement date's fails by `sort` descending, then CUSIP; `after` is the last row's
    (sort value, CUSIP), with -1 for an unknown value."""
    params = {
        "day": day,
        "min_value": min_value,
        "after_key": after[0] if after else None,
        "after_cusip": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(Fail)) as cur:
        await cur.execute(_FAILS.format(key=_SORT_KEYS[sort]), params)
        return await cur.fetchall()


def sort_value(row: Fail, sort: FailSort) -> Decimal:
    """The keyset value of `row` under `sort` (what `fails(after=...)` expects)."""
    if sort == "value":
        return row.fail_value if row.fail_value is not None else Decimal(-1)
    return Decimal(row.quantity)


async def symbol_history(
    conn: AsyncConn,
    symbol: str,
    *,
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    after: date | None = None,
) -> list[SymbolDay]:
    """The symbol on each settlement date it failed, oldest first, with its run of
    consecutive settlement dates; `after` is the last row's date."""
    params = {"symbol": symbol, "start": start, "end": end, "after": after, "limit": limit}
    async with conn.cursor(row_factory=class_row(SymbolDay)) as cur:
        await cur.execute(_SYMBOL_HISTORY, params)
        return await cur.fetchall()


async def persistent(
    conn: AsyncConn,
    period: str,
    first: date,
    last: date,
    *,
    min_days: int,
    limit: int = 100,
    after: tuple[int, int, str] | None = None,
) -> list[PersistentFail]:
    """The period's CUSIPs on at least `min_days` of its settlement dates: most days first,
    then the most shares, then CUSIP; `after` is the last row's (days, total, CUSIP)."""
    params = {
        "period": period,
        "first": first,
        "last": last,
        "min_days": min_days,
        "after_days": after[0] if after else None,
        "after_total": after[1] if after else None,
        "after_cusip": after[2] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(PersistentFail)) as cur:
        await cur.execute(_PERSISTENT, params)
        return await cur.fetchall()


async def cusip_history(conn: AsyncConn, cusip: str) -> list[CusipRun]:
    """Every (symbol, description) the CUSIP had, each run with its date range, in order."""
    async with conn.cursor(row_factory=class_row(CusipRun)) as cur:
        await cur.execute(_CUSIP_HISTORY, {"cusip": cusip})
        return await cur.fetchall()
