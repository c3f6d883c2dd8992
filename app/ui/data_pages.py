"""The dashboard's data pages: OTC loads and their rejected lines, FINRA weekly venue share.

Thin like the API's routes: they read through `app.otc.load_reads` and
`app.finra.reads`, page by keyset (a cursor holding the last row's key) and
count nothing; the venue chart gets its numbers as a JSON data block.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, cast, get_args

from litestar import get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.api.pagination import decode_cursor, encode_cursor
from app.api.routes import DbConn
from app.finra import reads as finra_reads
from app.finra.reads import SymbolSort
from app.otc import load_reads
from app.ui.pages import chart_json

__all__ = ["DATA_PAGES", "finra_week", "load_rejects", "loads_list"]

PAGE_SIZE: Final = 50
LOADS_CURSOR: Final = "ui-loads"
REJECTS_CURSOR: Final = "ui-rejects"
WEEKS_SHOWN: Final = 104  # the picker's newest loaded weeks (two years)
VENUES_CHARTED: Final = 15
SYMBOLS_SHOWN: Final = 50
SORTS: Final[tuple[str, ...]] = get_args(SymbolSort)


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


def _week(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ValidationException(detail=f"`week` is not a date: {value[:20]!r}") from None


@get("/finra", name="ui_finra")
async def finra_week(
    conn: DbConn, week: FromQuery[str | None] = None, sort: FromQuery[str | None] = None
) -> Template:
    """A week picker; the week's venue market share as bars; its top symbols with HHI."""
    if sort and sort not in SORTS:
        raise ValidationException(detail=f"`sort` must be one of {', '.join(SORTS)}")
    sort_ = cast(SymbolSort, sort or "shares")
    weeks = await finra_reads.recent_weeks(conn, limit=WEEKS_SHOWN)
    chosen = _week(week) or (weeks[0] if weeks else None)
    summary, venues, symbols = [], [], []
    if chosen is not None:
        # Only the chosen week's rows are read: a range of the primary key.
        day_before = (chosen - dt.timedelta(days=1), "")  # weeks start on Mondays
        summary = [
            w for w in await finra_reads.weeks(conn, limit=10, after=day_before) if w.week == chosen
        ]
        venues = await finra_reads.venues(conn, chosen, limit=VENUES_CHARTED)
        symbols = await finra_reads.symbols(conn, chosen, sort=sort_, limit=SYMBOLS_SHOWN)
    chart = {
        "mpid": [v.mpid for v in venues],
        "x": list(range(len(venues))),
        "pct": [float(v.share_of_shares_pct or 0) for v in venues],
    }
    return Template(
        "finra.html",
        context={
            "weeks": weeks,
            "week": chosen,
            "sort": sort_,
            "sorts": SORTS,
            "summary": summary,
            "venues": venues,
            "symbols": symbols,
            "charted": VENUES_CHARTED,
            "chart": chart_json(chart),
        },
    )


DATA_PAGES = [loads_list, load_rejects, finra_week]
