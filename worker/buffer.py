"""A buffer of writes that wait to go out together, in one statement.

Generic and free of any database, so the rule it keeps is tested on its own:
items leave only all at once and in the order they came (`take`), and another
thread may look at what waits without taking it (`peek`: the watchdog writes
what waits in its last transaction, while the loop that owns the buffer is
stuck). pgqueuer's TimedOverflowBuffer plays the same part; here the flush is
not on a timer but at the worker's next statement (a claim, a start), which
`Completer` decides.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Buffer"]

T = TypeVar("T")


class Buffer(Generic[T]):
    """Items waiting for one batched write; `take()` empties it."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()  # `peek` runs on another thread

    def add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    def take(self) -> list[T]:
        """Everything waiting, oldest first; the buffer is empty afterwards."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def peek(self) -> list[T]:
        """A copy of what waits, left in place."""
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.peek())
