"""The FTD dashboard page: a symbol's fails over time, and a half-month's persistent fails.

Thin like the API's controller: it reads through `app.ftd.reads`; the chart
gets its numbers as a JSON data block (`ftd.js` draws quantity as bars and
value as a line).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final

from litestar import get
from litestar.exceptions import ValidationException
from litestar.params import FromQuery
from litestar.response import Template

from app.ftd import keys
from app.ftd import reads as ftd_reads
from app.ui.charts import chart_json
from app.web.connection import DbConn

__all__ = ["PAGES", "ftd_page"]

PERIODS_SHOWN: Final = 48  # two years of half-months in the picker
PERSISTENT_SHOWN: Final = 50
MAX_HISTORY_DAYS: Final = 2000


def _checked(parse: Callable[[str], str], value: str, name: str) -> str:
    """`value` by one of app.ftd.keys' rules, or a 400 naming the field."""
    try:
        return str(parse(value))
    except ValueError as exc:
        raise ValidationException(detail=f"`{name}`: {exc}") from None


@get("/ftd", name="ui_ftd")
async def ftd_page(
    conn: DbConn,
    symbol: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    min_days: FromQuery[int] = 5,
) -> Template:
    """A period picker and its persistent fails; a symbol's quantity (bars) and value (line)."""
    if not 1 <= min_days <= 31:
        raise ValidationException(detail="`min_days` must be from 1 to 31")
    periods = await ftd_reads.recent_periods(conn, limit=PERIODS_SHOWN)
    chosen = _checked(keys.period_key, period[:20], "period") if period else None
    chosen = chosen or (periods[0] if periods else None)
    persistent: list[ftd_reads.PersistentFail] = []
    if chosen is not None and await ftd_reads.period_loaded(conn, chosen):
        first, last = keys.period_dates(chosen)
        persistent = await ftd_reads.persistent(
            conn, chosen, first, last, min_days=min_days, limit=PERSISTENT_SHOWN
        )
    shown = _checked(keys.SYMBOLS.key, symbol.strip()[:40], "symbol") if symbol else None
    shown = shown or (persistent[0].symbol if persistent else None)
    history = await ftd_reads.symbol_history(conn, shown, limit=MAX_HISTORY_DAYS) if shown else []
    midnight = dt.time(tzinfo=dt.UTC)
    chart = {
        "symbol": shown,
        "x": [int(dt.datetime.combine(h.settlement_date, midnight).timestamp()) for h in history],
        "quantity": [h.quantity for h in history],
        "value": [float(h.fail_value) if h.fail_value is not None else None for h in history],
    }
    return Template(
        "ftd.html",
        context={
            "periods": periods,
            "period": chosen,
            "min_days": min_days,
            "persistent": persistent,
            "symbol": shown,
            "history": history,
            "chart": chart_json(chart),
        },
    )


PAGES = [ftd_page]
