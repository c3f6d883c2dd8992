"""All SQL for OTC trades: loads, raw lines, rejects, trades, daily metrics.

Writes are set-based statements over a whole load; the services call them in
order inside one transaction (see app/pipelines/otc.py). Several statements
share per-transaction temporary tables (`ON COMMIT DROP`):

- `otc_check_lines(line_no)`: lines the connector could not prove valid;
- `otc_checked`: those lines parsed by `otc_parse_line` (reason or typed trade);
- `otc_touched(symbol, trade_date)`: the metric pairs this load changed.

Read queries for the API and CLI return msgspec Structs (`DailyMetric`,
`Trade`, `Load`, `Reject`), ordered for keyset pagination: pass the last row's
key as `after` to get the next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import class_row, kwargs_row
from psycopg.types.json import Jsonb

from app.db import AsyncConn

__all__ = [
    "COPY_RAW_LINES",
    "TRADES_LOCK",
    "DailyMetric",
    "Load",
    "Reject",
    "Trade",
    "begin_raw_copy",
    "create_load",
    "daily_metrics",
    "finish_load",
    "get_load",
    "insert_new_trades",
    "lock_trades",
    "parse_check_lines",
    "recompute_metrics",
    "recompute_touched_metrics",
    "record_rejects",
    "rejects",
    "resolve_repeats",
    "start_touched",
    "trades",
]

# Serializes every writer of otc_trades and otc_metrics_daily (ingest, recompute):
# a load's duplicate/correction decisions and a metrics recompute read what the
# previous writer committed. Taken per transaction, after the COPY.
TRADES_LOCK = 0x4F5443_7472  # "OTC" "tr"

# Every line becomes one row with one column: \x01 and \x02 never reach the
# server (the connector replaces them), so no line is ever split or quoted by COPY.
COPY_RAW_LINES: LiteralString = (
    "COPY otc_trades_raw (line) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
)

VWAP_DECIMALS = 10
LOAD_WORK_MEM = "64MB"


class Load(msgspec.Struct, frozen=True):
    """An otc_loads row: one file loaded by one execution."""

    id: int
    execution_id: str
    source_file: str
    file_bytes: int
    file_sha256: str | None
    market_tz: str
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None


class Reject(msgspec.Struct, frozen=True):
    line_no: int
    reason: str
    line: str | None


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


# --- loads -------------------------------------------------------------------


async def get_load(conn: AsyncConn, execution_id: str) -> Load | None:
    async with conn.cursor(row_factory=class_row(Load)) as cur:
        await cur.execute("SELECT * FROM otc_loads WHERE execution_id = %s", (execution_id,))
        return await cur.fetchone()


async def create_load(
    conn: AsyncConn, *, execution_id: str, source_file: str, file_bytes: int, market_tz: str
) -> int:
    """Insert the load's row; returns its id. Blocks while another attempt holds the id."""
    cur = await conn.execute(
        """
        INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz)
        VALUES (%s, %s, %s, %s) RETURNING id
        """,
        (execution_id, source_file, file_bytes, market_tz),
    )
    return _count(await cur.fetchone(), "id")


async def finish_load(
    conn: AsyncConn, load_id: int, *, file_sha256: str, summary: dict[str, Any]
) -> None:
    await conn.execute(
        """
        UPDATE otc_loads SET file_sha256 = %s, summary = %s, finished_at = clock_timestamp()
        WHERE id = %s
        """,
        (file_sha256, Jsonb(summary), load_id),
    )


# --- raw lines ---------------------------------------------------------------


async def begin_raw_copy(conn: AsyncConn, load_id: int) -> None:
    """Arm otc_trades_raw's defaults for this transaction: this load's id, lines from 2."""
    cur = await conn.execute("SELECT to_regclass('pg_temp.otc_line_seq') IS NULL AS missing")
    row = await cur.fetchone()
    if row is not None and row["missing"]:
        await conn.execute("CREATE TEMP SEQUENCE otc_line_seq")  # lives as long as the session
    await conn.execute(
        "SELECT set_config('spine.otc_load_id', %s, true), setval('pg_temp.otc_line_seq', 1)",
        (str(load_id),),
    )


# --- normalization -----------------------------------------------------------


async def lock_trades(conn: AsyncConn) -> None:
    """Wait for, then hold until commit, the right to write trades and metrics."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (TRADES_LOCK,))


async def parse_check_lines(conn: AsyncConn, load_id: int, line_nos: Sequence[int]) -> None:
    """Parse the lines the connector flagged with the full rules, into pg_temp.otc_checked."""
    await conn.execute(
        """
        CREATE TEMP TABLE otc_check_lines ON COMMIT DROP AS
        SELECT DISTINCT line_no FROM unnest(%s::bigint[]) AS line_no
        WHERE line_no IS NOT NULL  -- NOT IN would match nothing past a NULL
        """,
        (list(line_nos),),
    )
    await conn.execute(
        """
        CREATE TEMP TABLE otc_checked ON COMMIT DROP AS
        SELECT r.line_no, r.line, p.*
          FROM otc_trades_raw r
          JOIN pg_temp.otc_check_lines c ON c.line_no = r.line_no
         CROSS JOIN LATERAL otc_parse_line(r.line) AS p
         WHERE r.load_id = %s
        """,
        (load_id,),
    )


async def record_rejects(conn: AsyncConn, load_id: int) -> dict[str, int]:
    """Store the rejected lines of this load with their reasons; returns counts by reason."""
    await conn.execute(
        """
        INSERT INTO otc_trades_rejects (load_id, line_no, reason, line)
        SELECT %s, line_no, reason, left(line, 1000) FROM pg_temp.otc_checked
         WHERE reason IS NOT NULL
        """,
        (load_id,),
    )
    cur = await conn.execute(
        """
        SELECT reason, count(*) AS n FROM pg_temp.otc_checked
         WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason
        """
    )
    return {str(row["reason"]): _count(row) for row in await cur.fetchall()}


# The load's valid lines, typed: the plain lines straight from raw (the connector
# proved them valid, so the casts cannot fail), plus the flagged lines that
# otc_parse_line accepted. OFFSET 0 keeps the timestamp parsed once per line.
# {exclude_flagged} keeps the flagged lines out of the raw branch (see below).
_VALID_LINES: LiteralString = """
    SELECT line_no, trade_id, symbol, executed_at,
           (executed_at AT TIME ZONE %(tz)s)::date AS trade_date, price, size, side, venue
      FROM ((SELECT r.line_no,
                    split_part(r.line, ',', 1) AS trade_id,
                    split_part(r.line, ',', 2) AS symbol,
                    split_part(r.line, ',', 3)::timestamptz AS executed_at,
                    split_part(r.line, ',', 4)::numeric(18, 6) AS price,
                    split_part(r.line, ',', 5)::bigint AS size,
                    upper(left(split_part(r.line, ',', 6), 1)) AS side,
                    split_part(r.line, ',', 7) AS venue
               FROM otc_trades_raw r
              WHERE r.load_id = %(load_id)s
              {exclude_flagged})
            UNION ALL
            SELECT line_no, trade_id, symbol, executed_at, price, size, side, venue
              FROM pg_temp.otc_checked WHERE reason IS NULL
            OFFSET 0) AS v
"""

# How the raw branch leaves out the flagged lines, keeping the file's order
# (inserts in file order are what keep otc_trades' primary key cheap):
# - up to HASHED_EXCLUSION_MAX flagged lines, NOT IN: a hashed filter on the raw
#   scan. (NOT EXISTS could plan as a hash anti join that hashed the raw side,
#   whose estimate is one row for a new load, and emitted rows in hash order:
#   that made the insert twice as slow.)
# - beyond that (a file of mostly unusual lines) the planner would not hash the
#   NOT IN list and would rescan it per line, so an anti join and a sort.
HASHED_EXCLUSION_MAX = 1_000_000
_EXCLUDE_FEW = sql.SQL("AND r.line_no NOT IN (SELECT line_no FROM pg_temp.otc_check_lines)")
_EXCLUDE_MANY = sql.SQL(
    "AND NOT EXISTS (SELECT FROM pg_temp.otc_check_lines c WHERE c.line_no = r.line_no)"
    " ORDER BY r.line_no"
)


def _exclude_flagged(flagged: int) -> sql.SQL:
    return _EXCLUDE_FEW if flagged <= HASHED_EXCLUSION_MAX else _EXCLUDE_MANY


def _same_trade(a: str, b: str) -> str:
    """SQL: trades `a` and `b` (table aliases) have the same values."""
    columns = ("symbol", "executed_at", "trade_date", "price", "size", "side", "venue")
    left = ", ".join(f"{a}.{c}" for c in columns)
    right = ", ".join(f"{b}.{c}" for c in columns)
    return f"({left}) IS NOT DISTINCT FROM ({right})"


_SAME_V_T = _same_trade("v", "t")  # a line and the stored trade
_SAME_A_B = _same_trade("a", "b")  # a line and the final line of its trade id
_SAME_A_T = _same_trade("a", "t")


def _count(row: dict[str, object] | None, key: str = "n") -> int:
    assert row is not None
    value = row[key]
    assert isinstance(value, int)
    return value


async def start_touched(conn: AsyncConn) -> None:
    """Per-transaction settings and the touched-pairs table for one load's normalization."""
    # Sorts and hashes over a whole file stay in memory (one load at a time holds the lock).
    await conn.execute("SELECT set_config('work_mem', %s, true)", (LOAD_WORK_MEM,))
    await conn.execute(
        "CREATE TEMP TABLE otc_touched (symbol text, trade_date date) ON COMMIT DROP"
    )


# New trades into otc_trades, their (symbol, date) pairs into otc_touched; counts them.
_INSERT_VALID: LiteralString = f"""
    WITH inserted AS (
        INSERT INTO otc_trades (trade_id, symbol, executed_at, trade_date, price, size,
                                side, venue, load_id, line_no)
        SELECT trade_id, symbol, executed_at, trade_date, price, size, side, venue,
               %(load_id)s, line_no
          FROM ({_VALID_LINES}) AS valid
        {{on_conflict}}
        RETURNING symbol, trade_date
    ), pairs AS (
        INSERT INTO pg_temp.otc_touched (symbol, trade_date)
        SELECT symbol, trade_date FROM inserted GROUP BY symbol, trade_date
    )
    SELECT count(*) AS n FROM inserted
"""


async def insert_new_trades(
    conn: AsyncConn, load_id: int, market_tz: str, *, flagged: int
) -> tuple[int, bool]:
    """Insert the valid lines whose trade id is new; returns (inserted, every_line_inserted).

    First as a plain INSERT (the common case, a file of new trades, and the
    cheapest); if some id exists already or repeats in the file, that attempt
    is rolled back and `ON CONFLICT DO NOTHING` inserts each new id once,
    leaving the other lines to `resolve_repeats`. `flagged` is how many lines
    the connector flagged (see `_exclude_flagged`).
    """
    params = {"load_id": load_id, "tz": market_tz}
    exclude = _exclude_flagged(flagged)
    try:
        async with conn.transaction():  # a savepoint
            query = sql.SQL(_INSERT_VALID).format(on_conflict=sql.SQL(""), exclude_flagged=exclude)
            cur = await conn.execute(query, params)
            return _count(await cur.fetchone()), True
    except psycopg.errors.UniqueViolation:
        pass
    on_conflict = sql.SQL("ON CONFLICT (trade_id) DO NOTHING")
    cur = await conn.execute(
        sql.SQL(_INSERT_VALID).format(on_conflict=on_conflict, exclude_flagged=exclude), params
    )
    return _count(await cur.fetchone()), False


async def resolve_repeats(
    conn: AsyncConn, load_id: int, market_tz: str, *, flagged: int
) -> tuple[int, int]:
    """Settle the lines `insert_new_trades` skipped; returns (duplicates, corrections).

    For each trade id with such lines, the file's last valid line for it wins.
    That final line is a duplicate or a correction of the trade as stored
    before this load (or, for an id new in this load, was counted as
    inserted); every earlier line is a duplicate or a correction of the final
    line. Stored trades that differ from their final line are updated, and
    both their old and new (symbol, date) pairs are marked touched.
    """
    params = {"load_id": load_id, "tz": market_tz}
    # The skipped lines, each with the trade stored under its id: stored before
    # this load (new_in_load false) or inserted by it from an earlier line.
    await conn.execute(
        sql.SQL(
            f"""
            CREATE TEMP TABLE otc_skipped ON COMMIT DROP AS
            SELECT v.*, t.load_id = %(load_id)s AS new_in_load, {_SAME_V_T} AS same_as_stored
              FROM ({_VALID_LINES}) AS v
              JOIN otc_trades t ON t.trade_id = v.trade_id
             WHERE NOT (t.load_id = %(load_id)s AND t.line_no = v.line_no)
            """
        ).format(exclude_flagged=_exclude_flagged(flagged)),
        params,
    )
    cur = await conn.execute(
        """
        SELECT EXISTS (SELECT FROM pg_temp.otc_skipped WHERE new_in_load)
            OR EXISTS (SELECT FROM pg_temp.otc_skipped GROUP BY trade_id HAVING count(*) > 1)
            AS repeats
        """
    )
    row = await cur.fetchone()
    counts: dict[str, object] | None
    if row is not None and row["repeats"]:
        counts = await _settle_repeated_ids(conn, params)
        final = "otc_final"
    else:
        # Each skipped line is the only one for its id, and its id was stored before.
        cur = await conn.execute(
            """
            SELECT count(*) FILTER (WHERE same_as_stored) AS duplicates,
                   count(*) FILTER (WHERE NOT same_as_stored) AS corrections
              FROM pg_temp.otc_skipped
            """
        )
        counts = await cur.fetchone()
        final = "otc_skipped"
    await conn.execute(
        sql.SQL(_APPLY_FINAL_LINES).format(final=sql.Identifier("pg_temp", final)), params
    )
    return _count(counts, "duplicates"), _count(counts, "corrections")


async def _settle_repeated_ids(conn: AsyncConn, params: dict[str, Any]) -> dict[str, object]:
    """Counts when some trade id has several valid lines in the file; builds otc_final."""
    # Every valid line of the ids concerned: the skipped ones plus, for ids new in
    # this load, the line the insert took.
    await conn.execute(
        """
        CREATE TEMP TABLE otc_lines ON COMMIT DROP AS
        SELECT line_no, trade_id, symbol, executed_at, trade_date, price, size, side, venue,
               new_in_load, same_as_stored
          FROM pg_temp.otc_skipped
        UNION ALL
        SELECT line_no, trade_id, symbol, executed_at, trade_date, price, size, side, venue,
               true, NULL
          FROM otc_trades
         WHERE load_id = %(load_id)s
           AND trade_id IN (SELECT trade_id FROM pg_temp.otc_skipped WHERE new_in_load)
        """,
        params,
    )
    await conn.execute(
        """
        CREATE TEMP TABLE otc_final ON COMMIT DROP AS
        SELECT DISTINCT ON (trade_id) * FROM pg_temp.otc_lines ORDER BY trade_id, line_no DESC
        """
    )
    cur = await conn.execute(
        f"""
        WITH verdict AS (
            SELECT CASE WHEN a.line_no <> b.line_no THEN {_SAME_A_B}
                        WHEN a.new_in_load THEN NULL  -- the final line of a new id: inserted
                        ELSE a.same_as_stored
                   END AS same
              FROM pg_temp.otc_lines a JOIN pg_temp.otc_final b USING (trade_id)
        )
        SELECT count(*) FILTER (WHERE same) AS duplicates,
               count(*) FILTER (WHERE NOT same) AS corrections
          FROM verdict
        """
    )
    counts = await cur.fetchone()
    assert counts is not None
    return counts


# Make each stored trade equal its final line (a correction), marking the old and
# new pairs touched. {final} holds one line per trade id.
_APPLY_FINAL_LINES: LiteralString = f"""
    WITH changed AS (
        UPDATE otc_trades t
           SET symbol = a.symbol, executed_at = a.executed_at, trade_date = a.trade_date,
               price = a.price, size = a.size, side = a.side, venue = a.venue,
               load_id = %(load_id)s, line_no = a.line_no
          FROM {{final}} a
         WHERE t.trade_id = a.trade_id AND NOT {_SAME_A_T}
        RETURNING a.trade_id
    ), old_pairs AS (
        -- The statement's snapshot still shows the trades as they were.
        SELECT o.symbol, o.trade_date FROM otc_trades o JOIN changed USING (trade_id)
    )
    INSERT INTO pg_temp.otc_touched (symbol, trade_date)
    SELECT symbol, trade_date FROM old_pairs
    UNION
    SELECT symbol, trade_date FROM {{final}} a WHERE a.trade_id IN (SELECT trade_id FROM changed)
"""


# --- metrics -----------------------------------------------------------------

# Exact VWAP: total_notional / total_volume rounded half up to VWAP_DECIMALS places,
# by integer division (no intermediate rounding, unlike numeric `/`).
_VWAP: LiteralString = (
    "div(total_notional * 20000000000 + total_volume, total_volume * 2) * 0.0000000001"
)
assert VWAP_DECIMALS == 10  # the literals above

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


async def recompute_touched_metrics(conn: AsyncConn) -> int:
    """Recompute the pairs in pg_temp.otc_touched; returns metric rows changed or deleted.

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
    return _count(await cur.fetchone())


async def recompute_metrics(
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
    return _count(await cur.fetchone())


# --- reads for the API and CLI ---------------------------------------------------


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
    conditions: list[sql.Composable] = []
    if symbol is not None:
        conditions.append(sql.SQL("symbol = %(symbol)s"))
    if start_date is not None:
        conditions.append(sql.SQL("trade_date >= %(start)s"))
    if end_date is not None:
        conditions.append(sql.SQL("trade_date <= %(end)s"))
    if after is not None:
        conditions.append(sql.SQL("(symbol, trade_date) > (%(after_symbol)s, %(after_date)s)"))
    query = sql.SQL(
        """
        SELECT symbol, trade_date AS date, trade_count, total_volume, total_notional, vwap,
               high_price, low_price
          FROM otc_metrics_daily
         WHERE {where}
         ORDER BY symbol, trade_date
         LIMIT %(limit)s
        """
    ).format(where=sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true"))
    params = {
        "symbol": symbol,
        "start": start_date,
        "end": end_date,
        "after_symbol": after[0] if after else None,
        "after_date": after[1] if after else None,
        "limit": limit,
    }
    async with conn.cursor(row_factory=kwargs_row(_daily_metric)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def _daily_metric(*, total_volume: Decimal, **values: Any) -> DailyMetric:
    return DailyMetric(total_volume=int(total_volume), **values)


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


async def rejects(
    conn: AsyncConn, execution_id: str, limit: int = 100, after_line: int | None = None
) -> list[Reject]:
    """The rejected lines of the load run by an execution, by line number."""
    async with conn.cursor(row_factory=class_row(Reject)) as cur:
        await cur.execute(
            """
        SELECT j.line_no, j.reason, j.line
          FROM otc_trades_rejects j JOIN otc_loads l ON l.id = j.load_id
         WHERE l.execution_id = %(execution_id)s AND j.line_no > %(after)s
         ORDER BY j.line_no
         LIMIT %(limit)s
        """,
            {"execution_id": execution_id, "after": after_line or 0, "limit": limit},
        )
        return await cur.fetchall()
