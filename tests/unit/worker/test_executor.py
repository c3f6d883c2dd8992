"""Executor: one execution's start and end, without a server (the writes go to fakes)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.config import Settings
from app.engine import leases
from app.engine.context import PipelineContext
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from tests.unit.worker.fakes import Pool, Writer, execution
from tests.unit.worker.test_claimer import Release
from worker.batch_size import BatchSize
from worker.claimer import Claimer
from worker.completer import Completer
from worker.executor import Executor
from worker.watchdog import Watchdog

POOL: Any = Pool()


class Started(Writer):
    """A writer that tells when a start (a `running` record) was written."""

    def __init__(self) -> None:
        super().__init__()
        self.start_written = asyncio.Event()

    async def __call__(self, pool: Any, worker_id: str, records: Any, *, claim: int) -> Any:
        answer = await super().__call__(pool, worker_id, records, claim=claim)
        if any(r.status == "running" for r in records):
            self.start_written.set()
        return answer


def executor_for(
    run: Any, writer: Writer, release: Release | None = None
) -> tuple[Executor, Claimer, Completer]:
    registry = Registry([Pipeline("noop", "A test pipeline.", NoParams, run)])
    completer = Completer("w", registry, write=writer)
    claimer = Claimer("w", completer, BatchSize(8), release=release or Release())
    executor = Executor(
        "w",
        Settings(),
        registry,
        claimer=claimer,
        completer=completer,
        watchdog=Watchdog(1.0, lambda _e: None),
    )
    return executor, claimer, completer


async def test_a_quick_execution_writes_nothing_its_end_waits_with_its_start() -> None:
    async def quick(_ctx: PipelineContext, _p: NoParams) -> Summary:
        return {"rows": 1}

    writer = Writer()
    executor, _, completer = executor_for(quick, writer)
    await executor.run(POOL, execution("e"))
    assert writer.calls == []
    [record] = completer.pending()
    assert (record.id, record.status, record.payload["result"]) == ("e", "completed", {"rows": 1})
    assert record.started is not None  # its start is written with its end
    assert executor.current is None


async def test_a_cancel_seen_before_the_start_ends_it_cancelled_without_running_it() -> None:
    ran: list[str] = []

    async def never(ctx: PipelineContext, _p: NoParams) -> Summary:
        ran.append(ctx.execution_id)
        return {}

    executor, _, completer = executor_for(never, Writer())
    executor.cancel_seen("e")
    await executor.run(POOL, execution("e"))
    assert ran == []
    [record] = completer.pending()
    assert (record.status, record.started) == ("cancelled", None)
    assert record.payload == {"reason": "cancelled before it started"}


async def test_a_cancel_while_it_runs_reaches_the_pipeline() -> None:
    async def waits(ctx: PipelineContext, _p: NoParams) -> Summary:
        executor.cancel_seen(ctx.execution_id)  # as the listener would, on a NOTIFY
        await ctx.sleep(60)
        return {}

    executor, _, completer = executor_for(waits, Writer())
    await executor.run(POOL, execution("e"))
    [record] = completer.pending()
    assert record.status == "cancelled"


async def test_a_slow_execution_writes_its_start_and_gives_back_the_rest_of_its_batch() -> None:
    writer = Started()
    release = Release()

    async def slow(_ctx: PipelineContext, _p: NoParams) -> Summary:
        await writer.start_written.wait()  # runs until its start is on record
        return {}

    executor, claimer, completer = executor_for(slow, writer, release)
    claimer.held.extend([execution("next1"), execution("next2")])
    await executor.run(POOL, execution("e"))
    [(records, claim)] = writer.calls
    assert [(r.id, r.status) for r in records] == [("e", "running")]
    assert claim == 0
    assert release.calls == [(leases.GIVEN_BACK_BEHIND_SLOW, ["next1", "next2"])]
    assert claimer.next() is None
    [record] = completer.pending()
    assert (record.id, record.status, record.started) == ("e", "completed", None)
    assert claimer.size.next() == 1  # a long run resets the batch size
