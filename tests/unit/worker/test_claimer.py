"""Claimer: claims sized by BatchSize, give-backs, and cancels seen before a start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from app.engine import leases
from app.engine.registry import Registry
from tests.unit.worker.fakes import Pool, Writer, execution
from worker.batch_size import BatchSize
from worker.claimer import Claimer
from worker.completer import Completer


class Release:
    """A fake `leases.release_held`: gives back what is asked, or refuses while `down`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str] | None]] = []
        self.down = False

    async def __call__(
        self, conn: Any, worker_id: str, *, reason: str, ids: Sequence[str] | None = None
    ) -> list[str]:
        if self.down:
            raise psycopg.OperationalError("the server went away")
        self.calls.append((reason, None if ids is None else list(ids)))
        return list(ids or [])


def claimer_for(writer: Writer, release: Release, cap: int = 8) -> Claimer:
    completer = Completer("w", Registry(), write=writer)
    return Claimer("w", completer, BatchSize(cap), release=release)


POOL: Any = Pool()


async def test_claims_hold_executions_in_claim_order_and_grow_while_the_queue_is_deep() -> None:
    writer = Writer([execution(f"e{i}") for i in range(5)])
    claimer = claimer_for(writer, Release())
    assert await claimer.claim(POOL) == 1
    assert claimer.next() == execution("e0")
    assert claimer.next() is None
    assert await claimer.claim(POOL) == 2
    assert [claimer.next(), claimer.next()] == [execution("e1"), execution("e2")]
    assert [claim for _, claim in writer.calls] == [1, 2]


async def test_a_lost_claim_answer_is_given_back_before_the_next_claim() -> None:
    writer = Writer([execution("e0")])
    release = Release()
    claimer = claimer_for(writer, release)
    writer.unsure = True
    await claimer.claim(POOL)
    assert claimer.give_back == leases.CLAIM_ANSWER_LOST
    writer.unsure = False
    await claimer.claim(POOL)
    assert release.calls == [(leases.CLAIM_ANSWER_LOST, None)]
    assert claimer.give_back is None


async def test_while_a_give_back_fails_nothing_more_is_claimed() -> None:
    writer = Writer([execution("e0"), execution("e1")])
    release = Release()
    claimer = claimer_for(writer, release)
    claimer.give_back = leases.CLAIM_ANSWER_LOST
    release.down = True
    assert await claimer.claim(POOL) == 0
    assert writer.calls == []  # no ends waited, and no claim was asked for
    release.down = False
    assert await claimer.claim(POOL) == 1
    assert release.calls == [(leases.CLAIM_ANSWER_LOST, None)]


async def test_stop_writes_the_ends_and_gives_back_what_is_held_unstarted() -> None:
    writer = Writer([execution(f"e{i}") for i in range(4)])
    release = Release()
    claimer = claimer_for(writer, release)
    await claimer.claim(POOL)
    await claimer.claim(POOL)  # holds e0 (not taken), e1, e2
    await claimer.stop(POOL)
    assert release.calls == [(leases.GIVEN_BACK_ON_STOP, None)]
    assert claimer.next() is None


async def test_stop_holding_nothing_gives_back_nothing() -> None:
    release = Release()
    claimer = claimer_for(Writer(), release)
    await claimer.stop(POOL)
    assert release.calls == []


async def test_the_rest_of_a_batch_goes_back_by_id_behind_a_slow_execution() -> None:
    writer = Writer([execution(f"e{i}") for i in range(3)])
    release = Release()
    claimer = claimer_for(writer, release)
    claimer.size = BatchSize(8)
    claimer.size.size = 3
    await claimer.claim(POOL)
    claimer.next()
    await claimer.give_back_held(POOL, leases.GIVEN_BACK_BEHIND_SLOW)
    assert release.calls == [(leases.GIVEN_BACK_BEHIND_SLOW, ["e1", "e2"])]
    assert claimer.next() is None


async def test_a_cancel_seen_before_a_start_cancels_the_held_execution() -> None:
    writer = Writer([execution("e0", cancel_requested=True), execution("e1")])
    claimer = claimer_for(writer, Release(), cap=1)
    claimer.cancel_seen("e0")  # the notice came between the claim's commit and its answer
    claimer.cancel_seen("e1")  # the notice came after the claim: its row does not say so
    await claimer.claim(POOL)
    assert list(claimer.cancels) == ["e1"]  # the claimed row carries e0's cancel from now on
    held = claimer.next()
    assert held is not None
    assert claimer.cancelled(held) is True  # by its row
    assert claimer.cancelled(execution("e1")) is True  # by the notice
    assert claimer.cancelled(execution("e2")) is False
