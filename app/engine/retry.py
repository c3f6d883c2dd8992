"""Trying again: `RetryPolicy` (a pipeline's failed attempts) and `Backoff` (outages).

`RetryPolicy` is part of a Pipeline value. `budget` resolves it (with
SPINE_MAX_ATTEMPTS and the submission's `Overrides`) into the execution's row,
for a submit, a schedule's fire and a manual run alike, so every later
decision reads the row: the finish of a failed attempt computes the wait in
SQL on the database clock, and lease recovery counts a lost worker against the
same `max_attempts`. The row keeps its `Overrides` too, so a manual retry
resolves a fresh budget the same way: each pipeline's `budget` as the policy
and the environment say now, under the row's own overrides
(app.engine.retries).

`Backoff` is the in-process helper behind every "try again later" loop: where
the engine waits out an outage (recording an end, the listener's reconnect)
and where the supervisor backs off a crash loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

import msgspec

from app.errors import InvalidRequest

__all__ = [
    "MAX_ATTEMPTS_LIMIT",
    "MAX_SECONDS",
    "NO_OVERRIDES",
    "Backoff",
    "Budget",
    "Overrides",
    "RetryPolicy",
    "budget",
]

MAX_ATTEMPTS_LIMIT = 100
"""The most attempts any execution may have (the column's CHECK says the same)."""

MAX_SECONDS: Final = 7 * 86_400.0
"""The longest timeout, retry backoff or delay a submission may ask for (a week)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a pipeline's failed attempts are retried.

    The wait before attempt k+1 is `backoff_seconds` * 2^(k-1), plus up to 10%
    jitter, capped by `max_backoff_seconds` and SPINE_RETRY_MAX_BACKOFF.
    Errors of the `permanent` types fail at once, and so does bad input
    (`InvalidRequest`: invalid params, an invalid input file) whatever the policy.
    """

    max_attempts: int | None = None
    """None: SPINE_MAX_ATTEMPTS."""
    backoff_seconds: float = 10.0
    max_backoff_seconds: float | None = None
    """None: SPINE_RETRY_MAX_BACKOFF alone."""
    permanent: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts is not None and not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be 1-{MAX_ATTEMPTS_LIMIT}")
        if self.backoff_seconds < 0:
            raise ValueError("backoff_seconds must be >= 0")
        if self.max_backoff_seconds is not None and self.max_backoff_seconds < 0:
            raise ValueError("max_backoff_seconds must be >= 0")

    def is_permanent(self, exc: BaseException) -> bool:
        """True when retrying cannot help: bad input, or a type the pipeline named."""
        return isinstance(exc, (InvalidRequest, *self.permanent))

    def max_backoff(self, setting: float) -> float:
        """The cap of the wait: this policy's, never above SPINE_RETRY_MAX_BACKOFF."""
        return (
            setting if self.max_backoff_seconds is None else min(self.max_backoff_seconds, setting)
        )


class Budget(NamedTuple):
    """What an execution's row carries of its policy: every later decision reads it."""

    max_attempts: int
    retry_backoff_seconds: float
    timeout_seconds: float | None


class Overrides(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a submission set of its budget itself (None: not set).

    Stored on the execution's row (`executions.overrides`, only the ones
    set), so a manual retry keeps them over whatever the policy and the
    environment say by then.
    """

    max_attempts: int | None = None
    retry_backoff_seconds: float | None = None
    timeout_seconds: float | None = None


NO_OVERRIDES: Final = Overrides()


def budget(
    policy: RetryPolicy, default_attempts: int, overrides: Overrides = NO_OVERRIDES
) -> Budget:
    """The one place an execution's budget is resolved, however it comes to exist.

    The pipeline's policy, then the environment's default
    (`default_attempts`: SPINE_MAX_ATTEMPTS) where the policy says nothing,
    then the submission's overrides. InvalidRequest for an override out of
    bounds. A manual retry's statement lays a row's stored overrides over
    `budget(policy, default_attempts)` the same way, each set one winning.
    """
    attempts = overrides.max_attempts
    attempts = attempts if attempts is not None else policy.max_attempts
    attempts = attempts if attempts is not None else default_attempts
    if not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
        raise InvalidRequest(f"max_attempts must be 1-{MAX_ATTEMPTS_LIMIT}, not {attempts}")
    backoff = overrides.retry_backoff_seconds
    backoff = policy.backoff_seconds if backoff is None else backoff
    if not 0 <= backoff <= MAX_SECONDS:
        raise InvalidRequest(f"retry_backoff_seconds must be 0-{MAX_SECONDS:g}, not {backoff:g}")
    timeout = overrides.timeout_seconds
    if timeout is not None and not 0 < timeout <= MAX_SECONDS:
        raise InvalidRequest(f"timeout_seconds must be > 0 and <= {MAX_SECONDS:g}")
    return Budget(attempts, float(backoff), timeout)


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
