"""The one rule for an OTC symbol, shared by the API, the CLI and pipeline params.

1-12 of A-Z 0-9 . - in any case; stored and compared upper case (the ingest
rules in migrations/010 accept the same characters, upper case only).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SYMBOL_HELP", "SYMBOL_PATTERN", "InvalidSymbol", "normalize_symbol"]

SYMBOL_PATTERN: Final = r"^[A-Za-z0-9.-]{1,12}$"
SYMBOL_HELP: Final = "1-12 of A-Z 0-9 . - (any case; upper-cased)."
_SYMBOL = re.compile(SYMBOL_PATTERN)


class InvalidSymbol(ValueError):
    """Not a symbol; the message says what one is."""


def normalize_symbol(value: str) -> str:
    """`acme` -> `ACME`; InvalidSymbol when `value` breaks the rule."""
    if not _SYMBOL.match(value):
        raise InvalidSymbol(f"{value!r} is not a symbol: {SYMBOL_HELP}")
    return value.upper()
