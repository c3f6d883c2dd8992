"""The login backoff's arithmetic, on a clock the test moves (the HTTP side is in
tests/integration/test_api_limits.py)."""

from __future__ import annotations

from app.ui.login_throttle import FORGET_AFTER, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_doubles_from_the_second_failure_up_to_the_cap() -> None:
    clock = Clock()
    throttle = LoginThrottle(first_wait=1.0, max_wait=60.0, clock=clock)
    delays = []
    for _ in range(10):
        delays.append(throttle.failed("10.0.0.1"))
        assert throttle.wait("10.0.0.1") == delays[-1]
        clock.now += delays[-1]
        assert throttle.wait("10.0.0.1") == 0.0
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert throttle.wait("10.0.0.2") == 0.0  # per client


def test_a_success_resets_and_a_long_pause_forgets() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(4):
        throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.wait("a") == 0.0
    assert throttle.failed("a") == 0.0
    assert throttle.failed("a") == 1.0
    clock.now += FORGET_AFTER + 1
    assert throttle.failed("a") == 0.0


def test_the_table_is_bounded_and_forgets_the_least_recently_seen() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_clients=100, clock=clock)
    for i in range(10_000):
        throttle.failed(f"client-{i}")
        throttle.failed(f"client-{i}")
    assert len(throttle) == 100
    assert throttle.wait("client-9999") == 1.0
    assert throttle.wait("client-0") == 0.0
    throttle.failed("client-9900")  # seen again: kept when a newcomer pushes one out
    throttle.failed("newcomer")
    assert throttle.wait("client-9900") > 0.0
    assert throttle.wait("client-9901") == 0.0
