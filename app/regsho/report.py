"""A day's markets object, the same for the API and `spine query regsho markets`."""

from __future__ import annotations

from datetime import date, timedelta

from app.db import AsyncConn
from app.regsho import reads
from app.regsho.keys import MARKET_NAMES
from app.regsho.schemas import (
    RegshoMarketResponse,
    RegshoMarketsResponse,
    RegshoMismatchResponse,
    RegshoReconciliation,
)

__all__ = ["day_markets"]


async def day_markets(conn: AsyncConn, day: date) -> RegshoMarketsResponse:
    """Each file of `day` with its shares, and the day's reconciliation as last computed."""
    shares = await reads.markets(conn, day)
    found = await reads.days(conn, limit=1, after=day - timedelta(days=1))
    summary = found[0] if found and found[0].date == day else None
    wrong = await reads.mismatches(conn, day)
    return RegshoMarketsResponse(
        date=day,
        markets=[RegshoMarketResponse.from_row(m, MARKET_NAMES[m.market]) for m in shares],
        reconciliation=RegshoReconciliation(
            status=summary.reconciliation if summary else "not_computed",
            mismatched_symbols=summary.mismatched_symbols if summary else None,
            stale=summary.stale if summary else False,
            mismatches=[RegshoMismatchResponse.from_row(m) for m in wrong],
        ),
    )
