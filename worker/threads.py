"""A coroutine run in a daemon thread with an event loop of its own, and its stop.

The heartbeat and the scheduler each run this way, so neither can be starved by
a pipeline that hogs the worker's event loop. The coroutine watches `stopping`
(and waits on it between passes); `stop` sets it and waits a bounded time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["LoopThread"]


class LoopThread:
    """`run()` under `asyncio.run` in a daemon thread named `name`."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._run = run
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the coroutine to end, then wait for its thread at most `timeout` seconds."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
