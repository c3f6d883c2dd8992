"""Staged lines of one file -> regsho_daily_volume, set-based, with every decision counted.

First the trailer: the last line that is not blank must be a record count
equal to the number of lines between the header and it. Otherwise the file
is truncated or corrupt and is refused whole (`InvalidInputFile`: a permanent
failure; the transaction rolls back, so nothing of it is loaded).

A data line is rejected, with the first reason that applies, when it is:
`empty_line`, `invalid_bytes` (not UTF-8 text), `wrong_column_count` (not 6
fields), `empty_symbol`, `bad_symbol` (not this domain's `SymbolRule`),
`negative_volume`, `bad_volume` (not a number), `short_over_total`
(ShortVolume > TotalVolume), `exempt_over_short` (ShortExemptVolume >
ShortVolume: short volume includes the exempt), `wrong_date` (not the file's
date), or a `duplicate_symbol`: a later line for a symbol the file already had
(compared exactly: `CPK` and `CpK` are two symbols; the first one is kept).

The accepted rows are the new version of their (day, market): a republished
file replaces what is stored. Each accepted row is `inserted` (a new symbol),
`changed` (other volumes) or `unchanged`; stored symbols the file no longer
has are deleted and counted as `removed`. Always:
rows_read == inserted + changed + unchanged + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import LiteralString

from app.db import AsyncConn
from app.files import InvalidInputFile
from app.regsho.keys import SYMBOLS

__all__ = ["NormalizeResult", "normalize_file"]

# Loads of one (day, market) take turns from the diff to the commit.
_LOCK: LiteralString = (
    "SELECT pg_advisory_xact_lock(hashtext('regsho:' || %(day)s::text || ':' || %(market)s))"
)

_TRAILER: LiteralString = """
    SELECT line_no, btrim(line) AS line FROM regsho_stage_lines
     WHERE btrim(coalesce(line, '')) <> ''
     ORDER BY line_no DESC LIMIT 1
"""

# Each line is tested once against the shape of a clean line (`valid_line`: one regex,
# no captures), then split; only lines that fail it are judged field by field, so the
# common case costs one regex and three NUMERIC casts. A volume is a number of at most
# 18 digits (and 12 decimals): NUMERIC, exact whatever FINRA sends.
_PARSE: LiteralString = """
    CREATE TEMP TABLE regsho_parsed ON COMMIT DROP AS
    WITH split AS MATERIALIZED (
        SELECT line_no, line, line ~ %(valid_line)s AS valid, f
          FROM regsho_stage_lines, string_to_array(line, '|') AS f
         WHERE line_no < %(trailer)s
    ), fields AS (
        SELECT line_no, line, valid, cardinality(f) AS fields,
               btrim(f[1]) AS date_text, btrim(f[2]) COLLATE "C" AS symbol,
               btrim(f[3]) AS short_text, btrim(f[4]) AS exempt_text,
               btrim(f[5]) AS total_text, btrim(f[6]) AS reported_by
          FROM split
    ), judged AS MATERIALIZED (
        SELECT fields.*,
               CASE
                   WHEN valid THEN NULL
                   WHEN line IS NULL OR btrim(line) = '' THEN 'empty_line'
                   WHEN strpos(line, U&'\\FFFD') > 0 THEN 'invalid_bytes'
                   WHEN fields <> 6 THEN 'wrong_column_count'
                   WHEN symbol = '' THEN 'empty_symbol'
                   WHEN symbol !~ %(symbol_pattern)s THEN 'bad_symbol'
                   WHEN short_text ~ '^-[0-9]' OR exempt_text ~ '^-[0-9]'
                        OR total_text ~ '^-[0-9]' THEN 'negative_volume'
                   WHEN short_text !~ %(volume_pattern)s OR exempt_text !~ %(volume_pattern)s
                        OR total_text !~ %(volume_pattern)s THEN 'bad_volume'
               END AS shape
          FROM fields
    ), valued AS (
        SELECT judged.*,
               CASE WHEN shape IS NULL THEN short_text::numeric END AS short_volume,
               CASE WHEN shape IS NULL THEN exempt_text::numeric END AS short_exempt_volume,
               CASE WHEN shape IS NULL THEN total_text::numeric END AS total_volume
          FROM judged
    ), reasoned AS (
        SELECT line_no, line, symbol, reported_by, short_volume, short_exempt_volume,
               total_volume,
               CASE
                   WHEN shape IS NOT NULL THEN shape
                   WHEN short_volume > total_volume THEN 'short_over_total'
                   WHEN short_exempt_volume > short_volume THEN 'exempt_over_short'
                   WHEN date_text <> %(date_text)s THEN 'wrong_date'
               END AS reason
          FROM valued
    )
    SELECT line_no, line, symbol, reported_by, short_volume, short_exempt_volume, total_volume,
           CASE WHEN reason IS NULL AND row_number() OVER (
                    PARTITION BY reason IS NULL, symbol ORDER BY line_no) > 1
                THEN 'duplicate_symbol' ELSE reason END AS reason
      FROM reasoned
"""
_VOLUME_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,12})?$"
_VALID_LINE = (
    r"^[0-9]{8}\|"
    + f"[{SYMBOLS.alphabet}]{{1,{SYMBOLS.max_length}}}"
    + r"\|[0-9]{1,18}\|[0-9]{1,18}\|[0-9]{1,18}\|[A-Za-z, ]*$"
)
"""A clean line's shape: its fields then need only the checks between them."""

_RECORD_REJECTS: LiteralString = """
    WITH recorded AS (
        INSERT INTO regsho_rejects (load_id, line_no, reason, line)
        SELECT %(load_id)s, line_no, reason, left(line, 1000) FROM regsho_parsed
         WHERE reason IS NOT NULL
        RETURNING reason
    )
    SELECT reason, count(*) AS n FROM recorded GROUP BY reason ORDER BY reason
"""

# One statement, so every part sees the stored rows as they were before it: the
# file's rows are classified against them, symbols the file no longer has are
# deleted, and the file's rows are upserted (identical rows are not written).
_APPLY: LiteralString = """
    WITH file_rows AS (
        SELECT symbol, short_volume, short_exempt_volume, total_volume, reported_by
          FROM regsho_parsed WHERE reason IS NULL
    ), classified AS (
        SELECT count(*) FILTER (WHERE v.symbol IS NULL) AS inserted,
               count(*) FILTER (WHERE v.symbol IS NOT NULL AND
                    (r.short_volume, r.short_exempt_volume, r.total_volume, r.reported_by)
                    IS DISTINCT FROM
                    (v.short_volume, v.short_exempt_volume, v.total_volume, v.reported_by)
               ) AS changed
          FROM file_rows r
          LEFT JOIN regsho_daily_volume v
            ON v.trade_date = %(day)s AND v.market = %(market)s AND v.symbol = r.symbol
    ), removed AS (
        DELETE FROM regsho_daily_volume v
         WHERE v.trade_date = %(day)s AND v.market = %(market)s
           AND v.symbol NOT IN (SELECT symbol FROM file_rows)  -- hashed: no plan is quadratic
        RETURNING 1
    ), upserted AS (
        INSERT INTO regsho_daily_volume AS v (trade_date, market, symbol, short_volume,
                                              short_exempt_volume, total_volume, reported_by,
                                              load_id)
        SELECT %(day)s, %(market)s, symbol, short_volume, short_exempt_volume, total_volume,
               reported_by, %(load_id)s
          FROM file_rows
        ON CONFLICT (trade_date, market, symbol) DO UPDATE
           SET short_volume = EXCLUDED.short_volume,
               short_exempt_volume = EXCLUDED.short_exempt_volume,
               total_volume = EXCLUDED.total_volume, reported_by = EXCLUDED.reported_by,
               load_id = EXCLUDED.load_id
         WHERE (v.short_volume, v.short_exempt_volume, v.total_volume, v.reported_by)
               IS DISTINCT FROM (EXCLUDED.short_volume, EXCLUDED.short_exempt_volume,
                                 EXCLUDED.total_volume, EXCLUDED.reported_by)
        RETURNING 1
    )
    SELECT inserted, changed, (SELECT count(*) FROM removed) AS removed FROM classified
"""

# The first load of a (day, market): nothing to compare with, so a plain insert (no
# speculative insertion, no anti-join): every accepted row is `inserted`.
_STORED: LiteralString = """
    SELECT EXISTS (SELECT FROM regsho_daily_volume
                    WHERE trade_date = %(day)s AND market = %(market)s) AS stored
"""
_INSERT_FRESH: LiteralString = """
    WITH inserted AS (
        INSERT INTO regsho_daily_volume (trade_date, market, symbol, short_volume,
                                         short_exempt_volume, total_volume, reported_by, load_id)
        SELECT %(day)s, %(market)s, symbol, short_volume, short_exempt_volume, total_volume,
               reported_by, %(load_id)s
          FROM regsho_parsed WHERE reason IS NULL
        RETURNING 1
    )
    SELECT count(*) AS inserted, 0 AS changed, 0 AS removed FROM inserted
"""

_FILE: LiteralString = """
    INSERT INTO regsho_files (trade_date, market, load_id, rows, rejected, file_sha256, loaded_at)
    VALUES (%(day)s, %(market)s, %(load_id)s, %(rows)s, %(rejected)s, %(sha256)s,
            clock_timestamp())
    ON CONFLICT (trade_date, market) DO UPDATE
       SET load_id = EXCLUDED.load_id, rows = EXCLUDED.rows, rejected = EXCLUDED.rejected,
           file_sha256 = EXCLUDED.file_sha256,
           -- when its content last changed: a day computed before it is out of date
           loaded_at = CASE WHEN regsho_files.file_sha256 = EXCLUDED.file_sha256
                            THEN regsho_files.loaded_at ELSE EXCLUDED.loaded_at END
"""


@dataclass(frozen=True)
class NormalizeResult:
    rows_read: int
    inserted: int
    changed: int
    removed: int
    unchanged: int
    rejected: int
    trailer_count: int
    rejects_by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        accounted = self.inserted + self.changed + self.unchanged + self.rejected
        if accounted != self.rows_read:
            raise AssertionError(f"normalization lost lines: read {self.rows_read}, {self}")


async def normalize_file(
    conn: AsyncConn, load_id: int, *, day: date, market: str, name: str, sha256: str
) -> NormalizeResult:
    """Check the staged file's trailer, judge its lines, and make them the stored version
    of (`day`, `market`). One savepoint inside the caller's transaction."""
    params: dict[str, object] = {"load_id": load_id, "day": day, "market": market}
    async with conn.transaction():
        await conn.execute(_LOCK, params)
        trailer_line, count = await _trailer(conn, name)
        rows_read = trailer_line - 2  # the lines between the header (1) and the trailer
        if count != rows_read:
            raise InvalidInputFile(
                f"{name!r}: its trailer counts {count} records but {rows_read} lines precede "
                "it; the file is truncated or corrupt (refused, nothing loaded)"
            )
        params |= {
            "trailer": trailer_line,
            "date_text": f"{day:%Y%m%d}",
            "symbol_pattern": SYMBOLS.pattern,
            "volume_pattern": _VOLUME_PATTERN,
            "valid_line": _VALID_LINE,
        }
        await conn.execute(_PARSE, params)
        cur = await conn.execute(_RECORD_REJECTS, params)
        rejects = {str(r["reason"]): _int(r["n"]) for r in await cur.fetchall()}
        rejected = sum(rejects.values())
        stored = await (await conn.execute(_STORED, params)).fetchone()
        apply = _APPLY if stored is not None and stored["stored"] else _INSERT_FRESH
        counts = await (await conn.execute(apply, params)).fetchone()
        assert counts is not None
        inserted, changed, removed = (_int(counts[k]) for k in ("inserted", "changed", "removed"))
        accepted = rows_read - rejected
        await conn.execute(
            _FILE, params | {"rows": accepted, "rejected": rejected, "sha256": sha256}
        )
    return NormalizeResult(
        rows_read=rows_read,
        inserted=inserted,
        changed=changed,
        removed=removed,
        unchanged=accepted - inserted - changed,
        rejected=rejected,
        trailer_count=count,
        rejects_by_reason=rejects,
    )


async def _trailer(conn: AsyncConn, name: str) -> tuple[int, int]:
    """The trailer's line number and its count, or InvalidInputFile when there is none."""
    row = await (await conn.execute(_TRAILER)).fetchone()
    if row is None:
        raise InvalidInputFile(f"{name!r} has no trailer (the record count line): truncated")
    text = str(row["line"])
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise InvalidInputFile(
            f"{name!r}: its last line {shown!r} is not a record count; the file is truncated "
            "or corrupt (refused, nothing loaded)"
        )
    return _int(row["line_no"]), int(text)


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected a count, got {value!r}")
    return value
