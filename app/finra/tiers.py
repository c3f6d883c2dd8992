"""FINRA's tiers: the one table from the names files and APIs use to FINRA's tier ids.

FINRA's OTC Transparency data names a tier three ways: by its identifier
(`T1`, `T2`, `OTC`), by its description in the files (`NMS Tier 1`, `OTC`),
and by the summary type of its API (`OTCE`, and the file names' lower case
`otc`). Partitions are keyed by the identifier (`2025-12-15/OTC`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

__all__ = ["PUBLICATION_DELAY", "TIERS", "TIER_NAMES", "tier_id"]

TIERS: Final = ("OTC", "T1", "T2")
"""FINRA's tier identifiers, in the order the pages and partitions list them."""

TIER_NAMES: Final = {
    "otc": "OTC",
    "OTCE": "OTC",
    "t1": "T1",
    "NMS Tier 1": "T1",
    "t2": "T2",
    "NMS Tier 2": "T2",
}
"""Every other name of a tier -> its identifier."""

PUBLICATION_DELAY: Final = {
    "OTC": timedelta(weeks=4),
    "T1": timedelta(weeks=2),
    "T2": timedelta(weeks=4),
}
"""How long after a week ends FINRA publishes it, by tier (its published schedule:
NMS tier 1 two weeks after the week, tier 2 and OTC four)."""


def tier_id(name: str) -> str:
    """A tier's identifier from any of its names, or ValueError."""
    if name in TIERS:
        return name
    try:
        return TIER_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown FINRA tier {name!r}; tiers: {', '.join(TIERS)}") from None
