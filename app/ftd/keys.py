"""What an SEC fails-to-deliver symbol, CUSIP, period and date look like, for every front end.

Symbols are kept as the SEC publishes them (case-sensitive, `app.symbols`' one
mechanism); a period is a half-month key (`2022-12a`) by the engine's calendar
(`app.engine.datasets`). The functions raise ValueError with a message for people.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from app.engine.datasets import Partition, parse_period
from app.symbols import SymbolRule

__all__ = [
    "CUSIP_PATTERN",
    "PERIOD_PATTERN",
    "SYMBOLS",
    "SYMBOL_PATTERN",
    "cusip_key",
    "period_dates",
    "period_key",
    "period_of",
]

SYMBOLS: Final = SymbolRule(
    alphabet="A-Za-z0-9./-", max_length=16, described="A-Z a-z 0-9 . / -", case_sensitive=True
)
SYMBOL_PATTERN: Final = SYMBOLS.pattern
CUSIP_PATTERN: Final = r"^[0-9A-Za-z*@#]{9}$"
PERIOD_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}[ab]$"


def cusip_key(text: str) -> str:
    """The stored form of a CUSIP (upper case), or ValueError if it cannot be one."""
    if re.fullmatch(CUSIP_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not a CUSIP (9 letters, digits, *, @ or #)")
    return text.upper()


def period_of(text: str) -> Partition:
    """A half-month key (`2022-12a`) as its partition, or ValueError saying what is wrong."""
    return Partition("half_month", parse_period("half_month", text))


def period_key(text: str) -> str:
    """A half-month key, checked (`2022-12a`)."""
    return period_of(text).period


def period_dates(text: str) -> tuple[date, date]:
    """A half-month's first and last calendar day."""
    period = period_of(text)
    return period.start, period.last_day
