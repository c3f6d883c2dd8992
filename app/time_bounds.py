"""The range of times the service accepts: one rule for the API, the CLI and submit.

PostgreSQL stores times far past year 9999, but Python's datetime (psycopg's,
msgspec's, every reader's) stops at 9999-12-31: a stored time beyond it makes
every later read of its row fail. A day of margin at each end keeps a time
representable in every UTC offset, so it also survives being shown in local time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

from app.errors import InvalidField

__all__ = [
    "DAYS_NOTE",
    "EARLIEST",
    "FIRST_DAY",
    "LAST_DAY",
    "LATEST",
    "RANGE_NOTE",
    "check_time",
    "days_out_of_range",
    "out_of_range",
]

EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)
RANGE_NOTE: Final = "from 0001-01-02 to 9999-12-30 (UTC)"
FIRST_DAY: Final = EARLIEST.date()
LAST_DAY: Final = LATEST.date() - timedelta(days=1)
"""The last whole day in the range: its end (the next midnight) is LATEST."""
DAYS_NOTE: Final = f"from {FIRST_DAY} to {LAST_DAY}"


def out_of_range(value: datetime, *, plus_seconds: float = 0.0) -> str | None:
    """Why `value` (moved `plus_seconds` later) is outside the range, or None when inside.

    A time without an offset is read as UTC here: the bounds have a day of margin.
    """
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if moment < EARLIEST:
        return f"must be {RANGE_NOTE}, not {value.isoformat()}"
    if moment > LATEST - timedelta(seconds=plus_seconds):  # never computes past the range
        later = f" plus {plus_seconds:g} seconds" if plus_seconds else ""
        return f"must be {RANGE_NOTE}, not {value.isoformat()}{later}"
    return None


def days_out_of_range(first: date, days: int = 1) -> bool:
    """Whether the `days` days from `first` leave FIRST_DAY..LAST_DAY: a date range,
    a week, or a day's times past its midnight would not be representable."""
    return first < FIRST_DAY or first > LAST_DAY - timedelta(days=days - 1)


def check_time(field: str, value: datetime | None, *, plus_seconds: float = 0.0) -> datetime | None:
    """`value` in UTC, ready to send; InvalidField (HTTP 422 naming `field`) outside the range.

    In UTC because PostgreSQL takes offsets up to ±15:59 only, where RFC 3339 and Python
    allow ±23:59: a valid `-23:13` sent as it is would be refused by the database.
    """
    if value is None:
        return None
    why = out_of_range(value, plus_seconds=plus_seconds)
    if why is not None:
        raise InvalidField(field, f"{field} {why}")
    return value.astimezone(UTC) if value.tzinfo is not None else value
