"""BatchSize: a batch grows only while the queue is deep and batches run quickly."""

from __future__ import annotations

from worker.batch_size import QUICK_BATCH_SECONDS, BatchSize


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def drain(size: BatchSize, clock: Clock, *, seconds: float, rounds: int) -> list[int]:
    """Claims against a deep queue (each gets all it asks), each batch taking `seconds`."""
    sizes = []
    for _ in range(rounds):
        asked = size.next()
        sizes.append(asked)
        size.claimed(asked, asked)
        clock.now += seconds
    return sizes


def test_starts_at_one_and_doubles_up_to_the_cap_while_quick_and_deep() -> None:
    clock = Clock()
    size = BatchSize(10, clock=clock)
    assert drain(size, clock, seconds=QUICK_BATCH_SECONDS / 2, rounds=6) == [1, 2, 4, 8, 10, 10]


def test_a_slow_batch_halves_it() -> None:
    clock = Clock()
    size = BatchSize(64, clock=clock)
    drain(size, clock, seconds=0.0, rounds=4)  # 1, 2, 4, 8
    assert drain(size, clock, seconds=QUICK_BATCH_SECONDS * 2, rounds=3) == [16, 8, 4]


def test_a_shallow_queue_brings_it_down_to_what_was_there() -> None:
    clock = Clock()
    size = BatchSize(64, clock=clock)
    drain(size, clock, seconds=0.0, rounds=5)  # up to 16
    assert size.next() == 32
    size.claimed(3, 32)
    assert size.next() == 3  # not full: no growth, and no more than the queue had
    size.claimed(0, 3)
    assert size.next() == 1  # an empty queue: never below 1


def test_an_execution_that_ran_long_resets_it_to_one() -> None:
    clock = Clock()
    size = BatchSize(64, clock=clock)
    drain(size, clock, seconds=0.0, rounds=4)
    size.slow()
    assert size.next() == 1
    size.claimed(1, 1)
    assert size.next() == 2  # and it grows again from there


def test_a_cap_of_one_never_batches() -> None:
    clock = Clock()
    assert drain(BatchSize(1, clock=clock), clock, seconds=0.0, rounds=4) == [1, 1, 1, 1]
