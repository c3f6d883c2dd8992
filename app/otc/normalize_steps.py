"""The statements of one load's normalization, in the order `normalize.normalize_load` runs them.

They share per-transaction temporary tables (`ON COMMIT DROP`), which is why
only `normalize_load` calls them:

- `otc_check_lines(line_no)`: lines the connector could not prove valid;
- `otc_checked`: those lines parsed by `otc_parse_line` (reason or typed trade);
- `otc_touched(symbol, trade_date)`: the metric pairs this load changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from app.db import AsyncConn
from app.otc.loads import count

__all__ = [
    "insert_new_trades",
    "parse_check_lines",
    "record_rejects",
    "resolve_repeats",
    "start_touched",
]

LOAD_WORK_MEM = "64MB"


async def parse_check_lines(conn: AsyncConn, load_id: int, line_nos: Iterable[bytes]) -> None:
    """Parse the lines the connector flagged with the full rules, into pg_temp.otc_checked.

    `line_nos` is COPY text, one distinct line number per line, streamed in
    chunks: memory does not grow with the number of flagged lines.
    """
    await conn.execute(
        # NOT NULL: NOT IN would match nothing past a NULL.
        "CREATE TEMP TABLE otc_check_lines (line_no bigint NOT NULL) ON COMMIT DROP"
    )
    async with conn.cursor() as cur, cur.copy("COPY pg_temp.otc_check_lines FROM STDIN") as copy:
        for chunk in line_nos:
            await copy.write(chunk)
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
    return {str(row["reason"]): count(row) for row in await cur.fetchall()}


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
            return count(await cur.fetchone()), True
    except psycopg.errors.UniqueViolation:
        pass
    on_conflict = sql.SQL("ON CONFLICT (trade_id) DO NOTHING")
    cur = await conn.execute(
        sql.SQL(_INSERT_VALID).format(on_conflict=on_conflict, exclude_flagged=exclude), params
    )
    return count(await cur.fetchone()), False


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
    return count(counts, "duplicates"), count(counts, "corrections")


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
