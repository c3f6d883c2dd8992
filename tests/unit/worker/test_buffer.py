"""Buffer: items leave all at once, in order; a peek leaves them in place."""

from __future__ import annotations

import threading

from worker.buffer import Buffer


def test_take_empties_it_in_arrival_order() -> None:
    buffer: Buffer[int] = Buffer()
    for i in (3, 1, 2):
        buffer.add(i)
    assert len(buffer) == 3
    assert buffer.take() == [3, 1, 2]
    assert len(buffer) == 0
    assert buffer.take() == []


def test_peek_copies_and_leaves_everything_in_place() -> None:
    buffer: Buffer[str] = Buffer()
    buffer.add("a")
    seen = buffer.peek()
    seen.append("not in the buffer")
    assert list(buffer) == ["a"]
    assert buffer.take() == ["a"]


def test_adds_from_many_threads_are_all_taken_once() -> None:
    buffer: Buffer[int] = Buffer()
    taken: list[int] = []

    def add(start: int) -> None:
        for i in range(start, start + 1000):
            buffer.add(i)
            if i % 97 == 0:
                taken.extend(buffer.take())

    threads = [threading.Thread(target=add, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken.extend(buffer.take())
    assert sorted(taken) == list(range(4000))
