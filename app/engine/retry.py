"""Exponential backoff, the one helper behind every "try again later" loop.

Used where the engine waits out an outage (recording an end, the listener's
reconnect) and where the supervisor backs off a crash loop.
"""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Delays first, 2·first, 4·first, ... capped at `cap`; `reset()` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, got {first} and {cap}")
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        """The delay to wait now; the following one doubles, up to the cap."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first
