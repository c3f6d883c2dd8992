"""The OTC symbol rule, shared by the API, the CLI and pipeline params.

1-12 of A-Z 0-9 . - in any case; stored and compared upper case (the ingest
rules in migrations/010 accept the same characters, upper case only).
"""

from __future__ import annotations

from typing import Final

from app.symbols import InvalidSymbol, SymbolRule

__all__ = ["SYMBOLS", "SYMBOL_HELP", "SYMBOL_PATTERN", "InvalidSymbol", "normalize_symbol"]

SYMBOLS: Final = SymbolRule(alphabet="A-Za-z0-9.-", max_length=12, described="A-Z 0-9 . -")
SYMBOL_PATTERN: Final = SYMBOLS.pattern
SYMBOL_HELP: Final = SYMBOLS.help
normalize_symbol: Final = SYMBOLS.key
"""`acme` -> `ACME`; InvalidSymbol when the value breaks the rule."""
