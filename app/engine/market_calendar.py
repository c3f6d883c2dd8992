"""The NYSE trading calendar: which weekdays the market is closed, and why.

From the `holidays` package's financial calendar (`holidays.financial_holidays
("NYSE")`), maintained upstream with each year's rules and one-off closings, so
no list is written by hand here. A remote source asks it before fetching a
day's file: a holiday has none, and its partition is recorded `no_data`
without asking the publisher. Any domain with daily market files uses it.
"""

from __future__ import annotations

import functools
from datetime import date

import holidays

__all__ = ["closed_reason", "is_trading_day"]


@functools.cache
def _nyse(year: int) -> holidays.HolidayBase:
    return holidays.financial_holidays("NYSE", years=year)


def closed_reason(day: date) -> str | None:
    """Why the NYSE is closed on `day` (the holiday's name, or `weekend`); None when open."""
    if day.weekday() >= 5:
        return "weekend"
    name = _nyse(day.year).get(day)
    return None if name is None else str(name)


def is_trading_day(day: date) -> bool:
    """True when the NYSE is open on `day`."""
    return closed_reason(day) is None
