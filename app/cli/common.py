"""What every command group shares: running a coroutine, a connection, parsing values."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Any, TypeVar

import click
import psycopg

from app import db
from app.config import get_settings
from app.dates import parse_date as parse_iso_date
from app.time_bounds import EARLIEST, LATEST, RANGE_NOTE, out_of_range

__all__ = [
    "parse_age",
    "parse_date",
    "parse_params",
    "parse_seconds",
    "parse_since",
    "parse_time",
    "redact",
    "run_async",
    "with_conn",
]

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to its end from a (synchronous) click command.

    Ctrl-C and SIGTERM (see `app.embedded`) raise wherever the command is. The
    loop is made with both held, so neither can leave a half-built loop whose
    finalizer prints a traceback; a coroutine that never started is closed quietly.
    """
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            return runner.run(coro)
    finally:
        coro.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop; SIGINT or SIGTERM arriving meanwhile is raised once it exists.

    The handlers are swapped (not the thread's signal mask), since any other thread
    could take a signal the main thread blocks and still run its handler there.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.new_event_loop()
    pending: list[int] = []

    def later(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, later) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        loop = asyncio.new_event_loop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        for signum in pending:
            signal.raise_signal(signum)  # now its own handler runs
    except BaseException:
        loop.close()
        raise
    return loop


def with_conn(func: Callable[[db.AsyncConn], Awaitable[T]]) -> T:
    """Open one autocommit connection, call `func` with it, close it."""
    url = db.database_url(get_settings())

    async def go() -> T:
        async with await db.aconnect(url) as conn:
            return await func(conn)

    return run_async(go())


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONGEST_AGE = (LATEST - EARLIEST).total_seconds()  # longer reaches outside every time


def parse_age(value: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` -> seconds."""
    match = _AGE.match(value)
    if not match:
        raise click.BadParameter(f"{value!r}: use a number and a unit, like 30d, 12h or 90m")
    seconds = float(match.group(1)) * _AGE_SECONDS[match.group(2)]
    if seconds > _LONGEST_AGE:
        raise click.BadParameter(
            f"{value!r} is too long: at most {int(_LONGEST_AGE // 86400):,}d, the span of "
            f"the times the service accepts ({RANGE_NOTE.removeprefix('from ')})"
        )
    return seconds


def parse_seconds(value: str) -> float:
    """`90` (seconds), `1.5`, or an age like `30s`, `10m`, `2h` -> seconds."""
    try:
        return float(value)
    except ValueError:
        return parse_age(value)


def parse_time(value: str, *, option: str | None = None) -> datetime:
    """An ISO 8601 time; without an offset it is this machine's local time.

    Refused outside the range every reader can represent (`app.time_bounds`).
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time (ISO 8601, like 2026-01-06T16:30:00Z)", param_hint=option
        ) from None
    if moment.tzinfo is None:
        try:
            moment = moment.astimezone()
        except (OverflowError, OSError, ValueError):  # at the very ends of the calendar
            moment = moment.replace(tzinfo=UTC)
    why = out_of_range(moment)
    if why is not None:
        raise click.BadParameter(why, param_hint=option)
    return moment.astimezone(UTC)  # PostgreSQL takes offsets up to ±15:59 only


def parse_since(value: str | None, *, option: str | None = None) -> datetime | None:
    """`--since`: an age back from now (`1d`, `12h`) or an ISO 8601 time."""
    if value is None:
        return None
    if _AGE.match(value):
        try:
            return datetime.now(UTC) - timedelta(seconds=parse_age(value))
        except OverflowError:
            raise click.BadParameter(
                f"{value!r} reaches back before {RANGE_NOTE}", param_hint=option
            ) from None
    return parse_time(value, option=option)


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`-p key=value`: values are JSON when they parse as JSON, else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return (
        psycopg.conninfo.make_conninfo(url, password="***")  # noqa: S106 - a mask, not a secret
        if "password" in (psycopg.conninfo.conninfo_to_dict(url))
        else url
    )
