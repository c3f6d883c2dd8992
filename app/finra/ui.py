"""FINRA's dashboard page: a week's venue market share and its top symbols.

Thin like the API's controller: it reads through `app.finra.reads`; the venue
chart gets its numbers as a JSON data block (`finra.js` draws it).
"""

from __future__ import annotations

import datetime as dt
from typing import Final, cast, get_args

from litestar import get
from litestar.exceptions import ValidationException
from litestar.params import FromQuery
from litestar.response import Template

from app.finra import reads as finra_reads
from app.finra.api import parse_week
from app.finra.reads import SymbolSort
from app.ui.charts import chart_json
from app.web.connection import DbConn

__all__ = ["PAGES", "finra_week"]

WEEKS_SHOWN: Final = 104  # the picker's newest loaded weeks (two years)
VENUES_CHARTED: Final = 15
SYMBOLS_SHOWN: Final = 50
SORTS: Final[tuple[str, ...]] = get_args(SymbolSort)


def _week(value: str | None) -> dt.date | None:
    """The week's Monday by the API's and the CLI's rule (`keys.monday`), with their message
    and status: not a date is a 400, a date but not a Monday a 422."""
    return parse_week(value[:20], "query") if value else None


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


PAGES = [finra_week]
