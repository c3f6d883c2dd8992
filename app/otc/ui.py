"""OTC's dashboard pages: market data (a symbol's daily metrics), loads and their rejected lines.

Thin like the API's controller: they read through `app.otc.reads` and
`app.otc.load_reads`, page by keyset (a cursor holding the last row's key) and
count nothing; charts get their numbers as a JSON data block (`otc.js` draws them).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Final

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.otc import load_reads, reads
from app.otc.symbols import SYMBOLS
from app.ui.charts import chart_json
from app.web.connection import DbConn
from app.web.pagination import decode_cursor, encode_cursor

__all__ = ["PAGES", "load_rejects", "loads_list", "market"]

PAGE_SIZE: Final = 50
LOADS_CURSOR: Final = "ui-loads"
REJECTS_CURSOR: Final = "ui-rejects"
MAX_METRIC_DAYS: Final = 1000


def _number(value: Decimal) -> float:
    return float(value)


@get("/market", name="ui_market")
async def market(conn: DbConn, symbol: FromQuery[str | None] = None) -> Template:
    """A symbol picker; the symbol's daily VWAP, high-low band and volume; the rows below."""
    symbols = await reads.symbols(conn)
    chosen = (symbol or "").strip().upper()[: SYMBOLS.max_length] or (symbols[0] if symbols else "")
    metrics = (
        await reads.daily_metrics(conn, symbol=chosen, limit=MAX_METRIC_DAYS) if chosen else []
    )
    midnight = dt.time(tzinfo=dt.UTC)
    chart = {
        "symbol": chosen,
        "x": [int(dt.datetime.combine(m.date, midnight).timestamp()) for m in metrics],
        "vwap": [_number(m.vwap) for m in metrics],
        "high": [_number(m.high_price) for m in metrics],
        "low": [_number(m.low_price) for m in metrics],
        "volume": [m.total_volume for m in metrics],
    }
    return Template(
        "market.html",
        context={
            "symbols": symbols,
            "symbol": chosen,
            "metrics": metrics,
            "chart": chart_json(chart),
        },
    )


@get("/loads", name="ui_loads")
async def loads_list(conn: DbConn, cursor: FromQuery[str | None] = None) -> Template:
    """OTC loads newest first, with their line counts; one keyset page at a time."""
    before = decode_cursor(cursor[:512], LOADS_CURSOR, tuple[int]) if cursor else None
    rows = await load_reads.loads(conn, limit=PAGE_SIZE + 1, before=before[0] if before else None)
    page = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    return Template(
        "loads.html",
        context={
            "loads": page,
            "first_page": cursor is None,
            "next_cursor": encode_cursor(LOADS_CURSOR, page[-1].id) if more else None,
        },
    )


@get("/loads/{load_id:int}", name="ui_load_rejects")
async def load_rejects(
    conn: DbConn, load_id: FromPath[int], cursor: FromQuery[str | None] = None
) -> Template:
    """One load's rejected lines in file order: line number, reason, the line (cut)."""
    found = await load_reads.loads(conn, limit=1, before=load_id + 1)
    if not found or found[0].id != load_id:
        raise NotFoundException(detail=f"no OTC load with id {load_id}")
    after = decode_cursor(cursor[:512], REJECTS_CURSOR, tuple[int]) if cursor else None
    rows = await load_reads.rejects(
        conn, load_id, limit=PAGE_SIZE + 1, after=after[0] if after else None
    )
    page = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    return Template(
        "load.html",
        context={
            "load": found[0],
            "rejects": page,
            "shown": load_reads.LINE_SHOWN,
            "first_page": cursor is None,
            "next_cursor": encode_cursor(REJECTS_CURSOR, page[-1].line_no) if more else None,
        },
    )


PAGES = [market, loads_list, load_rejects]
