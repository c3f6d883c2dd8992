"""What a FINRA symbol, MPID and week look like: one definition for the API and the CLI.

The ingest stores symbols and MPIDs upper-cased (normalize.py), so lookups
upper-case what they are given: `fnma` and `FNMA` are the same symbol. The
patterns are the API's path and query constraints; the functions apply the
same rules for the CLI and raise ValueError with a message for people.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["MPID_PATTERN", "SYMBOL_PATTERN", "monday", "mpid_key", "symbol_key"]

SYMBOL_PATTERN = r"^[A-Za-z0-9.-]{1,16}$"
MPID_PATTERN = r"^[A-Za-z0-9]{1,8}$"


def symbol_key(text: str) -> str:
    """The stored form of a symbol (upper case), or ValueError if it cannot be one."""
    if re.fullmatch(SYMBOL_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not a symbol (1 to 16 letters, digits, '.' or '-')")
    return text.upper()


def mpid_key(text: str) -> str:
    """The stored form of an MPID (upper case), or ValueError if it cannot be one."""
    if re.fullmatch(MPID_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not an MPID (1 to 8 letters or digits)")
    return text.upper()


def monday(text: str) -> date:
    """A week given as its Monday (YYYY-MM-DD), or ValueError saying what is wrong."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"week {text!r} is not a date (YYYY-MM-DD)") from None
    if day.weekday() != 0:
        raise ValueError(f"week {day} is not a Monday (FINRA weeks start on Monday)")
    return day
