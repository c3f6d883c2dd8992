"""Per-client backoff on /ui/login, so the token cannot be guessed at network speed.

One mistyped token is free. From the second wrong token in a row a client
must wait before it may try again: `FIRST_WAIT` seconds, doubling with each
further failure up to `MAX_WAIT`; a login with the right token forgets the
client. Attempts made while waiting are refused without looking at the token,
so hammering gains nothing (and costs the client nothing more either).

The table is per API process (each uvicorn worker keeps its own) and bounded:
past `MAX_CLIENTS` the client least recently seen is forgotten, and a client
idle for `FORGET_AFTER` starts afresh.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["FIRST_WAIT", "MAX_CLIENTS", "MAX_WAIT", "LoginThrottle"]

FIRST_WAIT: Final = 1.0
MAX_WAIT: Final = 60.0
FREE_FAILURES: Final = 1
FORGET_AFTER: Final = 15 * 60.0
MAX_CLIENTS: Final = 10_000


@dataclass
class _Client:
    failures: int
    blocked_until: float
    last_failure: float


class LoginThrottle:
    """Failures per client (an address), and until when each client must wait."""

    def __init__(
        self,
        *,
        first_wait: float = FIRST_WAIT,
        max_wait: float = MAX_WAIT,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before its next attempt is checked (0: none)."""
        record = self._clients.get(client)
        return 0.0 if record is None else max(0.0, record.blocked_until - self._clock())

    def failed(self, client: str) -> float:
        """Count a wrong token; the wait it imposes from now (0 for a free failure)."""
        now = self._clock()
        record = self._clients.pop(client, None)
        if record is None or now - record.last_failure > FORGET_AFTER:
            record = _Client(failures=0, blocked_until=now, last_failure=now)
        record.failures += 1
        record.last_failure = now
        delay = self._delay(record.failures)
        record.blocked_until = now + delay
        self._clients[client] = record  # most recently seen last
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
        return delay

    def succeeded(self, client: str) -> None:
        """The right token: the client starts afresh."""
        self._clients.pop(client, None)

    def _delay(self, failures: int) -> float:
        counted = failures - FREE_FAILURES
        if counted <= 0:
            return 0.0
        # Cap the exponent too: 2**counted must not grow without bound.
        return min(self._first_wait * 2.0 ** min(counted - 1, 32), self._max_wait)
