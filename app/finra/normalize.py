"""Raw lines of one load -> finra_weekly_volume, set-based, with every decision counted.

A line is rejected, with the first reason that applies, when it is:
`empty_line`, `invalid_bytes` (not UTF-8 text), `wrong_column_count` (not 8
fields), `empty_tier`, `empty_symbol`, `empty_mpid`, `negative_shares`,
`bad_shares` (not a whole number of at most 18 digits), `negative_trades`,
`bad_trades`, `bad_date` (lastUpdateDate is not a real YYYY-MM-DD), or a
`duplicate_key`: a later line for a (symbol, MPID) the file already had (symbols
and MPIDs are stored upper-cased, so compared that way; the first one is kept).

The accepted rows are the new version of their (week, tier, venue kind): FINRA
republishes weeks, so a load replaces what is stored for the week, the tiers
it holds and its venue kind (`ats` or `non_ats`, given by the caller: FINRA
publishes each kind as its own file, so an ATS file never touches non-ATS rows).
Against the stored rows each accepted row is `inserted` (a new key),
`changed` (other shares, trades or names) or `unchanged`; stored rows whose
key the file no longer has are deleted and counted as `removed`. Always:
rows_read == inserted + changed + unchanged + rejected.

The file is refused (nothing is written) when its valid rows carry more than
one lastUpdateDate, when the week is not a Monday, or when a stored tier of
that week and kind came from a later lastUpdateDate (an older restatement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import LiteralString

from app.db import AsyncConn
from app.files import InvalidInputFile
from app.finra.venue_kinds import VenueKind

__all__ = ["NormalizeResult", "normalize_load"]

# Concurrent FINRA loads take turns from the diff to the commit (any week).
_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(hashtext('finra_weekly_volume'))"

# Fields are split and trimmed once per line (MATERIALIZED), then judged. Symbols
# and MPIDs are stored upper-cased: the API and the CLI look them up that way
# (app.finra.keys), and `aapl` and `AAPL` at one venue are one duplicate key.
_PARSE: LiteralString = """
    CREATE TEMP TABLE finra_parsed ON COMMIT DROP AS
    WITH split AS MATERIALIZED (
        SELECT line_no, line, cardinality(f) AS fields,
               btrim(f[1]) AS tier, upper(btrim(f[2])) AS symbol, btrim(f[3]) AS issue_name,
               btrim(f[4]) AS participant_name, upper(btrim(f[5])) AS mpid,
               btrim(f[6]) AS shares_text, btrim(f[7]) AS trades_text, btrim(f[8]) AS date_text
          FROM finra_stage_lines, string_to_array(line, '|') AS f
    ), judged AS MATERIALIZED (
        SELECT split.*, finra_parse_date(date_text) AS last_update_date,
               CASE
                   WHEN line IS NULL OR (fields = 1 AND tier = '') THEN 'empty_line'
                   WHEN strpos(line, U&'\\FFFD') > 0 THEN 'invalid_bytes'
                   WHEN fields <> 8 THEN 'wrong_column_count'
                   WHEN tier = '' THEN 'empty_tier'
                   WHEN symbol = '' THEN 'empty_symbol'
                   WHEN mpid = '' THEN 'empty_mpid'
                   WHEN shares_text ~ '^-[0-9]+$' THEN 'negative_shares'
                   WHEN shares_text !~ '^[0-9]+$' OR length(shares_text) > 18 THEN 'bad_shares'
                   WHEN trades_text ~ '^-[0-9]+$' THEN 'negative_trades'
                   WHEN trades_text !~ '^[0-9]+$' OR length(trades_text) > 18 THEN 'bad_trades'
                   WHEN finra_parse_date(date_text) IS NULL THEN 'bad_date'
               END AS reason
          FROM split
    )
    SELECT line_no, line, tier, symbol, issue_name, participant_name, mpid,
           CASE WHEN reason IS NULL THEN shares_text::bigint END AS shares,
           CASE WHEN reason IS NULL THEN trades_text::bigint END AS trades,
           last_update_date,
           CASE WHEN reason IS NULL AND row_number() OVER (
                    PARTITION BY reason IS NULL, symbol, mpid ORDER BY line_no) > 1
                THEN 'duplicate_key' ELSE reason END AS reason
      FROM judged
"""

# Records the rejects and counts them by reason.
_RECORD_REJECTS: LiteralString = """
    WITH recorded AS (
        INSERT INTO finra_weekly_rejects (load_id, line_no, reason, line)
        SELECT %(load_id)s, line_no, reason, left(line, 1000) FROM finra_parsed
         WHERE reason IS NOT NULL
        RETURNING reason
    )
    SELECT reason, count(*) AS n FROM recorded GROUP BY reason ORDER BY reason
"""

_FILE_ROWS: LiteralString = """
    CREATE TEMP TABLE finra_file_rows ON COMMIT DROP AS
    SELECT tier, symbol, issue_name, mpid, participant_name, shares, trades, last_update_date
      FROM finra_parsed
     WHERE reason IS NULL
"""

# One row per (symbol, MPID) (a later one is a `duplicate_key`). The index lets the
# delete of stored rows the file no longer has probe the file's rows: the stored
# side's estimate (week and kind) can be 1 row before ANALYZE has seen the kinds,
# and a nested loop over an unindexed file was 5328 x 2664 comparisons (10 s).
_FILE_ROWS_KEY: LiteralString = "CREATE UNIQUE INDEX ON finra_file_rows (symbol, mpid)"

_FILE_DATES: LiteralString = """
    SELECT last_update_date AS day, count(*) AS n FROM finra_file_rows GROUP BY 1 ORDER BY 1
"""

_LATER_STORED: LiteralString = """
    SELECT tier, max(last_update_date) AS day FROM finra_weekly_volume
     WHERE week_start = %(week)s AND venue_kind = %(venue_kind)s
       AND tier IN (SELECT DISTINCT tier FROM finra_file_rows)
     GROUP BY tier HAVING max(last_update_date) > %(day)s
     ORDER BY tier LIMIT 1
"""

# One statement, so every part sees the stored rows as they were before it:
# the file's rows are classified against them, stored keys the file no longer
# has are deleted, and the file's rows are upserted (new keys inserted; stored
# keys take the file's values, load_id moving only when shares, trades or
# names change; identical rows are not written at all).
_APPLY: LiteralString = """
    WITH classified AS (
        SELECT count(*) FILTER (WHERE v.symbol IS NULL) AS inserted,
               count(*) FILTER (WHERE v.symbol IS NOT NULL AND
                    (r.shares, r.trades, r.issue_name, r.participant_name)
                    IS DISTINCT FROM (v.shares, v.trades, v.issue_name, v.participant_name)
               ) AS changed
          FROM finra_file_rows r
          LEFT JOIN finra_weekly_volume v
            ON v.week_start = %(week)s AND v.tier = r.tier AND v.venue_kind = %(venue_kind)s
           AND v.symbol = r.symbol AND v.mpid = r.mpid
    ), removed AS (
        DELETE FROM finra_weekly_volume v
         WHERE v.week_start = %(week)s AND v.venue_kind = %(venue_kind)s
           AND v.tier IN (SELECT DISTINCT tier FROM finra_file_rows)
           AND NOT EXISTS (SELECT FROM finra_file_rows r
                            WHERE r.tier = v.tier AND r.symbol = v.symbol AND r.mpid = v.mpid)
        RETURNING 1
    ), upserted AS (
        INSERT INTO finra_weekly_volume AS v (week_start, tier, venue_kind, symbol, issue_name,
                                              mpid, participant_name, shares, trades,
                                              last_update_date, load_id)
        SELECT %(week)s, tier, %(venue_kind)s, symbol, issue_name, mpid, participant_name,
               shares, trades, last_update_date, %(load_id)s
          FROM finra_file_rows
        ON CONFLICT (week_start, tier, venue_kind, symbol, mpid) DO UPDATE
           SET issue_name = EXCLUDED.issue_name, participant_name = EXCLUDED.participant_name,
               shares = EXCLUDED.shares, trades = EXCLUDED.trades,
               last_update_date = EXCLUDED.last_update_date,
               load_id = CASE WHEN (v.shares, v.trades, v.issue_name, v.participant_name)
                                   IS DISTINCT FROM (EXCLUDED.shares, EXCLUDED.trades,
                                                     EXCLUDED.issue_name,
                                                     EXCLUDED.participant_name)
                              THEN EXCLUDED.load_id ELSE v.load_id END
         WHERE (v.shares, v.trades, v.issue_name, v.participant_name, v.last_update_date)
               IS DISTINCT FROM (EXCLUDED.shares, EXCLUDED.trades, EXCLUDED.issue_name,
                                 EXCLUDED.participant_name, EXCLUDED.last_update_date)
        RETURNING 1
    )
    SELECT inserted, changed, (SELECT count(*) FROM removed) AS removed FROM classified
"""


@dataclass(frozen=True)
class NormalizeResult:
    rows_read: int
    inserted: int
    changed: int
    removed: int
    unchanged: int
    rejected: int
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    week: date | None = None
    last_update_date: date | None = None

    def __post_init__(self) -> None:
        accounted = self.inserted + self.changed + self.unchanged + self.rejected
        if accounted != self.rows_read:
            raise AssertionError(f"normalization lost lines: read {self.rows_read}, {self}")


async def normalize_load(
    conn: AsyncConn, load_id: int, *, rows_read: int, week: date | None, venue_kind: VenueKind
) -> NormalizeResult:
    """Judge load `load_id`'s raw lines and make them the stored version of their week
    and tiers for `venue_kind`.

    One transaction (a savepoint inside the caller's) that owns the temporary
    tables its steps share, so no caller has to know their order.
    """
    params: dict[str, object] = {"load_id": load_id}
    async with conn.transaction():
        await conn.execute(_LOCK)
        await conn.execute(_PARSE)
        cur = await conn.execute(_RECORD_REJECTS, params)
        rejects = {str(r["reason"]): _int(r["n"]) for r in await cur.fetchall()}
        await conn.execute(_FILE_ROWS)
        await conn.execute(_FILE_ROWS_KEY)
        day = await _file_date(conn)
        week = _week_of(week, day)
        accepted = rows_read - sum(rejects.values())
        inserted = changed = removed = 0
        if week is not None and day is not None and accepted:
            params |= {"week": week, "day": day, "venue_kind": venue_kind}
            await _refuse_older(conn, params)
            cur = await conn.execute(_APPLY, params)
            counts = await cur.fetchone()
            assert counts is not None
            inserted, changed, removed = (
                _int(counts[k]) for k in ("inserted", "changed", "removed")
            )
    return NormalizeResult(
        rows_read=rows_read,
        inserted=inserted,
        changed=changed,
        removed=removed,
        unchanged=accepted - inserted - changed,
        rejected=sum(rejects.values()),
        rejects_by_reason=rejects,
        week=week,
        last_update_date=day,
    )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected a count, got {value!r}")
    return value


async def _file_date(conn: AsyncConn) -> date | None:
    """The one lastUpdateDate of the file's valid rows (None if it has none); mixed: refused."""
    cur = await conn.execute(_FILE_DATES)
    days = await cur.fetchall()
    if len(days) > 1:
        shown = ", ".join(f"{r['day']} ({r['n']} rows)" for r in days[:5])
        raise InvalidInputFile(
            f"the file mixes lastUpdateDate values: {shown}; one file is one publication"
        )
    if not days:
        return None
    day = days[0]["day"]
    assert isinstance(day, date)
    return day


def _week_of(week: date | None, day: date | None) -> date | None:
    """The week asked for, else the file's lastUpdateDate; it must be a Monday."""
    if week is None and day is not None:
        if day.weekday() != 0:
            raise InvalidInputFile(
                f"the file's lastUpdateDate {day} is not a Monday; pass the week (its Monday)"
            )
        return day
    if week is not None and week.weekday() != 0:
        raise InvalidInputFile(f"week {week} is not a Monday")
    return week


async def _refuse_older(conn: AsyncConn, params: dict[str, object]) -> None:
    cur = await conn.execute(_LATER_STORED, params)
    row = await cur.fetchone()
    if row is not None:
        raise InvalidInputFile(
            f"week {params['week']} tier {row['tier']!r} ({params['venue_kind']}) is loaded "
            f"from lastUpdateDate {row['day']}; this file's {params['day']} is older (refused)"
        )
