"""Staged lines of one file -> ftd_fails, set-based: trailers checked, every line judged.

The file ends with two trailer lines, `Trailer record count N` and `Trailer total
quantity of shares N` (the last two lines that are not blank). N must be the
number of data lines (every line between the header and the trailers) and the
sum of their quantities (of every line whose quantity is a whole number: a
line whose quantity is not one cannot add to it). A file whose trailers are
missing or do not match is refused whole: `InvalidInputFile`, nothing written.

A data line is rejected, with the first reason that applies, when it is:
`empty_line`, `invalid_bytes` (not UTF-8 text), `wrong_column_count` (not 6
fields), `bad_date` (not a real YYYYMMDD), `date_outside_period` (not in the
file's half-month: `a` the 1st to the 14th, `b` the 15th to the end),
`bad_cusip` (not 9 characters of 0-9 A-Z * @ # ending in a digit),
`cusip_check_digit` (the last digit is not the check digit), `negative_quantity`,
`bad_quantity` (not a whole number of at most 18 digits), `bad_price` (not a
decimal and not `.`), or a `duplicate_key`: a later line for a (settlement
date, CUSIP) the file already had (the first one is kept).

The accepted rows are the new version of their half-month: the SEC republishes
files, so a load replaces what is stored for the period. Against the stored
rows each accepted row is `inserted` (a new key), `changed` (another symbol,
quantity, description or price) or `unchanged`; stored rows whose key the file
no longer has are deleted and counted as `removed`. Always:
rows_read == inserted + changed + unchanged + rejected.

Kept as published: the symbol (case and all), the quantity, the price (`.` is
NULL: unknown, never zero); the description loses its trailing spaces only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import LiteralString

from app.db import AsyncConn
from app.files import InvalidInputFile

__all__ = ["NormalizeResult", "Trailers", "normalize_load"]

# Concurrent FTD loads take turns from the judgement to the commit (any period).
_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(hashtext('ftd_fails'))"

# The last lines (the trailers, then perhaps blank lines): line numbers start at 2.
_TAIL: LiteralString = """
    SELECT line_no, line FROM ftd_stage_lines WHERE line_no > %(last)s - %(window)s
     ORDER BY line_no DESC
"""
_TAIL_WINDOW = 16  # blank lines after the trailers beyond these: no trailers found
_COUNT = re.compile(r"Trailer record count ([0-9]{1,18})")
_TOTAL = re.compile(r"Trailer total quantity of shares ([0-9]{1,30})")

# Fields are split once per line, then judged with cheap string tests (translate
# and length: a regular expression costs several times more per line). A file
# has about ten distinct dates and a fifth as many CUSIPs as lines, so dates are
# parsed and CUSIPs checked (shape and check digit) once per distinct value.
# Duplicates are numbered over the narrow (date, CUSIP, line) of accepted lines,
# a sort that stays in memory. Lines from the first trailer on are not data.
_PARSE: LiteralString = r"""
    CREATE TEMP TABLE ftd_parsed ON COMMIT DROP AS
    WITH split AS MATERIALIZED (
        SELECT line_no, line, cardinality(f) AS fields, f[1] AS date_text,
               f[2] COLLATE "C" AS cusip, f[3] COLLATE "C" AS symbol, f[4] AS quantity_text,
               f[5] AS description, f[6] AS price_text
          FROM ftd_stage_lines LEFT JOIN LATERAL string_to_array(line, '|') AS f ON true
         WHERE line_no < %(trailer_line)s
    ), dates AS (
        SELECT date_text,
               CASE WHEN ymd / 10000 BETWEEN 1900 AND 2999 AND ymd / 100 %% 100 BETWEEN 1 AND 12
                     AND ymd %% 100 BETWEEN 1 AND (CASE
                         WHEN ymd / 100 %% 100 IN (4, 6, 9, 11) THEN 30
                         WHEN ymd / 100 %% 100 <> 2 THEN 31
                         WHEN ymd / 10000 %% 4 = 0
                          AND (ymd / 10000 %% 100 <> 0 OR ymd / 10000 %% 400 = 0) THEN 29
                         ELSE 28 END)
                    THEN make_date(ymd / 10000, ymd / 100 %% 100, ymd %% 100) END
                   AS settlement_date
          FROM (SELECT date_text,
                       CASE WHEN length(date_text) = 8
                             AND translate(date_text, '0123456789', '') = ''
                            THEN date_text::int END AS ymd
                  FROM (SELECT DISTINCT date_text FROM split) AS d) AS typed
    ), cusips AS (
        SELECT cusip, shaped, shaped AND ftd_cusip_check_ok(cusip) AS check_ok
          FROM (SELECT cusip, length(cusip) = 9
                       AND translate(cusip, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*@#', '') = ''
                       AND translate(right(cusip, 1), '0123456789', '') = '' AS shaped
                  FROM (SELECT DISTINCT cusip FROM split) AS c) AS typed
    ), judged AS MATERIALIZED (
        SELECT split.*, dates.settlement_date,
               CASE WHEN length(quantity_text) BETWEEN 1 AND 30
                     AND translate(quantity_text, '0123456789', '') IN ('', '-')
                     AND strpos(substr(quantity_text, 2), '-') = 0 AND quantity_text <> '-'
                    THEN quantity_text::numeric END AS quantity_number,
               CASE
                   WHEN line IS NULL OR line = '' THEN 'empty_line'
                   WHEN strpos(line, U&'\FFFD') > 0 THEN 'invalid_bytes'
                   WHEN fields <> 6 THEN 'wrong_column_count'
                   WHEN dates.settlement_date IS NULL THEN 'bad_date'
                   WHEN dates.settlement_date NOT BETWEEN %(first_day)s AND %(last_day)s
                       THEN 'date_outside_period'
                   WHEN NOT cusips.shaped THEN 'bad_cusip'
                   WHEN NOT cusips.check_ok THEN 'cusip_check_digit'
                   WHEN left(quantity_text, 1) = '-' AND length(quantity_text) > 1
                    AND translate(quantity_text, '0123456789', '') = '-'
                       THEN 'negative_quantity'
                   WHEN quantity_text = '' OR length(quantity_text) > 18
                     OR translate(quantity_text, '0123456789', '') <> ''
                       THEN 'bad_quantity'
                   WHEN price_text <> '.'
                    AND (price_text = '' OR length(price_text) > 30
                         OR translate(price_text, '0123456789', '') NOT IN ('', '.'))
                       THEN 'bad_price'
               END AS reason
          FROM split
          LEFT JOIN dates ON dates.date_text = split.date_text
          LEFT JOIN cusips ON cusips.cusip = split.cusip
    ), duplicates AS (
        SELECT line_no FROM (
            SELECT line_no, row_number() OVER (
                       PARTITION BY settlement_date, cusip ORDER BY line_no) AS nth
              FROM judged WHERE reason IS NULL) AS numbered
         WHERE nth > 1
    )
    SELECT j.line_no, j.line, j.settlement_date, j.cusip, j.symbol, j.quantity_number,
           CASE WHEN j.reason IS NULL THEN j.quantity_text::bigint END AS quantity,
           rtrim(j.description, ' ') AS description,
           CASE WHEN j.reason IS NULL AND j.price_text <> '.' THEN j.price_text::numeric END
               AS price,
           CASE WHEN d.line_no IS NOT NULL THEN 'duplicate_key' ELSE j.reason END AS reason
      FROM judged j LEFT JOIN duplicates d ON d.line_no = j.line_no
"""

# What the trailers state, from the data lines as written.
_TALLY: LiteralString = """
    SELECT count(*) AS lines, coalesce(sum(quantity_number), 0) AS quantity FROM ftd_parsed
"""

# Records the rejects and counts them by reason.
_RECORD_REJECTS: LiteralString = """
    WITH recorded AS (
        INSERT INTO ftd_rejects (load_id, line_no, reason, line)
        SELECT %(load_id)s, line_no, reason, left(line, 1000) FROM ftd_parsed
         WHERE reason IS NOT NULL
        RETURNING reason
    )
    SELECT reason, count(*) AS n FROM recorded GROUP BY reason ORDER BY reason
"""

# The period's row, after its rows were replaced: the load, the trailers and what
# is now stored (the file's accepted rows, exactly).
_PERIOD: LiteralString = """
    INSERT INTO ftd_periods AS p (period, load_id, trailer_record_count,
                                  trailer_total_quantity, rejected, rows, securities,
                                  total_quantity, settlement_dates, first_date, last_date,
                                  loaded_at)
    SELECT %(period)s, %(load_id)s, %(trailer_count)s, %(trailer_quantity)s, %(rejected)s,
           count(*), count(DISTINCT cusip), coalesce(sum(quantity), 0),
           count(DISTINCT settlement_date), min(settlement_date), max(settlement_date), now()
      FROM ftd_parsed WHERE reason IS NULL
    ON CONFLICT (period) DO UPDATE
       SET load_id = EXCLUDED.load_id, trailer_record_count = EXCLUDED.trailer_record_count,
           trailer_total_quantity = EXCLUDED.trailer_total_quantity,
           rejected = EXCLUDED.rejected, rows = EXCLUDED.rows,
           securities = EXCLUDED.securities, total_quantity = EXCLUDED.total_quantity,
           settlement_dates = EXCLUDED.settlement_dates, first_date = EXCLUDED.first_date,
           last_date = EXCLUDED.last_date, loaded_at = EXCLUDED.loaded_at
    RETURNING total_quantity AS quantity, settlement_dates AS dates
"""

# The period's stored rows (a range of the primary key) against the file's:
# those that differ or are gone are deleted, and counted. `_INSERT` then adds
# every file row not stored (new, or deleted here as changed): a plain INSERT,
# several times cheaper per row than an upsert, and identical rows are not written.
_CLASSIFY_DELETE: LiteralString = """
    WITH stored AS MATERIALIZED (
        SELECT f.settlement_date, f.cusip, r.cusip IS NULL AS gone,
               (f.symbol, f.quantity, f.description, f.price)
               IS DISTINCT FROM (r.symbol, r.quantity, r.description, r.price) AS differs
          FROM ftd_fails f
          LEFT JOIN ftd_parsed r
            ON r.reason IS NULL AND r.settlement_date = f.settlement_date AND r.cusip = f.cusip
         WHERE f.settlement_date BETWEEN %(first_day)s AND %(last_day)s
    ), deleted AS (
        DELETE FROM ftd_fails f USING stored s
         WHERE s.differs AND f.settlement_date = s.settlement_date AND f.cusip = s.cusip
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE differs AND NOT gone) AS changed,
           count(*) FILTER (WHERE gone) AS removed,
           (SELECT count(*) FROM deleted) AS deleted
      FROM stored
"""

_INSERT: LiteralString = """
    INSERT INTO ftd_fails (settlement_date, cusip, period, symbol, quantity, description,
                           price, load_id)
    SELECT settlement_date, cusip, %(period)s, symbol, quantity, description, price,
           %(load_id)s
      FROM ftd_parsed r
     WHERE r.reason IS NULL
       AND NOT EXISTS (SELECT FROM ftd_fails f
                        WHERE f.settlement_date BETWEEN %(first_day)s AND %(last_day)s
                          AND f.settlement_date = r.settlement_date AND f.cusip = r.cusip)
"""


@dataclass(frozen=True)
class Trailers:
    """What the file's two trailer lines state."""

    record_count: int
    total_quantity: int
    line_no: int  # the first trailer's line number (data lines are before it)


@dataclass(frozen=True)
class NormalizeResult:
    rows_read: int
    inserted: int
    changed: int
    removed: int
    unchanged: int
    rejected: int
    quantity: int  # the sum of the loaded rows' quantities
    settlement_dates: int
    trailers: Trailers
    rejects_by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        accounted = self.inserted + self.changed + self.unchanged + self.rejected
        if accounted != self.rows_read:
            raise AssertionError(f"normalization lost lines: read {self.rows_read}, {self}")


async def normalize_load(
    conn: AsyncConn, load_id: int, *, lines: int, period: str, first_day: date, last_day: date
) -> NormalizeResult:
    """Check the staged file's trailers, judge its lines and make them the stored period.

    One transaction (a savepoint inside the caller's) that owns the temporary
    tables its steps share, so no caller has to know their order.
    """
    params: dict[str, object] = {
        "load_id": load_id,
        "period": period,
        "first_day": first_day,
        "last_day": last_day,
    }
    async with conn.transaction():
        await conn.execute(_LOCK)
        trailers = await _trailers(conn, lines)
        await conn.execute(_PARSE, params | {"trailer_line": trailers.line_no})
        rows_read = await _check_tally(conn, trailers)
        cur = await conn.execute(_RECORD_REJECTS, params)
        rejects = {str(r["reason"]): _int(r["n"]) for r in await cur.fetchall()}
        rejected = sum(rejects.values())
        if rejected == rows_read:
            raise InvalidInputFile(f"no line of the file is a valid row ({rejected} rejected)")
        cur = await conn.execute(_CLASSIFY_DELETE, params)
        stored = await cur.fetchone()
        assert stored is not None
        cur = await conn.execute(_INSERT, params)
        written = cur.rowcount
        cur = await conn.execute(
            _PERIOD,
            params
            | {
                "trailer_count": trailers.record_count,
                "trailer_quantity": trailers.total_quantity,
                "rejected": rejected,
            },
        )
        loaded = await cur.fetchone()
        assert loaded is not None
    changed = _int(stored["changed"])
    assert _int(stored["deleted"]) == changed + _int(stored["removed"]), stored
    inserted = written - changed
    return NormalizeResult(
        rows_read=rows_read,
        inserted=inserted,
        changed=changed,
        removed=_int(stored["removed"]),
        unchanged=rows_read - rejected - inserted - changed,
        rejected=rejected,
        quantity=int(_decimal(loaded["quantity"])),
        settlement_dates=_int(loaded["dates"]),
        trailers=trailers,
        rejects_by_reason=rejects,
    )


async def _trailers(conn: AsyncConn, lines: int) -> Trailers:
    """The two trailer lines, which must be the file's last lines that are not blank.

    `lines` is how many lines were staged (numbered from 2).
    """
    params = {"last": lines + 1, "window": _TAIL_WINDOW}
    rows = await (await conn.execute(_TAIL, params)).fetchall()
    found = [(_int(r["line_no"]), str(r["line"] or "").rstrip()) for r in rows]
    tail = [(no, line) for no, line in found if line.strip()][:2][::-1]
    count = _COUNT.fullmatch(tail[0][1]) if len(tail) == 2 else None
    total = _TOTAL.fullmatch(tail[1][1]) if len(tail) == 2 else None
    if count is None or total is None:
        shown = " / ".join(repr(line[:80]) for _, line in tail) or "nothing"
        raise InvalidInputFile(
            "the file does not end with its two trailers ('Trailer record count N', "
            f"'Trailer total quantity of shares N'); it ends with {shown} (refused whole)"
        )
    return Trailers(int(count[1]), int(total[1]), tail[0][0])


async def _check_tally(conn: AsyncConn, trailers: Trailers) -> int:
    """The number of data lines, once it and their quantities match the trailers."""
    row = await (await conn.execute(_TALLY)).fetchone()
    assert row is not None
    lines, quantity = _int(row["lines"]), _decimal(row["quantity"])
    if lines != trailers.record_count or quantity != trailers.total_quantity:
        raise InvalidInputFile(
            f"the trailers state {trailers.record_count} records and "
            f"{trailers.total_quantity} shares; the file has {lines} data lines and "
            f"{quantity} shares (refused whole: nothing loaded)"
        )
    return lines


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected a count, got {value!r}")
    return value


def _decimal(value: object) -> Decimal:
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a number, got {value!r}")
    return value
