"""One mechanism for a security's symbol; each domain states its alphabet and case rule.

OTC and FINRA symbols are case-insensitive and stored upper-cased (`acme` is
`ACME`); a domain whose symbols are case-sensitive (`CPK` and `CpK` are two
securities) keeps them as given. One `SymbolRule` gives the API its pattern
and description and the CLI and the pipelines' params the same check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["InvalidSymbol", "SymbolRule"]


class InvalidSymbol(ValueError):
    """Not a symbol; the message says what one is."""


@dataclass(frozen=True)
class SymbolRule:
    """1 to `max_length` characters of `alphabet` (a regex character class body)."""

    alphabet: str
    max_length: int
    described: str  # the alphabet for people, e.g. "A-Z 0-9 . -"
    case_sensitive: bool = False
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    @property
    def pattern(self) -> str:
        """The regex the API declares for path and query parameters."""
        return f"^[{self.alphabet}]{{1,{self.max_length}}}$"

    @property
    def help(self) -> str:
        case = "case-sensitive" if self.case_sensitive else "any case; upper-cased"
        return f"1-{self.max_length} of {self.described} ({case})."

    def key(self, text: str) -> str:
        """The stored form of `text`, or InvalidSymbol saying what a symbol is."""
        if not self._compiled.match(text):
            raise InvalidSymbol(f"{text!r} is not a symbol: {self.help}")
        return text if self.case_sensitive else text.upper()
