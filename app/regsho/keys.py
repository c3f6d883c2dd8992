"""What a Reg SHO market and symbol are: one definition for the ingest, the API and the CLI.

FINRA publishes one file a day per market: five reporting facilities and
CNMS, its consolidation of the four NMS ones (FNQC + FNSQ + FNYX + FNRA).
Symbols are case-sensitive and kept as published (`CPK` and `CpK` are two
securities; `BRK/A` has a slash, sent as %2F in a URL path): this domain's
own `SymbolRule`, never upper-cased.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from app.symbols import SymbolRule

__all__ = [
    "ALL",
    "CONSOLIDATED",
    "FACILITIES",
    "MARKETS",
    "MARKET_CHOICES",
    "MARKET_NAMES",
    "NMS_FACILITIES",
    "OTC_FACILITY",
    "SYMBOLS",
    "Market",
    "MarketChoice",
]

Market = Literal["CNMS", "FNQC", "FNRA", "FNSQ", "FNYX", "FORF"]
MARKETS: Final[tuple[Market, ...]] = get_args(Market)
"""The six files of a day, in the order partitions and pages list them."""

CONSOLIDATED: Final = "CNMS"
OTC_FACILITY: Final = "FORF"
NMS_FACILITIES: Final = ("FNQC", "FNRA", "FNSQ", "FNYX")
"""The facilities whose sum CNMS is, for every NMS symbol and day."""
FACILITIES: Final = (*NMS_FACILITIES, OTC_FACILITY)
"""The five facility files: their sum counts every trade once (CNMS left out)."""

MarketChoice = Literal["all", "CNMS", "FNQC", "FNRA", "FNSQ", "FNYX", "FORF"]
ALL: Final = "all"
MARKET_CHOICES: Final[tuple[MarketChoice, ...]] = get_args(MarketChoice)

MARKET_NAMES: Final = {
    "CNMS": "Consolidated NMS (FNQC + FNSQ + FNYX + FNRA)",
    "FNQC": "FINRA/Nasdaq TRF Chicago",
    "FNRA": "FINRA Alternative Display Facility (ADF)",
    "FNSQ": "FINRA/Nasdaq TRF Carteret",
    "FNYX": "FINRA/NYSE TRF",
    "FORF": "FINRA OTC Reporting Facility (OTC equities)",
}

SYMBOLS: Final = SymbolRule(
    alphabet="A-Za-z0-9./-", max_length=16, described="A-Z a-z 0-9 . / -", case_sensitive=True
)
