"""The sweep gate: a sweeper judges others only after a lease of its own unbroken heartbeats."""

from __future__ import annotations

from app.engine.workers import SweepGate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def beats(gate: SweepGate, clock: Clock, every: float, n: int) -> list[bool]:
    out = []
    for _ in range(n):
        clock.now += every
        out.append(gate.beat())
    return out


def test_opens_after_a_lease_of_heartbeats_every_third_of_a_lease() -> None:
    clock = Clock()
    gate = SweepGate(3.0, clock=clock)
    assert gate.beat() is False  # the first heartbeat after start (or reconnect)
    assert beats(gate, clock, 1.0, 4) == [False, False, True, True]


def test_a_gap_longer_than_half_a_lease_closes_it_for_a_lease() -> None:
    clock = Clock()
    gate = SweepGate(3.0, clock=clock)
    beats(gate, clock, 1.0, 5)
    assert gate.beat() is True
    clock.now += 6.0  # an outage of two leases
    assert gate.beat() is False
    assert beats(gate, clock, 1.0, 3) == [False, False, True]


def test_a_short_hiccup_keeps_it_open() -> None:
    clock = Clock()
    gate = SweepGate(3.0, clock=clock)
    beats(gate, clock, 1.0, 5)
    clock.now += 1.4
    assert gate.beat() is True
