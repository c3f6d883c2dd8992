"""The Celery backend against a real RabbitMQ: outbox, claim by id, relay, exactly once.

Skipped (with the reason) when no broker answers at SPINE_TEST_AMQP_URL; see
tests/celery_support.py. Every test has queues of its own prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app import db
from app.config import get_settings
from tests.celery_support import Backend, amqp_or_skip, delete_queues, new_prefix
from tests.support import status_counts, submit, wait_until

Conn = psycopg.Connection[dict[str, object]]

FAST = {"SPINE_POLL_INTERVAL": "0.1", "SPINE_LEASE_TIMEOUT": "2"}


@pytest.fixture
def celery(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The Celery backend chosen for this process (submits publish) and its nodes."""
    backend = Backend("celery", amqp_or_skip(), new_prefix())
    for name, value in backend.env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield backend
    finally:
        get_settings.cache_clear()
        assert backend.amqp_url is not None and backend.prefix is not None
        delete_queues(backend.amqp_url, backend.prefix)


def events_by_type(conn: Conn) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        """
        SELECT event_type, count(*) AS n, count(DISTINCT execution_id) AS d
        FROM execution_events GROUP BY event_type
        """
    ).fetchall()
    return {str(r["event_type"]): (int(r["n"]), int(r["d"])) for r in rows}  # type: ignore[call-overload]


async def submit_noops(database_url: str, count: int) -> list[str]:
    async with await db.aconnect(database_url) as aconn:
        return [(await submit(aconn, "noop"))[0].id for _ in range(count)]


async def test_submit_commits_then_publishes_and_records_the_run_id(
    database_url: str, conn: Conn, celery: Backend
) -> None:
    ids = await submit_noops(database_url, 3)
    rows = conn.execute(
        "SELECT backend, backend_run_id, published_at FROM executions ORDER BY seq"
    ).fetchall()
    assert [r["backend"] for r in rows] == ["celery"] * 3
    assert all(r["backend_run_id"] and r["published_at"] for r in rows)
    assert len({r["backend_run_id"] for r in rows}) == 3
    assert len(ids) == 3


async def test_two_nodes_of_two_children_drain_each_execution_exactly_once(
    database_url: str, conn: Conn, celery: Backend, tmp_path: Path
) -> None:
    count = 300
    await submit_noops(database_url, count)
    log = tmp_path / "nodes.log"
    with celery.workers(database_url, 2, log, **FAST), celery.workers(database_url, 2, log, **FAST):
        wait_until(lambda: status_counts(conn).get("completed") == count, timeout=180)
    by_type = events_by_type(conn)
    assert by_type["queued"] == (count, count)
    assert by_type["started"] == (count, count)
    assert by_type["completed"] == (count, count)
    assert "requeued" not in by_type
    runners = conn.execute("SELECT count(DISTINCT worker_id) AS n FROM executions").fetchone()
    assert runners is not None and int(runners["n"]) >= 2  # type: ignore[call-overload]
