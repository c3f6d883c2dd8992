"""Watchdog: gives up an attempt still running past its timeout and grace, then exits."""

from __future__ import annotations

import threading

import psycopg

from app.engine.models import End, Execution
from tests.unit.worker.fakes import execution
from worker.watchdog import EXIT_ABANDONED, Watchdog


class Exit:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.done = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.done.set()


def test_an_attempt_past_its_timeout_and_grace_is_given_up_and_the_process_exits() -> None:
    given_up: list[Execution] = []
    exit_ = Exit()

    def give_up(e: Execution) -> End:
        given_up.append(e)
        return End("failed", "timed out after 0.01 s; abandoned")

    watch = Watchdog(0.01, give_up, exit_process=exit_).arm(execution("e", timeout=0.01))
    assert exit_.done.wait(10)
    assert given_up == [execution("e", timeout=0.01)]
    assert exit_.codes == [EXIT_ABANDONED]
    watch.disarm()  # harmless once fired


def test_an_attempt_that_ended_meanwhile_is_left_alone() -> None:
    exit_ = Exit()
    called = threading.Event()

    def give_up(_e: Execution) -> None:
        called.set()

    watch = Watchdog(0.0, give_up, exit_process=exit_).arm(execution("e", timeout=0.0))
    assert called.wait(10)
    assert watch.timer is not None
    watch.timer.join(10)
    assert exit_.codes == []


def test_a_database_that_refuses_the_record_still_ends_the_process() -> None:
    exit_ = Exit()

    def give_up(_e: Execution) -> End:
        raise psycopg.OperationalError("the server went away")

    Watchdog(0.0, give_up, exit_process=exit_).arm(execution("e", timeout=0.0))
    assert exit_.done.wait(10)
    assert exit_.codes == [EXIT_ABANDONED]


def test_a_disarmed_watch_never_fires() -> None:
    exit_ = Exit()
    called: list[Execution] = []

    def give_up(e: Execution) -> None:
        called.append(e)

    watch = Watchdog(60.0, give_up, exit_process=exit_).arm(execution("e", timeout=0.01))
    watch.disarm()
    assert watch.timer is not None
    watch.timer.join(10)
    assert not watch.timer.is_alive()
    assert called == []
    assert exit_.codes == []


def test_an_attempt_without_a_timeout_is_not_watched() -> None:
    watch = Watchdog(0.0, lambda _e: None).arm(execution("e"))
    assert watch.timer is None
    watch.disarm()
