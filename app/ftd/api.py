"""The FTD API controller: periods, a date's fails, a symbol's runs, persistent fails, CUSIPs.

Thin handlers over app.ftd.reads (the analytics are SQL); listings are
keyset-paginated with `paged`. Prices and values leave as exact Decimals.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter

from app.dates import range_problem
from app.db import AsyncConn
from app.errors import InvalidField, NotFound
from app.ftd import keys, reads
from app.ftd.reads import FailSort
from app.ftd.schemas import (
    FtdCusipRunResponse,
    FtdFailResponse,
    FtdPeriodResponse,
    FtdPersistentResponse,
    FtdSymbolDayResponse,
)
from app.web.connection import DbConn
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import problem_responses
from app.web.security import READS

__all__ = ["CONTROLLERS", "FtdController", "loaded_period", "parse_day"]

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DatePath = Annotated[
    str,
    PathParameter(
        pattern=DATE_PATTERN,
        description="A settlement date (YYYY-MM-DD).",
        schema_extra={"format": "date"},
    ),
]
PeriodPath = Annotated[
    str,
    PathParameter(
        pattern=keys.PERIOD_PATTERN,
        description="A half-month: 2022-12a (the 1st-14th) or 2022-12b (the 15th-end).",
    ),
]
SymbolPath = Annotated[
    str, PathParameter(pattern=keys.SYMBOL_PATTERN, description=keys.SYMBOLS.help)
]
CusipPath = Annotated[
    str, PathParameter(pattern=keys.CUSIP_PATTERN, description="A CUSIP (9 characters).")
]
DateQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=DATE_PATTERN, description="YYYY-MM-DD.", schema_extra={"format": "date"}
    ),
]


def parse_day(text: str, name: str, source: str) -> dt.date:
    """A YYYY-MM-DD date, or a 400 naming `name` in its `source` (path or query)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationException(
            detail=f"{name} {text!r} is not a date (YYYY-MM-DD)",
            extra=[{"key": name, "message": "not a date (YYYY-MM-DD)", "source": source}],
        ) from None


async def loaded_period(conn: AsyncConn, text: str, source: str) -> tuple[str, dt.date, dt.date]:
    """The period key with its first and last day; 422 when it is not a half-month, 404
    when it is not loaded."""
    try:
        first, last = keys.period_dates(text)
    except ValueError as exc:
        raise InvalidField("period", str(exc), source=source) from None
    if not await reads.period_loaded(conn, text):
        raise NotFound(f"no SEC fails-to-deliver loaded for the period {text}")
    return text, first, last


class FtdController(Controller):
    path = "/ftd"
    tags = ["ftd"]

    @get(
        "/periods",
        operation_id="listFtdPeriods",
        summary="Loaded fails-to-deliver half-months",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 422, 503),
    )
    async def periods(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FtdPeriodResponse]]:
        """Each loaded half-month, oldest first: rows, securities, total quantity, and the
        file's trailers with whether the stored rows match them."""
        after = decode_cursor(cursor, "ftd_periods", tuple[str])[0] if cursor else None
        rows = await reads.periods(conn, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind="ftd_periods",
            key=lambda p: (p.period,),
            to_response=FtdPeriodResponse.from_row,
        )

    @get(
        "/dates/{date:str}/fails",
        operation_id="listFtdFails",
        summary="The fails of a settlement date, by value or quantity",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def fails(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        date: DatePath,
        min_value: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[0-9]{1,20}(\.[0-9]{1,10})?$",
                description="Only fails worth at least this (quantity x price); excludes "
                "those of unknown price.",
            ),
        ] = None,
        sort: Annotated[
            FailSort,
            QueryParameter(description="Descending (an unknown value last); ties by CUSIP."),
        ] = "value",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FtdFailResponse]]:
        """Every security that failed on the date, with `fail_value` = quantity x price
        (exact; null when the price is unknown)."""
        day = parse_day(date, "date", "path")
        if not await reads.date_loaded(conn, day):
            raise NotFound(f"no SEC fails-to-deliver loaded for the settlement date {day}")
        kind = f"ftd_fails_{sort}"
        after = decode_cursor(cursor, kind, tuple[Decimal, str]) if cursor else None
        rows = await reads.fails(
            conn,
            day,
            sort=sort,
            min_value=Decimal(min_value) if min_value else None,
            limit=limit + 1,
            after=after,
        )
        return paged(
            request,
            rows,
            limit,
            kind=kind,
            key=lambda f: (reads.sort_value(f, sort), f.cusip),
            to_response=FtdFailResponse.from_row,
        )

    @get(
        "/symbols/{symbol:str}/history",
        operation_id="getFtdSymbolHistory",
        summary="A symbol's fails on each settlement date, with its run of consecutive days",
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
        start_date: DateQuery = None,
        end_date: DateQuery = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FtdSymbolDayResponse]]:
        """The symbol (as published, case-sensitive) on each settlement date it failed,
        oldest first, with `consecutive_days`."""
        start = parse_day(start_date, "start_date", "query") if start_date else None
        end = parse_day(end_date, "end_date", "query") if end_date else None
        if problem := range_problem(start, end):  # as the other domains' ranges: a 422
            raise InvalidField("start_date", f"invalid date range: {problem}", source="query")
        after = decode_cursor(cursor, "ftd_symbol_history", tuple[dt.date])[0] if cursor else None
        rows = await reads.symbol_history(
            conn, symbol, start=start, end=end, limit=limit + 1, after=after
        )
        if not rows and after is None and start is None and end is None:
            raise NotFound(f"no SEC fails-to-deliver for symbol {symbol!r}")
        return paged(
            request,
            rows,
            limit,
            kind="ftd_symbol_history",
            key=lambda s: (s.settlement_date,),
            to_response=FtdSymbolDayResponse.from_row,
        )

    @get(
        "/periods/{period:str}/persistent",
        operation_id="listFtdPersistent",
        summary="Securities that failed on at least min_days of a half-month's dates",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def persistent(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        period: PeriodPath,
        min_days: Annotated[
            int, QueryParameter(ge=1, le=31, description="Settlement dates failed, at least.")
        ] = 5,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FtdPersistentResponse]]:
        """The period's securities (CUSIPs) by days failed, then total quantity, with their
        total and largest quantity and largest value."""
        key, first, last = await loaded_period(conn, period, "path")
        after = decode_cursor(cursor, "ftd_persistent", tuple[int, int, str]) if cursor else None
        rows = await reads.persistent(
            conn, key, first, last, min_days=min_days, limit=limit + 1, after=after
        )
        return paged(
            request,
            rows,
            limit,
            kind="ftd_persistent",
            key=lambda p: (p.days, p.total_quantity, p.cusip),
            to_response=FtdPersistentResponse.from_row,
        )

    @get(
        "/cusips/{cusip:str}",
        operation_id="getFtdCusip",
        summary="Every symbol and description a CUSIP has had, with its date range",
        security=READS,
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def cusip(self, *, conn: DbConn, cusip: CusipPath) -> list[FtdCusipRunResponse]:
        """The CUSIP's runs of one (symbol, description), in date order."""
        key = keys.cusip_key(cusip)
        rows = await reads.cusip_history(conn, key)
        if not rows:
            raise NotFound(f"no SEC fails-to-deliver for CUSIP {key!r}")
        return [FtdCusipRunResponse.from_row(r) for r in rows]


CONTROLLERS = [FtdController]
