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
import time
from datetime import UTC, datetime

__all__ = ["made_at", "new_ids"]


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


def made_at(execution_id: str) -> datetime | None:
    """When a version 7 id was made; None for any other id (or text that is none)."""
    if len(execution_id) != 36 or execution_id[14] != "7" or execution_id[8] != "-":
        return None
    try:
        millis = int(execution_id[:8] + execution_id[9:13], 16)
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
