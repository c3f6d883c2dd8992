"""Reg SHO's API controller: days, a day's symbols and markets, a symbol's history.

Thin handlers over app.regsho.reads (the analytics are SQL); listings are
keyset-paginated with `paged`; volumes and percentages leave as exact Decimals.
A short ratio counts FINRA-reported volume only, not exchange volume, and it
is not short interest. Symbols are case-sensitive; a `/` in one (`BRK/A`) is
sent as %2F in the path.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter

from app.dates import parse_date, range_problem
from app.db import AsyncConn
from app.errors import InvalidField, NotFound
from app.regsho import reads
from app.regsho.keys import SYMBOLS, MarketChoice
from app.regsho.reads import SymbolSort
from app.regsho.report import day_markets
from app.regsho.schemas import (
    RATIO_NOTE,
    RegshoDayResponse,
    RegshoMarketsResponse,
    RegshoSymbolHistoryResponse,
    RegshoSymbolResponse,
)
from app.web.connection import DbConn
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import problem_responses
from app.web.security import READS

__all__ = ["CONTROLLERS", "RegshoController", "parse_day"]

DayPath = Annotated[
    str,
    PathParameter(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="The trading day (YYYY-MM-DD).",
        schema_extra={"format": "date"},
    ),
]
SymbolPath = Annotated[
    str,
    PathParameter(
        pattern=SYMBOLS.pattern,
        description="A symbol, case-sensitive (CPK and CpK differ); `/` as %2F (BRK%2FA).",
    ),
]
MarketQuery = Annotated[
    MarketChoice,
    QueryParameter(
        description="all (default): the five facility files summed, CNMS left out so nothing "
        "counts twice; or one file: CNMS, FNQC, FNRA, FNSQ, FNYX, FORF."
    ),
]


def parse_day(text: str, source: str) -> dt.date:
    """A day by the API's, the CLI's and the page's one rule (`app.dates.parse_date`)."""
    try:
        return parse_date(text, "date")
    except ValueError as exc:
        raise InvalidField("date", str(exc), source=source) from None


async def _loaded_day(conn: AsyncConn, text: str) -> dt.date:
    """The path's day as a date, or 404 when no file of it is loaded."""
    day = parse_day(text, "path")
    if not await reads.day_loaded(conn, day):
        raise NotFound(f"no Reg SHO file loaded for {day}")
    return day


class RegshoController(Controller):
    path = "/regsho"
    tags = ["regsho"]

    @get(
        "/days",
        operation_id="listRegshoDays",
        summary="Loaded Reg SHO days",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 422, 503),
    )
    async def days(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[RegshoDayResponse]]:
        """Each day with a file loaded, oldest first: its files, and short_volume_daily's
        symbols, totals (NMS and OTC apart) and reconciliation status."""
        after = decode_cursor(cursor, "regsho_days", tuple[dt.date])[0] if cursor else None
        rows = await reads.days(conn, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind="regsho_days",
            key=lambda d: (d.date,),
            to_response=RegshoDayResponse.from_row,
        )

    @get(
        "/days/{date:str}/symbols",
        operation_id="listRegshoSymbols",
        summary="A day's symbols: short volume and short ratio",
        description=RATIO_NOTE,
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def symbols(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        date: DayPath,
        market: MarketQuery = "all",
        min_volume: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=2**62,
                description="Only symbols with at least this total volume.",
                schema_extra={"minimum": 0},
            ),
        ] = None,
        sort: Annotated[
            SymbolSort,
            QueryParameter(description="Descending (a null ratio last); ties by symbol."),
        ] = "short_ratio",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[RegshoSymbolResponse]]:
        """The day's symbols in `market`, by `sort` descending, then symbol (bytes).

        `short_ratio_pct` is 100 x short / total, round(numeric, 4); for `all` the
        volumes are the facility files' sums and `markets` the facilities that
        reported the symbol.
        """
        day = await _loaded_day(conn, date)
        kind = f"regsho_symbols_{market}_{sort}"
        after = decode_cursor(cursor, kind, tuple[Decimal, str]) if cursor else None
        rows = await reads.symbols(
            conn,
            day,
            market=market,
            min_volume=min_volume,
            sort=sort,
            limit=limit + 1,
            after=after,
        )
        return paged(
            request,
            rows,
            limit,
            kind=kind,
            key=lambda s: (reads.sort_value(s, sort), s.symbol),
            to_response=RegshoSymbolResponse.from_row,
        )

    @get(
        "/days/{date:str}/markets",
        operation_id="getRegshoMarkets",
        summary="A day's facility shares and reconciliation",
        security=READS,
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def markets(self, *, conn: DbConn, date: DayPath) -> RegshoMarketsResponse:
        """Each file of the day with its share of the five facility files' total and short
        volume (CNMS's share is the NMS part), and CNMS reconciled per symbol against
        FNQC + FNSQ + FNYX + FNRA."""
        return await day_markets(conn, await _loaded_day(conn, date))

    @get(
        "/symbols/{symbol:str}/history",
        operation_id="getRegshoSymbolHistory",
        summary="One symbol's short ratio, day by day",
        description=RATIO_NOTE,
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def symbol_history(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        symbol: SymbolPath,
        start_date: Annotated[
            dt.date | None, QueryParameter(description="First day (inclusive).")
        ] = None,
        end_date: Annotated[
            dt.date | None, QueryParameter(description="Last day (inclusive).")
        ] = None,
        market: MarketQuery = "all",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[RegshoSymbolHistoryResponse]]:
        """The symbol on each loaded day it has a row, oldest first, with
        `short_ratio_avg_5d_pct` (volume-weighted over the 5 most recent loaded days) and
        `ratio_change_pp` (against the previous loaded day)."""
        return await _history(
            conn, request, symbol, start_date=start_date, end_date=end_date, market=market,
            limit=limit, cursor=cursor,
        )  # fmt: skip

    @get(
        "/symbols/{rest:path}",
        operation_id="getRegshoSymbolHistoryWithSlash",
        include_in_schema=False,
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def symbol_history_with_slash(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        rest: FromPath[str],
        start_date: FromQuery[dt.date | None] = None,
        end_date: FromQuery[dt.date | None] = None,
        market: MarketQuery = "all",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[RegshoSymbolHistoryResponse]]:
        """The history route for a symbol with a `/` (BRK%2FA): the server decodes %2F
        before routing, so `/symbols/BRK/A/history` arrives here, split at the last `/`."""
        symbol, _, tail = rest.lstrip("/").rpartition("/")
        if tail != "history" or not symbol:
            raise NotFound(f"no route {request.url.path}")
        try:
            symbol = SYMBOLS.key(symbol)
        except ValueError as exc:
            raise InvalidField("symbol", str(exc), source="path") from None
        return await _history(
            conn, request, symbol, start_date=start_date, end_date=end_date, market=market,
            limit=limit, cursor=cursor,
        )  # fmt: skip


async def _history(
    conn: AsyncConn,
    request: Request[Any, Any, Any],
    symbol: str,
    *,
    start_date: dt.date | None,
    end_date: dt.date | None,
    market: MarketChoice,
    limit: int,
    cursor: str | None,
) -> Response[list[RegshoSymbolHistoryResponse]]:
    """One symbol's history, paged (both history routes)."""
    if problem := range_problem(start_date, end_date):
        raise InvalidField("start_date", problem, source="query")
    kind = f"regsho_history_{market}"
    after = decode_cursor(cursor, kind, tuple[dt.date])[0] if cursor else None
    rows = await reads.symbol_history(
        conn, symbol, market=market, start=start_date, end=end_date, limit=limit + 1,
        after=after,
    )  # fmt: skip
    if not rows and after is None:
        raise NotFound(f"no Reg SHO data for symbol {symbol!r} ({market})")
    return paged(
        request,
        rows,
        limit,
        kind=kind,
        key=lambda s: (s.date,),
        to_response=RegshoSymbolHistoryResponse.from_row,
    )


CONTROLLERS = [RegshoController]
