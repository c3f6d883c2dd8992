"""A per-process cap on open live-update streams, so they cannot take every connection.

uvicorn answers 503 to everything once SPINE_API_MAX_CONNECTIONS connections
are open, health probes included, and a dashboard tab holds one connection
for as long as it is open. Past SPINE_UI_MAX_LIVE_STREAMS a new stream is
refused with 503 (the page then polls), which keeps the rest free.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["StreamSlots", "stream_cap"]


def stream_cap(max_streams: int, max_connections: int) -> int:
    """The streams allowed: the setting, never more than half of the process's connections."""
    return max(1, min(max_streams, max_connections // 2))


class StreamSlots:
    """Counts open streams; `take()` gives a release callable, or None when all are taken.

    The event loop runs `take` without interruption, so no lock is needed.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0

    def take(self) -> Callable[[], None] | None:
        if self.open >= self.cap:
            return None
        self.open += 1
        released = False

        def release() -> None:  # idempotent: called by the stream's end and by its collection
            nonlocal released
            if not released:
                released = True
                self.open -= 1

        return release
