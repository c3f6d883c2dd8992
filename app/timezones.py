"""Which time zone names are accepted: IANA zone names, not the system's file names.

`zoneinfo.ZoneInfo` opens any file under the system's zoneinfo directory, so it
also takes `localtime` (the host's own zone, which differs between machines),
`posixrules` and `Factory` (placeholders of the tz database's build). A
schedule's zone must mean the same on every host, so only the names the
database lists as zones or links are accepted.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Final

__all__ = ["is_iana_zone"]

_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def is_iana_zone(name: str) -> bool:
    """True for `America/New_York`, `UTC`, `Etc/GMT+5`; False for `localtime`, `right/UTC`, ``."""
    return name in _zones()
