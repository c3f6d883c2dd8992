"""A one-shot command's coroutine runner, when Ctrl-C or SIGTERM comes as it starts."""

from __future__ import annotations

import gc
import os
import selectors
import signal
import sys
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from app.cli.common import run_async


@pytest.fixture
def sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit, as `app.embedded` makes it for one-shot commands."""

    def exit_(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)],
    ids=["sigterm", "ctrl-c"],
)
def test_a_stop_signal_while_the_event_loop_is_made_exits_without_a_traceback(
    sigterm_exits: None,
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
    raised: type[BaseException],
) -> None:
    """The signal lands while the loop's constructor runs (it makes its selector first).
    Raised there, it left a half-built loop whose finalizer printed a traceback
    (`no attribute '_signal_handlers'`), and a coroutine never awaited."""
    made = selectors.DefaultSelector

    def selector_then_signal() -> selectors.BaseSelector:
        selector = made()
        os.kill(os.getpid(), signum)
        return selector

    gc.collect()  # what earlier tests left is not this test's
    monkeypatch.setattr(selectors, "DefaultSelector", selector_then_signal)
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def never_reached() -> int:
        return 1

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(raised) as exited:
            run_async(never_reached())
        code = getattr(exited.value, "code", None)
        del exited  # its traceback holds the frames that hold the loop
        gc.collect()
    assert code == (128 + signum if raised is SystemExit else None)
    assert [str(u.exc_value) for u in unraisable] == []
    assert [str(w.message) for w in warned] == []


def test_a_coroutine_runs_to_its_answer() -> None:
    async def answer() -> int:
        return 42

    assert run_async(answer()) == 42
