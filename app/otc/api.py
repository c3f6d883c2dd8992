"""OTC's API controller: daily metrics, trades, loads and their rejects; keyset-paginated.

Rows come from app.otc.reads as exact Decimals and leave as exact JSON
numbers (see `app.web.fields.to_json` and `app.web.responses.ExactJSONResponse`); daily
metrics, the hottest read, come as JSON PostgreSQL wrote (`paged_json`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter

from app.dates import range_problem
from app.errors import NotFound
from app.otc import load_reads, reads
from app.otc.schemas import DailyMetricResponse, LoadResponse, RejectResponse, TradeResponse
from app.otc.symbols import SYMBOL_HELP, SYMBOL_PATTERN
from app.web.connection import DbConn
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged, paged_json
from app.web.problems import problem_responses
from app.web.security import READS

__all__ = ["CONTROLLERS", "OtcController"]

StartDate = Annotated[
    dt.date | None, QueryParameter(description="First trade date, inclusive (YYYY-MM-DD).")
]
EndDate = Annotated[
    dt.date | None, QueryParameter(description="Last trade date, inclusive (YYYY-MM-DD).")
]


def _check_range(start_date: dt.date | None, end_date: dt.date | None) -> None:
    if message := range_problem(start_date, end_date):
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
        database and exact JSON numbers here.
        """
        _check_range(start_date, end_date)
        after = decode_cursor(cursor, "otc_metrics", tuple[str, dt.date]) if cursor else None
        rows = await reads.daily_metrics_json(
            conn,
            symbol=symbol.upper() if symbol else None,
            start_date=start_date,
            end_date=end_date,
            limit=limit + 1,
            after=after,
        )
        return paged_json(request, rows, limit, kind="otc_metrics")

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

    @get(
        "/loads",
        operation_id="listLoads",
        summary="Files loaded by otc_ingest",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 503),
    )
    async def loads(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[LoadResponse]]:
        """Newest first: each load's file, checksum and line counts (rejected lines included)."""
        before = decode_cursor(cursor, "otc_loads", tuple[int])[0] if cursor else None
        rows = await load_reads.loads(conn, limit=limit + 1, before=before)
        return paged(
            request,
            rows,
            limit,
            kind="otc_loads",
            key=lambda r: (r.id,),
            to_response=LoadResponse.from_row,
        )

    @get(
        "/loads/{load_id:int}/rejects",
        operation_id="listLoadRejects",
        summary="Rejected lines of one load",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 503),
    )
    async def load_rejects(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        load_id: Annotated[
            int, PathParameter(ge=1, description="The load's id (GET /api/v1/otc/loads).")
        ],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[RejectResponse]]:
        """The lines that were not valid trades, in file order, with the rule each broke."""
        after = decode_cursor(cursor, "otc_rejects", tuple[int])[0] if cursor else None
        if not await load_reads.load_exists(conn, load_id):
            raise NotFound(f"no load {load_id}")
        rows = await load_reads.rejects(conn, load_id, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind="otc_rejects",
            key=lambda r: (r.line_no,),
            to_response=RejectResponse.from_row,
        )


CONTROLLERS = [OtcController]
