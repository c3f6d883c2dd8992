"""Execution ids: time-ordered UUIDs (version 7, RFC 9562) that say when they were made.

The history is partitioned by `created_at` (app.engine.segments) and a look-up by
id alone cannot prune it: every day segment kept is planned, locked and probed
(15 ms a look-up with a year of segments, 120 ms on a new connection). An id
whose first 48 bits are its Unix time in milliseconds tells the reads
(app.engine.history) which day or two to look in. Ids made elsewhere (version 4
from the column's default, older rows) carry no time and are looked up
everywhere, as before. Time-ordered ids also insert at the right edge of the hot
table's primary key instead of at random pages.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta

__all__ = ["made_at", "new_id", "new_ids"]


def new_id() -> str:
    """One id (the ids a statement inserts are known before it runs)."""
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """`n` ids of this millisecond: its time, then 74 random bits from one read of the
    system's random source, written as `str(uuid.UUID)` writes them."""
    stamp = f"{time.time_ns() // 1_000_000:012x}"[-12:]
    digits = os.urandom(10 * n).hex()  # 20 hex digits an id; 19 are used
    ids = []
    for at in range(0, 20 * n, 20):
        h = digits[at : at + 20]
        # The version nibble is 7; the variant's two high bits are 10.
        variant = "89ab"[int(h[3], 16) & 3]
        ids.append(f"{stamp[:8]}-{stamp[8:]}-7{h[:3]}-{variant}{h[4:7]}-{h[7:19]}")
    return ids


_VERSION_7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST_MS = (datetime(9000, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
"""Later than any id this code makes; a day either side of it is still a datetime."""


def made_at(execution_id: str) -> datetime | None:
    """When a version 7 id (as `new_ids` writes it) was made; None for any other id, or
    text that is none, or a time no clock gives (a crafted id)."""
    if not _VERSION_7.fullmatch(execution_id):
        return None
    millis = int(execution_id[:8] + execution_id[9:13], 16)
    return _EPOCH + timedelta(milliseconds=millis) if millis < _LATEST_MS else None
