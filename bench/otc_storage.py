"""Stored bytes per OTC trade: otc_trades (heap, TOAST, each index) and the raw lines kept.

The raw lines are every partition of otc_trades_raw's storage (one per load
whose lines are retained), whatever the partitioned table is called.
"""

from __future__ import annotations

from typing import Any

from bench.harness import connect

# Each relation's total size (heap + TOAST + its indexes), and otc_trades' indexes apart.
_SIZES = """
SELECT 'otc_trades heap' AS part,
       pg_total_relation_size('otc_trades') - pg_indexes_size('otc_trades') AS bytes
UNION ALL
SELECT 'index ' || i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
  FROM pg_index i WHERE i.indrelid = 'otc_trades'::regclass
UNION ALL
SELECT 'raw lines', coalesce(sum(pg_total_relation_size(p.inhrelid)), 0)::bigint
  FROM pg_inherits p
 WHERE p.inhparent = (SELECT coalesce(to_regclass('otc_raw_chunks'),
                                      to_regclass('otc_trades_raw')))
"""


def stored_bytes(url: str) -> dict[str, Any]:
    """{"trades": n, "bytes_per_trade": total, "<relation>_bpt": share, ...}"""
    with connect(url) as conn:
        conn.execute("VACUUM ANALYZE otc_trades")  # the visibility map counts too once vacuumed
        row = conn.execute("SELECT count(*) AS n FROM otc_trades").fetchone()
        trades = int(row["n"]) if row else 0
        parts = conn.execute(_SIZES).fetchall()
    per = max(trades, 1)
    shares = {f"{r['part']} B/trade": round(int(r["bytes"]) / per, 1) for r in parts}
    total = sum(int(r["bytes"]) for r in parts)
    return {"trades": trades, "bytes_per_trade": round(total / per, 1), **shares}
