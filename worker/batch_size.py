"""How many executions a worker claims at once: a batch only while it pays.

A batch saves a statement and a commit per execution, but what it holds
waits behind what runs before it, and its ends show only when it is done.
So the size starts at 1 and doubles, up to SPINE_CLAIM_BATCH, only while
the queue is deep (each claim got all it asked for) and a whole batch ran
within QUICK_BATCH_SECONDS; a slower batch halves it, a shallow queue
brings it down to what was there, and an execution that ran long resets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["QUICK_BATCH_SECONDS", "BatchSize"]

QUICK_BATCH_SECONDS = 0.02
"""A batch that ran within this may grow; one that took longer shrinks."""


class BatchSize:
    def __init__(self, cap: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cap = cap
        self.size = 1
        self._clock = clock
        self._full = False
        self._since = 0.0
        self._slow = False

    def next(self) -> int:
        """The size of the next claim, judged from how the last batch went."""
        if self._slow:
            self.size = 1
        elif self._full:
            quick = self._clock() - self._since <= QUICK_BATCH_SECONDS
            self.size = min(self.cap, self.size * 2) if quick else max(1, self.size // 2)
        self._full = self._slow = False
        return self.size

    def claimed(self, got: int, asked: int) -> None:
        """A claim asked for `asked` and got `got`; the batch starts running now."""
        self._full = got == asked
        self._since = self._clock()
        if got < asked:
            self.size = max(1, got)

    def slow(self) -> None:
        """An execution of this batch ran long, or ended in a way written on its own."""
        self._slow = True
