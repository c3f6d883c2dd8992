"""FINRA analytics for the API and the CLI: weeks, venue market share, symbol concentration.

Everything is computed in SQL on NUMERIC: percentages are `finra_pct` (100 x
part / whole, round(numeric, 4)) and the HHI is `finra_hhi` (rounded to 2),
both in migrations/020. A week's venues and symbols sum every tier and both venue
kinds (ATS and non-ATS) loaded for that week. `ats_share_pct` is a symbol's ATS
shares / all its shares, and is null unless both kinds are stored for every tier
the symbol has rows in (`finra_both_kinds`, migrations/021): one kind alone
would read as 0% or 100%. It is computed for the page's rows only.
`shares_change_pct` compares with the previous loaded week (the latest week
before it with any row stored, so a week never loaded is skipped, not compared
with) and is null when the symbol or venue has no row there.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal, LiteralString

import msgspec
from psycopg import sql
from psycopg.rows import class_row

from app.db import AsyncConn

__all__ = [
    "SymbolSort",
    "SymbolWeek",
    "VenueWeek",
    "WeekSummary",
    "latest_week",
    "recent_weeks",
    "sort_value",
    "symbol_history",
    "symbols",
    "venue_history",
    "venues",
    "week_loaded",
    "weeks",
]

SymbolSort = Literal["shares", "trades", "hhi"]


class WeekSummary(msgspec.Struct, frozen=True):
    week: date
    tier: str
    rows: int
    symbols: int
    venues: int
    shares: int
    trades: int
    last_update_date: date
    venue_kinds: list[str]


class VenueWeek(msgspec.Struct, frozen=True):
    """One venue (MPID) in one week: volume and market share; rank 1 = most shares."""

    week: date
    mpid: str
    participant_name: str
    shares: int
    trades: int
    symbols: int
    share_of_shares_pct: Decimal | None
    share_of_trades_pct: Decimal | None
    rank: int
    shares_change_pct: Decimal | None = None


class SymbolWeek(msgspec.Struct, frozen=True):
    """One symbol in one week: volume, its top venue and how concentrated its venues are."""

    week: date
    symbol: str
    issue_name: str
    shares: int
    trades: int
    venues: int
    top_mpid: str
    top_mpid_share_pct: Decimal | None
    hhi: Decimal | None
    ats_share_pct: Decimal | None
    shares_change_pct: Decimal | None = None


_WEEKS: LiteralString = """
    SELECT week_start AS week, tier, count(*)::int AS rows, count(DISTINCT symbol)::int AS symbols,
           count(DISTINCT mpid)::int AS venues, sum(shares)::bigint AS shares,
           sum(trades)::bigint AS trades, max(last_update_date) AS last_update_date,
           array_agg(DISTINCT venue_kind ORDER BY venue_kind) AS venue_kinds
      FROM finra_weekly_volume
     WHERE (%(after_week)s::date IS NULL OR (week_start, tier) > (%(after_week)s, %(after_tier)s))
     GROUP BY week_start, tier
     ORDER BY week_start, tier
     LIMIT %(limit)s
"""

# Venues of the weeks in %(weeks)s (NULL: every week), with their share and rank.
_VENUES: LiteralString = """
    WITH v AS (
        SELECT week_start, mpid, min(participant_name) AS participant_name,
               sum(shares) AS shares, sum(trades) AS trades, count(DISTINCT symbol) AS symbols
          FROM finra_weekly_volume
         WHERE %(week)s::date IS NULL OR week_start = %(week)s
         GROUP BY week_start, mpid
    ), ranked AS (
        SELECT week_start AS week, mpid, participant_name, shares::bigint, trades::bigint,
               symbols::int,
               finra_pct(shares, sum(shares) OVER w) AS share_of_shares_pct,
               finra_pct(trades, sum(trades) OVER w) AS share_of_trades_pct,
               row_number() OVER (PARTITION BY week_start ORDER BY shares DESC, mpid)::int AS rank
          FROM v
        WINDOW w AS (PARTITION BY week_start)
    )
"""

_WEEK_VENUES: LiteralString = (
    _VENUES
    + """
    SELECT * FROM ranked WHERE %(after)s::int IS NULL OR rank > %(after)s
     ORDER BY rank LIMIT %(limit)s
"""
)

# The loaded week before `cur.week`: a backward scan of the primary key's first column.
_PREVIOUS_WEEK: LiteralString = """
    (SELECT max(p.week_start) FROM finra_weekly_volume p WHERE p.week_start < cur.week)
"""

_VENUE_HISTORY: LiteralString = (
    _VENUES
    + f"""
    , cur AS (
        SELECT cur.*, {_PREVIOUS_WEEK} AS prev_week
          FROM ranked cur
         WHERE cur.mpid = %(mpid)s AND (%(after)s::date IS NULL OR cur.week > %(after)s)
    )
    SELECT cur.week, cur.mpid, cur.participant_name, cur.shares, cur.trades, cur.symbols,
           cur.share_of_shares_pct, cur.share_of_trades_pct, cur.rank,
           finra_pct(cur.shares - prev.shares, prev.shares) AS shares_change_pct
      FROM cur
      LEFT JOIN ranked prev ON prev.mpid = cur.mpid AND prev.week = cur.prev_week
     ORDER BY cur.week LIMIT %(limit)s
"""
)

# Symbols of a week (or, for one symbol, of every week): volume, top venue, HHI.
_SYMBOLS: LiteralString = """
    WITH sv AS (
        SELECT week_start, symbol, mpid, min(issue_name) AS issue_name,
               sum(shares) AS shares, sum(trades) AS trades,
               coalesce(sum(shares) FILTER (WHERE venue_kind = 'ats'), 0) AS ats_shares
          FROM finra_weekly_volume
         WHERE (%(week)s::date IS NULL OR week_start = %(week)s)
           AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
         GROUP BY week_start, symbol, mpid
    ), s AS (
        SELECT week_start AS week, symbol, min(issue_name) AS issue_name,
               sum(shares)::bigint AS shares, sum(trades)::bigint AS trades,
               count(*)::int AS venues,
               (array_agg(mpid ORDER BY shares DESC, mpid))[1] AS top_mpid,
               finra_pct(max(shares), sum(shares)) AS top_mpid_share_pct,
               finra_hhi(sum(shares * shares), sum(shares)) AS hhi,
               sum(ats_shares) AS ats_shares,
               bool_or(mpid = %(mpid)s) AS at_mpid
          FROM sv
         GROUP BY week_start, symbol
    )
"""

_SORT_KEYS = {
    "shares": sql.SQL("shares::numeric"),
    "trades": sql.SQL("trades::numeric"),
    "hhi": sql.SQL("coalesce(hhi, -1)"),
}

# A page's rows with their ATS share (finra_both_kinds probes the index for
# them alone, after the LIMIT).
_ATS_SHARE: LiteralString = """
    CASE WHEN finra_both_kinds(page.week, page.symbol)
         THEN finra_pct(page.ats_shares, page.shares) END AS ats_share_pct
"""

# Keyset order: the sort key descending, then the symbol; `after` is the last
# row's (key, symbol), compared as (-key, symbol).
_WEEK_SYMBOLS = sql.SQL(
    _SYMBOLS
    + f"""
    SELECT week, symbol, issue_name, shares, trades, venues, top_mpid, top_mpid_share_pct, hhi,
           {_ATS_SHARE}
      FROM (SELECT * FROM s
             WHERE (%(mpid)s::text IS NULL OR at_mpid)
               AND (%(min_shares)s::bigint IS NULL OR shares >= %(min_shares)s)
               AND (%(after_key)s::numeric IS NULL
                    OR (-{{key}}, symbol) > (-%(after_key)s, %(after_symbol)s))
             ORDER BY {{key}} DESC, symbol
             LIMIT %(limit)s) page
     ORDER BY {{key}} DESC, symbol
"""
)

_SYMBOL_HISTORY: LiteralString = (
    _SYMBOLS
    + f"""
    , cur AS (
        SELECT cur.*, {_PREVIOUS_WEEK} AS prev_week
          FROM s cur
         WHERE %(after)s::date IS NULL OR cur.week > %(after)s
    )
    SELECT page.week, page.symbol, page.issue_name, page.shares, page.trades, page.venues,
           page.top_mpid, page.top_mpid_share_pct, page.hhi, {_ATS_SHARE},
           finra_pct(page.shares - prev.shares, prev.shares) AS shares_change_pct
      FROM (SELECT * FROM cur ORDER BY week LIMIT %(limit)s) page
      LEFT JOIN s prev ON prev.symbol = page.symbol AND prev.week = page.prev_week
     ORDER BY page.week
"""
)


async def week_loaded(conn: AsyncConn, week: date) -> bool:
    """Whether any row of `week` is stored (so an empty listing is a filter, not a 404)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT FROM finra_weekly_volume WHERE week_start = %s) AS loaded", (week,)
    )
    row = await cur.fetchone()
    return row is not None and row["loaded"] is True


async def latest_week(conn: AsyncConn) -> date | None:
    """The most recent loaded week, if any."""
    cur = await conn.execute("SELECT max(week_start) AS week FROM finra_weekly_volume")
    row = await cur.fetchone()
    week = None if row is None else row["week"]
    return week if isinstance(week, date) else None


_RECENT_WEEKS: LiteralString = """
    WITH RECURSIVE w AS (
        (SELECT week_start FROM finra_weekly_volume ORDER BY week_start DESC LIMIT 1)
        UNION ALL
        SELECT (SELECT p.week_start FROM finra_weekly_volume p
                 WHERE p.week_start < w.week_start ORDER BY p.week_start DESC LIMIT 1)
          FROM w WHERE w.week_start IS NOT NULL
    )
    SELECT week_start AS week FROM w WHERE week_start IS NOT NULL LIMIT %(limit)s
"""


async def recent_weeks(conn: AsyncConn, *, limit: int = 100) -> list[date]:
    """The newest loaded weeks, newest first: one primary-key probe per week (a picker's list)."""
    cur = await conn.execute(_RECENT_WEEKS, {"limit": limit})
    return [row["week"] for row in await cur.fetchall()]  # type: ignore[misc]


async def weeks(
    conn: AsyncConn, *, limit: int = 100, after: tuple[date, str] | None = None
) -> list[WeekSummary]:
    """Loaded (week, tier) pairs, oldest first; `after` is the last row's (week, tier)."""
    params = {"after_week": after[0] if after else None, "after_tier": after[1] if after else None}
    async with conn.cursor(row_factory=class_row(WeekSummary)) as cur:
        await cur.execute(_WEEKS, {**params, "limit": limit})
        return await cur.fetchall()


async def venues(
    conn: AsyncConn, week: date, *, limit: int = 100, after: int | None = None
) -> list[VenueWeek]:
    """A week's venues by rank; `after` is the last row's rank."""
    async with conn.cursor(row_factory=class_row(VenueWeek)) as cur:
        await cur.execute(_WEEK_VENUES, {"week": week, "after": after, "limit": limit})
        return await cur.fetchall()


async def venue_history(
    conn: AsyncConn, mpid: str, *, limit: int = 100, after: date | None = None
) -> list[VenueWeek]:
    """One venue in every loaded week, oldest first; `after` is the last row's week."""
    async with conn.cursor(row_factory=class_row(VenueWeek)) as cur:
        await cur.execute(
            _VENUE_HISTORY, {"week": None, "mpid": mpid, "after": after, "limit": limit}
        )
        return await cur.fetchall()


async def symbols(
    conn: AsyncConn,
    week: date,
    *,
    symbol: str | None = None,
    mpid: str | None = None,
    min_shares: int | None = None,
    sort: SymbolSort = "shares",
    limit: int = 100,
    after: tuple[Decimal, str] | None = None,
) -> list[SymbolWeek]:
    """A week's symbols by `sort` descending, then symbol; `after` is the last row's
    (sort value, symbol), with -1 for a null HHI."""
    query = _WEEK_SYMBOLS.format(key=_SORT_KEYS[sort])
    params = {
        "week": week,
        "symbol": symbol,
        "mpid": mpid,
        "min_shares": min_shares,
        "after_key": after[0] if after else None,
        "after_symbol": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(SymbolWeek)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def sort_value(row: SymbolWeek, sort: SymbolSort) -> Decimal:
    """The keyset value of `row` under `sort` (what `symbols(after=...)` expects)."""
    if sort == "hhi":
        return row.hhi if row.hhi is not None else Decimal(-1)
    return Decimal(row.shares if sort == "shares" else row.trades)


async def symbol_history(
    conn: AsyncConn, symbol: str, *, limit: int = 100, after: date | None = None
) -> list[SymbolWeek]:
    """One symbol in every loaded week, oldest first; `after` is the last row's week."""
    params = {"week": None, "symbol": symbol, "mpid": None, "after": after, "limit": limit}
    async with conn.cursor(row_factory=class_row(SymbolWeek)) as cur:
        await cur.execute(_SYMBOL_HISTORY, params)
        return await cur.fetchall()
