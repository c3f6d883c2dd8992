"""Completer: ends wait in the buffer and go out together, each counted once."""

from __future__ import annotations

import time
from typing import Any

from app.engine.batches import Record
from app.engine.models import End
from app.engine.outcomes import Attempted
from app.engine.registry import Registry
from tests.unit.worker.fakes import Pool, Writer, execution
from worker.completer import Completer, Ended


def ended(execution_id: str, status: Any = "completed") -> Ended:
    end = End(status, None, {"result": None})
    return Ended(execution(execution_id), Attempted(end, None, 0.001), end, 1.0, 2.0)


async def test_ends_wait_until_the_next_write_then_go_out_in_one_statement() -> None:
    writer = Writer()
    completer = Completer("w", Registry(), write=writer)
    completer.add(ended("a"))
    completer.add(ended("b", "failed"))
    assert writer.calls == []
    assert [r.id for r in completer.pending()] == ["a", "b"]  # the watchdog's view
    await completer.write(Pool())  # type: ignore[arg-type]
    [(records, claim)] = writer.calls
    assert [(r.id, r.status, r.started) for r in records] == [
        ("a", "completed", 1.0),
        ("b", "failed", 1.0),
    ]
    assert claim == 0
    assert completer.processed == 2
    assert completer.pending() == []


async def test_an_extra_record_and_a_claim_share_the_statement() -> None:
    writer = Writer([execution("next")])
    completer = Completer("w", Registry(), write=writer)
    completer.add(ended("a"))
    start = Record("slow", "running", time.monotonic(), time.monotonic())
    written = await completer.write(Pool(), claim=5, extra=start)  # type: ignore[arg-type]
    assert [e.id for e in written.claimed] == ["next"]
    assert written.unsure is False
    [(records, claim)] = writer.calls
    assert [r.id for r in records] == ["a", "slow"]
    assert claim == 5
    assert completer.processed == 1  # the start is not an end


async def test_nothing_to_write_and_nothing_to_claim_sends_nothing() -> None:
    writer = Writer()
    completer = Completer("w", Registry(), write=writer)
    written = await completer.write(Pool())  # type: ignore[arg-type]
    assert written.claimed == []
    assert writer.calls == []


async def test_an_end_no_longer_held_is_counted_as_lost(caplog: Any) -> None:
    writer = Writer(lost={"taken"})
    completer = Completer("w", Registry(), write=writer)
    completer.add(ended("taken"))
    completer.add(ended("kept"))
    await completer.write(Pool())  # type: ignore[arg-type]
    assert completer.processed == 2
    assert "execution taken was taken from w before it could finish" in caplog.text
    assert "kept was taken" not in caplog.text
