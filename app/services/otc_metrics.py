"""Daily per-symbol metrics, recomputed exactly from otc_trades.

Never incremental: a pair's row is always recomputed from all of its trades
with one GROUP BY, so the result cannot drift from the trades. An ingest
recomputes only the pairs it changed (a correction that moves a trade to
another symbol or date changes both pairs); a pair left with no trades loses
its row. Rows whose values come out equal are not rewritten, so re-running
changes nothing. Definitions (NUMERIC, exact) are in migrations/012.
"""

from __future__ import annotations

from datetime import date

from app.db import AsyncConn
from app.repositories import otc as repo

__all__ = ["recompute", "recompute_touched"]


async def recompute_touched(conn: AsyncConn) -> int:
    """Recompute the pairs a load marked (pg_temp.otc_touched); returns metric rows changed."""
    return await repo.recompute_touched_metrics(conn)


async def recompute(
    conn: AsyncConn,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    symbol: str | None = None,
) -> int:
    """Recompute a date range (inclusive; None: unbounded), optionally for one symbol.

    Runs in its own transaction under the trades lock; returns metric rows changed.
    """
    async with conn.transaction():
        await repo.lock_trades(conn)
        return await repo.recompute_metrics(
            conn, start_date=start_date, end_date=end_date, symbol=symbol
        )
