"""Reg SHO's dashboard page: a symbol's daily short ratio over its volume, a day's top symbols.

Thin like the API's controller: it reads through `app.regsho.reads`; the chart
gets its numbers as a JSON data block (`regsho.js` draws it).
"""

from __future__ import annotations

import datetime as dt
from typing import Final, cast, get_args

from litestar import get
from litestar.exceptions import ValidationException
from litestar.params import FromQuery
from litestar.response import Template

from app.regsho import reads
from app.regsho.api import parse_day
from app.regsho.keys import MARKET_CHOICES, SYMBOLS, MarketChoice
from app.regsho.reads import SymbolSort
from app.regsho.schemas import RATIO_NOTE
from app.ui.charts import chart_json
from app.web.connection import DbConn

__all__ = ["PAGES", "regsho_page"]

SYMBOLS_SHOWN: Final = 50
HISTORY_DAYS: Final = 1000
MIN_VOLUME: Final = 10_000  # the top ratios of symbols that barely traded say little
SORTS: Final[tuple[str, ...]] = get_args(SymbolSort)


@get("/regsho", name="ui_regsho")
async def regsho_page(
    conn: DbConn,
    date: FromQuery[str | None] = None,
    symbol: FromQuery[str | None] = None,
    market: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
) -> Template:
    """A day's top symbols by short ratio (or volume); one symbol's daily short ratio as a
    line over its total volume as bars."""
    if sort and sort not in SORTS:
        raise ValidationException(detail=f"`sort` must be one of {', '.join(SORTS)}")
    if market and market not in MARKET_CHOICES:
        raise ValidationException(detail=f"`market` must be one of {', '.join(MARKET_CHOICES)}")
    sort_ = cast(SymbolSort, sort or "short_ratio")
    market_: MarketChoice = market or "all"  # checked against MARKET_CHOICES above
    day = parse_day(date[:20], "query") if date else await reads.latest_day(conn)
    top = (
        await reads.symbols(
            conn, day, market=market_, sort=sort_, min_volume=MIN_VOLUME, limit=SYMBOLS_SHOWN
        )
        if day
        else []
    )
    chosen = (symbol or "").strip()[: SYMBOLS.max_length] or (top[0].symbol if top else "")
    history = (
        await reads.symbol_history(conn, chosen, market=market_, limit=HISTORY_DAYS)
        if chosen
        else []
    )
    midnight = dt.time(0, tzinfo=dt.UTC)
    chart = {
        "symbol": chosen,
        "x": [int(dt.datetime.combine(h.date, midnight).timestamp()) for h in history],
        "ratio": [None if h.short_ratio_pct is None else float(h.short_ratio_pct) for h in history],
        "volume": [float(h.total_volume) for h in history],
    }
    return Template(
        "regsho.html",
        context={
            "day": day,
            "days": [d.date for d in await reads.days(conn, limit=HISTORY_DAYS)][::-1],
            "symbol": chosen,
            "market": market_,
            "markets": MARKET_CHOICES,
            "sort": sort_,
            "sorts": SORTS,
            "top": top,
            "history": history,
            "min_volume": MIN_VOLUME,
            "note": RATIO_NOTE,
            "chart": chart_json(chart),
        },
    )


PAGES = [regsho_page]
