"""Liveness: heartbeats survive failures, and the sweep waits for a lease of them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from worker.liveness import Liveness

LEASE = 0.03  # seconds: a heartbeat every 10 ms


class Conn:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class Database:
    """Counts connections, heartbeats and sweeps; the first `failures` heartbeats fail."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.connections: list[Conn] = []
        self.beats = 0
        self.sweeps = 0
        self.swept = threading.Event()

    async def connect(self) -> Any:
        conn = Conn()
        self.connections.append(conn)
        return conn

    async def heartbeat(self, conn: Any, worker_id: str) -> None:
        assert worker_id == "w"
        if self.failures:
            self.failures -= 1
            raise OSError("connection reset")
        self.beats += 1

    async def recover(self, conn: Any, lease: float) -> Sequence[dict[str, Any]]:
        self.sweeps += 1
        self.swept.set()
        return [{"id": "e", "lost_worker": "gone", "status": "pending"}]


def liveness(database: Database) -> Liveness:
    return Liveness(
        "w",
        LEASE,
        database.connect,
        heartbeat=database.heartbeat,
        recover=database.recover,
    )


def test_it_sweeps_only_after_a_lease_of_heartbeats() -> None:
    database = Database()
    live = liveness(database)
    live.start()
    try:
        assert database.swept.wait(10)
        assert database.beats >= 4  # the first beat, then a lease of them every lease/3
    finally:
        live.stop()
    assert database.connections[-1].closed  # stopping closes its connection


def test_a_failed_heartbeat_reconnects_and_the_thread_goes_on(caplog: Any) -> None:
    database = Database(failures=2)
    live = liveness(database)
    live.start()
    try:
        assert database.swept.wait(10)
    finally:
        live.stop()
    assert len(database.connections) == 3  # one per failure, then one that lasted
    assert all(c.closed for c in database.connections)
    assert "heartbeat failed (connection reset); will retry" in caplog.text
    assert "recovered execution e from lost worker gone: now pending" in caplog.text
