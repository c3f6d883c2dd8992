"""FINRA's two kinds of venue: `ats` (alternative trading systems) and `non_ats` (the rest).

FINRA publishes each kind's weekly volume as its own file and dataset
(`finra_ats_weekly`, `finra_otc_weekly`); both land in finra_weekly_volume,
where `venue_kind` is part of the key and of the unit a file replaces.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["DEFAULT_VENUE_KIND", "VENUE_KINDS", "VenueKind"]

VenueKind = Literal["ats", "non_ats"]
VENUE_KINDS: Final[tuple[VenueKind, ...]] = get_args(VenueKind)
"""The words the tables (a CHECK in migrations/021), params and responses use."""

DEFAULT_VENUE_KIND: Final[VenueKind] = "non_ats"
"""What a file that names no kind holds: the files loaded before ATS data came."""
