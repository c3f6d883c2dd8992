"""short_volume_daily: one day's facility files summed per symbol, and CNMS reconciled.

Per symbol and day: short, short-exempt and total volume summed over the five
facility files (FNQC, FNRA, FNSQ, FNYX, FORF), never CNMS, which already is
the sum of the four NMS ones; `short_ratio_pct` = regsho_pct(short, total)
(100 x short / total, round(numeric, 4), null when total is 0); `segment`
keeps OTC equities (FORF) apart from NMS stocks. The reconciliation compares,
per symbol, CNMS with the sum of the NMS facilities: a day is `clean`,
`mismatched` (its differing symbols are kept in regsho_reconciliation) or
`incomplete` (CNMS or an NMS facility file is not loaded).

A day is recomputed whole, in one transaction, and diffed against what was
stored like a load (`inserted`, `changed`, `removed`, `unchanged`), so an
unchanged recomputation changes nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import LiteralString

from app.db import AsyncConn
from app.regsho.keys import CONSOLIDATED, NMS_FACILITIES, OTC_FACILITY

__all__ = ["DayResult", "compute_day"]

_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(hashtext('regsho_day:' || %(day)s::text))"

_SUMS: LiteralString = """
    CREATE TEMP TABLE regsho_day_sums ON COMMIT DROP AS
    SELECT symbol,
           CASE WHEN bool_and(market = %(otc)s) THEN 'otc'
                WHEN bool_or(market = %(otc)s) THEN 'mixed' ELSE 'nms' END AS segment,
           sum(short_volume) AS short_volume, sum(short_exempt_volume) AS short_exempt_volume,
           sum(total_volume) AS total_volume,
           regsho_pct(sum(short_volume), sum(total_volume)) AS short_ratio_pct,
           array_agg(market ORDER BY market) AS markets
      FROM regsho_daily_volume
     WHERE trade_date = %(day)s AND market <> %(cnms)s
     GROUP BY symbol
"""

# As a load's apply: classified against the stored day, then removed and upserted.
_APPLY: LiteralString = """
    WITH classified AS (
        SELECT count(*) FILTER (WHERE v.symbol IS NULL) AS inserted,
               count(*) FILTER (WHERE v.symbol IS NOT NULL AND
                    (s.segment, s.short_volume, s.short_exempt_volume, s.total_volume,
                     s.short_ratio_pct, s.markets)
                    IS DISTINCT FROM
                    (v.segment, v.short_volume, v.short_exempt_volume, v.total_volume,
                     v.short_ratio_pct, v.markets)) AS changed,
               count(*) AS computed
          FROM regsho_day_sums s
          LEFT JOIN regsho_short_volume_daily v ON v.trade_date = %(day)s AND v.symbol = s.symbol
    ), removed AS (
        DELETE FROM regsho_short_volume_daily v
         WHERE v.trade_date = %(day)s
           AND v.symbol NOT IN (SELECT symbol FROM regsho_day_sums)  -- hashed, whatever the stats
        RETURNING 1
    ), upserted AS (
        INSERT INTO regsho_short_volume_daily AS v (trade_date, symbol, segment, short_volume,
                                                    short_exempt_volume, total_volume,
                                                    short_ratio_pct, markets)
        SELECT %(day)s, symbol, segment, short_volume, short_exempt_volume, total_volume,
               short_ratio_pct, markets
          FROM regsho_day_sums
        ON CONFLICT (trade_date, symbol) DO UPDATE
           SET segment = EXCLUDED.segment, short_volume = EXCLUDED.short_volume,
               short_exempt_volume = EXCLUDED.short_exempt_volume,
               total_volume = EXCLUDED.total_volume, short_ratio_pct = EXCLUDED.short_ratio_pct,
               markets = EXCLUDED.markets
         WHERE (v.segment, v.short_volume, v.short_exempt_volume, v.total_volume,
                v.short_ratio_pct, v.markets)
               IS DISTINCT FROM (EXCLUDED.segment, EXCLUDED.short_volume,
                                 EXCLUDED.short_exempt_volume, EXCLUDED.total_volume,
                                 EXCLUDED.short_ratio_pct, EXCLUDED.markets)
        RETURNING 1
    )
    SELECT inserted, changed, computed, (SELECT count(*) FROM removed) AS removed
      FROM classified
"""

_CLEAR_RECONCILIATION: LiteralString = (
    "DELETE FROM regsho_reconciliation WHERE trade_date = %(day)s"
)

# CNMS against the NMS facilities' sum, per symbol; one side missing counts as 0.
_RECONCILE: LiteralString = """
    WITH cnms AS (
        SELECT symbol, short_volume, short_exempt_volume, total_volume
          FROM regsho_daily_volume WHERE trade_date = %(day)s AND market = %(cnms)s
    ), facilities AS (
        SELECT symbol, sum(short_volume) AS short_volume,
               sum(short_exempt_volume) AS short_exempt_volume, sum(total_volume) AS total_volume
          FROM regsho_daily_volume
         WHERE trade_date = %(day)s AND market = ANY (%(nms)s::text[])
         GROUP BY symbol
    ), inserted AS (
        INSERT INTO regsho_reconciliation (
            trade_date, symbol, cnms_short_volume, cnms_short_exempt_volume, cnms_total_volume,
            facilities_short_volume, facilities_short_exempt_volume, facilities_total_volume)
        SELECT %(day)s, coalesce(c.symbol, f.symbol),
               coalesce(c.short_volume, 0), coalesce(c.short_exempt_volume, 0),
               coalesce(c.total_volume, 0), coalesce(f.short_volume, 0),
               coalesce(f.short_exempt_volume, 0), coalesce(f.total_volume, 0)
          FROM cnms c FULL JOIN facilities f ON f.symbol = c.symbol
         WHERE (coalesce(c.short_volume, 0), coalesce(c.short_exempt_volume, 0),
                coalesce(c.total_volume, 0))
               <> (coalesce(f.short_volume, 0), coalesce(f.short_exempt_volume, 0),
                   coalesce(f.total_volume, 0))
        RETURNING 1
    )
    SELECT count(*) AS mismatched FROM inserted
"""

_DAY: LiteralString = """
    WITH files AS (
        SELECT array_agg(market ORDER BY market) AS markets FROM regsho_files
         WHERE trade_date = %(day)s
    ), totals AS (
        SELECT count(*) FILTER (WHERE segment <> 'otc') AS nms_symbols,
               count(*) FILTER (WHERE segment = 'otc') AS otc_symbols,
               coalesce(sum(short_volume) FILTER (WHERE segment <> 'otc'), 0) AS nms_short,
               coalesce(sum(total_volume) FILTER (WHERE segment <> 'otc'), 0) AS nms_total,
               coalesce(sum(short_volume) FILTER (WHERE segment = 'otc'), 0) AS otc_short,
               coalesce(sum(total_volume) FILTER (WHERE segment = 'otc'), 0) AS otc_total
          FROM regsho_short_volume_daily WHERE trade_date = %(day)s
    )
    INSERT INTO regsho_days (trade_date, computed_at, markets, nms_symbols, otc_symbols,
                             nms_short_volume, nms_total_volume, otc_short_volume,
                             otc_total_volume, reconciliation, mismatched_symbols)
    SELECT %(day)s, clock_timestamp(), coalesce(files.markets, '{}'), nms_symbols,
           otc_symbols, nms_short, nms_total, otc_short, otc_total,
           CASE WHEN NOT coalesce(files.markets, '{}') @> (%(nms)s::text[] || %(cnms)s::text)
                THEN 'incomplete'
                WHEN %(mismatched)s > 0 THEN 'mismatched' ELSE 'clean' END,
           %(mismatched)s
      FROM files, totals
    ON CONFLICT (trade_date) DO UPDATE
       SET computed_at = EXCLUDED.computed_at, markets = EXCLUDED.markets,
           nms_symbols = EXCLUDED.nms_symbols, otc_symbols = EXCLUDED.otc_symbols,
           nms_short_volume = EXCLUDED.nms_short_volume,
           nms_total_volume = EXCLUDED.nms_total_volume,
           otc_short_volume = EXCLUDED.otc_short_volume,
           otc_total_volume = EXCLUDED.otc_total_volume,
           reconciliation = EXCLUDED.reconciliation,
           mismatched_symbols = EXCLUDED.mismatched_symbols
    RETURNING reconciliation
"""


@dataclass(frozen=True)
class DayResult:
    inserted: int
    changed: int
    removed: int
    unchanged: int
    symbols: int
    reconciliation: str
    mismatched_symbols: int

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
        }


async def compute_day(conn: AsyncConn, day: date) -> DayResult:
    """Recompute `day` of short_volume_daily and its reconciliation (a savepoint inside
    the caller's transaction, which records the materialization)."""
    params: dict[str, object] = {
        "day": day,
        "cnms": CONSOLIDATED,
        "otc": OTC_FACILITY,
        "nms": list(NMS_FACILITIES),
    }
    async with conn.transaction():
        await conn.execute(_LOCK, params)
        await conn.execute(_SUMS, params)
        applied = await (await conn.execute(_APPLY, params)).fetchone()
        assert applied is not None
        await conn.execute(_CLEAR_RECONCILIATION, params)
        found = await (await conn.execute(_RECONCILE, params)).fetchone()
        mismatched = int(found["mismatched"]) if found else 0  # type: ignore[call-overload]
        day_row = await (await conn.execute(_DAY, params | {"mismatched": mismatched})).fetchone()
        assert day_row is not None
    inserted, changed, removed, computed = (
        int(applied[k])  # type: ignore[call-overload]
        for k in ("inserted", "changed", "removed", "computed")
    )
    return DayResult(
        inserted=inserted,
        changed=changed,
        removed=removed,
        unchanged=computed - inserted - changed,
        symbols=computed,
        reconciliation=str(day_row["reconciliation"]),
        mismatched_symbols=mismatched,
    )
