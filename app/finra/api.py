"""FINRA's API controller: loaded weeks, venue market share, symbol concentration, ATS share.

Thin handlers over app.finra.reads (the analytics are SQL); every listing is
keyset-paginated with `paged`. Percentages and HHIs leave as exact Decimals.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter

from app.db import AsyncConn
from app.errors import InvalidField, NotFound
from app.finra import keys, reads
from app.finra.keys import MPID_PATTERN, SYMBOL_PATTERN
from app.finra.reads import SymbolSort
from app.finra.schemas import (
    FinraSymbolHistoryResponse,
    FinraSymbolResponse,
    FinraVenueHistoryResponse,
    FinraVenueResponse,
    FinraWeekResponse,
)
from app.web.connection import DbConn
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import problem_responses
from app.web.security import READS

__all__ = ["CONTROLLERS", "FinraController"]

Week = Annotated[
    str,
    PathParameter(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="The week's Monday (YYYY-MM-DD).",
        schema_extra={"format": "date"},
    ),
]
SymbolPath = Annotated[
    str, PathParameter(pattern=SYMBOL_PATTERN, description="A symbol (case-insensitive).")
]
MpidPath = Annotated[
    str, PathParameter(pattern=MPID_PATTERN, description="A venue's MPID (case-insensitive).")
]


def parse_week(text: str, source: str) -> dt.date:
    """A week given as its Monday, by the API's, the CLI's and the dashboard's one rule
    (`keys.monday`): not a date is a 400 (the schema says `format: date`), a date but
    not a Monday a 422, each naming `week` in its `source` (path or query)."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationException(
            detail=f"week {text!r} is not a date (YYYY-MM-DD)",
            extra=[{"key": "week", "message": "not a date (YYYY-MM-DD)", "source": source}],
        ) from None
    try:
        return keys.monday(text)
    except ValueError as exc:
        raise InvalidField("week", str(exc), source=source) from None


async def _loaded_week(conn: AsyncConn, text: str) -> dt.date:
    """The path's week as a date (`parse_week`), or 404 when nothing is loaded."""
    week = parse_week(text, "path")
    if not await reads.week_loaded(conn, week):
        raise NotFound(f"no FINRA data loaded for the week of {week}")
    return week


class FinraController(Controller):
    path = "/finra"
    tags = ["finra"]

    @get(
        "/weeks",
        operation_id="listFinraWeeks",
        summary="Loaded FINRA weeks",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 503),
    )
    async def weeks(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FinraWeekResponse]]:
        """Each loaded (week, tier), oldest first: rows, symbols, venues, shares, trades."""
        after = decode_cursor(cursor, "finra_weeks", tuple[dt.date, str]) if cursor else None
        rows = await reads.weeks(conn, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind="finra_weeks",
            key=lambda w: (w.week, w.tier),
            to_response=FinraWeekResponse.from_row,
        )

    @get(
        "/weeks/{week:str}/venues",
        operation_id="listFinraVenues",
        summary="Venues of a week by market share",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def venues(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        week: Week,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FinraVenueResponse]]:
        """The week's venues (MPIDs) by shares, with their share of the week's shares and trades.

        `share_of_shares_pct` is 100 x the venue's shares / the week's shares, rounded to
        4 decimals (exact NUMERIC); `rank` is 1 for the most shares, ties by MPID.
        """
        monday = await _loaded_week(conn, week)
        after = decode_cursor(cursor, "finra_venues", tuple[int])[0] if cursor else None
        rows = await reads.venues(conn, monday, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind="finra_venues",
            key=lambda v: (v.rank,),
            to_response=FinraVenueResponse.from_row,
        )

    @get(
        "/weeks/{week:str}/symbols",
        operation_id="listFinraSymbols",
        summary="Symbols of a week: volume, top venue, HHI",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def symbols(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        week: Week,
        symbol: Annotated[
            str | None, QueryParameter(pattern=SYMBOL_PATTERN, description="Only this symbol.")
        ] = None,
        mpid: Annotated[
            str | None,
            QueryParameter(pattern=MPID_PATTERN, description="Only symbols this venue traded."),
        ] = None,
        min_shares: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=2**62,
                description="Only symbols with at least these shares.",
                schema_extra={"minimum": 0},  # Litestar leaves out a bound of 0
            ),
        ] = None,
        sort: Annotated[
            SymbolSort, QueryParameter(description="Descending; ties by symbol ascending.")
        ] = "shares",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FinraSymbolResponse]]:
        """The week's symbols with their venues' concentration (HHI, 0 to 10,000) and the
        share of their shares traded on ATS venues (`ats_share_pct`).

        Venue figures and the HHI are over every venue, ATS and non-ATS; `ats_share_pct`
        is null until both FINRA's ATS and non-ATS files of the symbol's tier are loaded.
        Sorted by `sort` descending (a null HHI last), then symbol.
        """
        monday = await _loaded_week(conn, week)
        kind = f"finra_symbols_{sort}"
        after = decode_cursor(cursor, kind, tuple[Decimal, str]) if cursor else None
        rows = await reads.symbols(
            conn,
            monday,
            symbol=keys.symbol_key(symbol) if symbol else None,
            mpid=keys.mpid_key(mpid) if mpid else None,
            min_shares=min_shares,
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
            to_response=FinraSymbolResponse.from_row,
        )

    @get(
        "/symbols/{symbol:str}/history",
        operation_id="getFinraSymbolHistory",
        summary="One symbol in every loaded week",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 503),
    )
    async def symbol_history(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        symbol: SymbolPath,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FinraSymbolHistoryResponse]]:
        """The symbol's week objects, oldest first, with `shares_change_pct` against the
        previous loaded week (null when the symbol has no row in that week)."""
        after = decode_cursor(cursor, "finra_symbol_history", tuple[dt.date])[0] if cursor else None
        key = keys.symbol_key(symbol)
        rows = await reads.symbol_history(conn, key, limit=limit + 1, after=after)
        if not rows and after is None:
            raise NotFound(f"no FINRA data for symbol {key!r}")
        return paged(
            request,
            rows,
            limit,
            kind="finra_symbol_history",
            key=lambda s: (s.week,),
            to_response=FinraSymbolHistoryResponse.from_row,
        )

    @get(
        "/venues/{mpid:str}/history",
        operation_id="getFinraVenueHistory",
        summary="One venue in every loaded week",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 503),
    )
    async def venue_history(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        mpid: MpidPath,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[FinraVenueHistoryResponse]]:
        """The venue's week objects (share and rank), oldest first, with `shares_change_pct`
        against the previous loaded week (null when the venue has no row in that week)."""
        after = decode_cursor(cursor, "finra_venue_history", tuple[dt.date])[0] if cursor else None
        key = keys.mpid_key(mpid)
        rows = await reads.venue_history(conn, key, limit=limit + 1, after=after)
        if not rows and after is None:
            raise NotFound(f"no FINRA data for venue {key!r}")
        return paged(
            request,
            rows,
            limit,
            kind="finra_venue_history",
            key=lambda v: (v.week,),
            to_response=FinraVenueHistoryResponse.from_row,
        )


CONTROLLERS = [FinraController]
