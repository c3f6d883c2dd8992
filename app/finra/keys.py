"""What a FINRA symbol, MPID and week look like: one definition for the API and the CLI.

The ingest stores symbols and MPIDs upper-cased (normalize.py), so lookups
upper-case what they are given: `fnma` and `FNMA` are the same symbol. Symbols
follow `app.symbols`' one mechanism and weeks `app.dates`' rule; the functions
raise ValueError with a message for people.
"""

from __future__ import annotations

import re
from typing import Final

from app.dates import monday
from app.symbols import SymbolRule

__all__ = ["MPID_PATTERN", "SYMBOLS", "SYMBOL_PATTERN", "monday", "mpid_key", "symbol_key"]

SYMBOLS: Final = SymbolRule(alphabet="A-Za-z0-9.-", max_length=16, described="A-Z 0-9 . -")
SYMBOL_PATTERN: Final = SYMBOLS.pattern
symbol_key: Final = SYMBOLS.key
MPID_PATTERN = r"^[A-Za-z0-9]{1,8}$"


def mpid_key(text: str) -> str:
    """The stored form of an MPID (upper case), or ValueError if it cannot be one."""
    if re.fullmatch(MPID_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not an MPID (1 to 8 letters or digits)")
    return text.upper()
