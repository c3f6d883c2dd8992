"""OTC reads: daily per-symbol metrics and normalized trades, keyset-paginated.

Rows come from app.otc.reads as exact Decimals and leave as JSON
numbers (see `schemas.money`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from app.api.errors import problem_responses
from app.api.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.api.routes import READS, DbConn
from app.api.schemas import DailyMetricResponse, TradeResponse
from app.otc import reads

__all__ = ["OtcController"]

SYMBOL_PATTERN = r"^[A-Za-z0-9.-]{1,12}$"
SYMBOL_HELP = "1-12 of A-Z 0-9 . - (case-insensitive)."
StartDate = Annotated[
    dt.date | None, QueryParameter(description="First trade date, inclusive (YYYY-MM-DD).")
]
EndDate = Annotated[
    dt.date | None, QueryParameter(description="Last trade date, inclusive (YYYY-MM-DD).")
]


def _check_range(start_date: dt.date | None, end_date: dt.date | None) -> None:
    if start_date and end_date and start_date > end_date:
        message = f"start_date {start_date} is after end_date {end_date}"
        raise ValidationException(
            detail=f"invalid date range: {message}",
            extra=[{"key": "start_date", "message": message, "source": "query"}],
        )


class OtcController(Controller):
    path = "/otc"
    tags = ["otc"]

    @get(
        "/metrics/daily",
        operation_id="listDailyMetrics",
        summary="Daily metrics per symbol",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 503),
    )
    async def daily_metrics(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        symbol: Annotated[
            str | None, QueryParameter(pattern=SYMBOL_PATTERN, description=SYMBOL_HELP)
        ] = None,
        start_date: StartDate = None,
        end_date: EndDate = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[DailyMetricResponse]]:
        """Trade count, volume, notional, VWAP, high and low per (symbol, trade date).

        Ordered by symbol, then date. Prices and notional are exact NUMERIC in the
        database and JSON numbers (doubles) here.
        """
        _check_range(start_date, end_date)
        after = decode_cursor(cursor, "otc_metrics", tuple[str, dt.date]) if cursor else None
        rows = await reads.daily_metrics(
            conn,
            symbol=symbol.upper() if symbol else None,
            start_date=start_date,
            end_date=end_date,
            limit=limit + 1,
            after=after,
        )
        return paged(
            request,
            rows,
            limit,
            kind="otc_metrics",
            key=lambda m: (m.symbol, m.date),
            to_response=DailyMetricResponse.from_row,
        )

    @get(
        "/trades",
        operation_id="listTrades",
        summary="Trades of one symbol",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 503),
    )
    async def trades(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        symbol: Annotated[str, QueryParameter(pattern=SYMBOL_PATTERN, description=SYMBOL_HELP)],
        start_date: StartDate = None,
        end_date: EndDate = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[TradeResponse]]:
        """One symbol's normalized trades (corrections applied), by date, time and trade id."""
        _check_range(start_date, end_date)
        after = (
            decode_cursor(cursor, "otc_trades", tuple[dt.date, dt.datetime, str])
            if cursor
            else None
        )
        rows = await reads.trades(
            conn,
            symbol.upper(),
            start_date=start_date,
            end_date=end_date,
            limit=limit + 1,
            after=after,
        )
        return paged(
            request,
            rows,
            limit,
            kind="otc_trades",
            key=lambda t: (t.trade_date, t.executed_at, t.trade_id),
            to_response=TradeResponse.from_row,
        )
