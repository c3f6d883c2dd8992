"""The rules for dates and weeks, for every domain and front end.

A date is ISO 8601 `YYYY-MM-DD`; a week is named by its Monday (FINRA's
weeks, and any weekly data set after it); a date range is inclusive and its
start is not after its end. The functions raise ValueError with a message
for people; each front end turns that into its own kind of error.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from app.time_bounds import FIRST_DAY, LAST_DAY, days_out_of_range

__all__ = ["FIRST_WEEK", "LAST_WEEK", "is_week_start", "monday", "parse_date", "range_problem"]


def parse_date(text: str, what: str = "") -> date:
    """`YYYY-MM-DD` as a date, or ValueError naming `what` (e.g. "week")."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        label = f"{what} " if what else ""
        raise ValueError(f"{label}{text!r} is not a date (YYYY-MM-DD)") from None


def is_week_start(day: date) -> bool:
    """Weeks start on Monday."""
    return day.weekday() == 0


FIRST_WEEK: Final = FIRST_DAY + timedelta(days=-FIRST_DAY.weekday() % 7)
LAST_WEEK: Final = LAST_DAY - timedelta(days=(LAST_DAY.weekday() + 1) % 7 + 6)
"""The first and last weeks whose seven days are all in `app.time_bounds`' range."""


def monday(text: str) -> date:
    """A week given as its Monday (YYYY-MM-DD), or ValueError saying what is wrong."""
    day = parse_date(text, "week")
    if not is_week_start(day):
        raise ValueError(f"week {day} is not a Monday (weeks start on Monday)")
    if days_out_of_range(day, 7):
        raise ValueError(
            f"week {day} is out of range: the supported weeks are from {FIRST_WEEK} to {LAST_WEEK}"
        )
    return day


def range_problem(start: date | None, end: date | None) -> str | None:
    """What is wrong with an inclusive range (the start after the end), or None."""
    if start and end and start > end:
        return f"start_date {start} is after end_date {end}"
    return None
