"""The Celery backend against a real RabbitMQ: outbox, claim by id, relay, exactly once.

Skipped (with the reason) when no broker answers at SPINE_TEST_AMQP_URL, failed
instead under SPINE_TEST_REQUIRE_AMQP=1 (see tests/celery_support.py). Every
test has queues of its own prefix, deleted after it. Checks that hold for the
pool too are the pool's tests, parametrized by the `backend` fixture.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest

from app import db
from app.config import get_settings
from app.engine import history
from app.engine.backends import make_backend
from app.engine.backends.celery_app import make_app, publish, queue_name
from tests.celery_support import Backend, TcpProxy, celery_node
from tests.support import status_counts, submit, submit_many, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, object]]

pytestmark = pytest.mark.parametrize("backend", ["celery"], indirect=True)

FAST = {
    "SPINE_POLL_INTERVAL": "0.1",
    "SPINE_LEASE_TIMEOUT": "2",
    "SPINE_CELERY_REPUBLISH_AFTER": "30",
}


def events_by_type(conn: Conn) -> dict[str, tuple[int, int]]:
    """event type -> (events, distinct executions)."""
    rows = conn.execute(
        """
        SELECT event_type, count(*) AS n, count(DISTINCT execution_id) AS d
        FROM execution_events GROUP BY event_type
        """
    ).fetchall()
    return {str(r["event_type"]): (int(r["n"]), int(r["d"])) for r in rows}  # type: ignore[call-overload]


def events_of(conn: Conn, execution_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT event_type FROM execution_events WHERE execution_id = %s ORDER BY id",
        (execution_id,),
    ).fetchall()
    return [str(r["event_type"]) for r in rows]


def one(conn: Conn, execution_id: str) -> dict[str, object]:
    row = conn.execute("SELECT * FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None
    return row


async def submit_one(database_url: str, pipeline: str, params: dict[str, object]) -> str:
    async with await db.aconnect(database_url) as aconn:
        return (await submit(aconn, pipeline, params))[0].id


async def submit_noops(database_url: str, count: int) -> list[str]:
    async with await db.aconnect(database_url) as aconn:
        return [(await submit(aconn, "noop"))[0].id for _ in range(count)]


def unpublished_celery_noops(conn: Conn, count: int) -> None:
    """Committed and never published: what a submitter killed before its publish leaves."""
    submit_many(conn, "noop", count)
    conn.execute("UPDATE executions SET backend = 'celery'")


async def test_submit_commits_then_publishes_and_records_the_run_id(
    database_url: str, conn: Conn, backend: Backend
) -> None:
    await submit_noops(database_url, 3)
    rows = conn.execute(
        "SELECT backend, backend_run_id, published_at FROM executions ORDER BY seq"
    ).fetchall()
    assert [r["backend"] for r in rows] == ["celery"] * 3
    assert all(r["backend_run_id"] and r["published_at"] for r in rows)
    assert len({r["backend_run_id"] for r in rows}) == 3


@pytest.mark.parametrize("count", [300, pytest.param(2000, marks=pytest.mark.slow)])
async def test_two_nodes_of_two_children_drain_each_execution_exactly_once(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path, count: int
) -> None:
    await submit_noops(database_url, count)
    log = tmp_path / "nodes.log"
    with (
        backend.workers(database_url, 2, log, **FAST),
        backend.workers(database_url, 2, log, **FAST),
    ):
        wait_until(lambda: status_counts(conn).get("completed") == count, timeout=180)
    by_type = events_by_type(conn)
    assert by_type["queued"] == (count, count)
    assert by_type["started"] == (count, count)
    assert by_type["completed"] == (count, count)
    assert "requeued" not in by_type
    runners = conn.execute("SELECT count(DISTINCT worker_id) AS n FROM executions").fetchone()
    assert runners is not None and int(runners["n"]) >= 2  # type: ignore[call-overload]


def test_killed_before_the_publish_the_relay_publishes_and_it_runs_once(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    unpublished_celery_noops(conn, 20)
    with backend.workers(database_url, 2, tmp_path / "node.log", **FAST):
        wait_until(lambda: status_counts(conn).get("completed") == 20, timeout=60)
    assert events_by_type(conn)["started"] == (20, 20)
    runs = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE backend_run_id IS NOT NULL "
        "AND published_at IS NOT NULL"
    ).fetchone()
    assert runs == {"n": 20}


def test_duplicate_and_redelivered_tasks_are_acknowledged_without_running(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    unpublished_celery_noops(conn, 1)
    row = conn.execute("SELECT id, lane FROM executions").fetchone()
    assert row is not None
    app = make_app(get_settings())
    assert backend.prefix is not None
    for _ in range(5):  # five messages for one execution, before any node runs
        publish(app, str(row["id"]), str(row["lane"]), backend.prefix)
    log = tmp_path / "node.log"
    with backend.workers(database_url, 2, log, **FAST):
        wait_until(lambda: one(conn, str(row["id"]))["status"] == "completed", timeout=60)
        # One of the five ran it; the other four claimed nothing.
        wait_until(lambda: log.read_text().count("acknowledged without running") >= 4, timeout=60)
    assert events_of(conn, str(row["id"])) == ["created", "queued", "started", "completed"]


def test_the_pool_never_takes_a_celery_execution_nor_a_node_a_pools(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    submit_many(conn, "noop", 10)  # the pool's (backend 'local')
    conn.execute("UPDATE executions SET backend = 'celery' WHERE seq % 2 = 0")
    pool = {"SPINE_BACKEND": "local", "SPINE_POLL_INTERVAL": "0.1"}
    with worker_pool(database_url, 1, tmp_path / "pool.log", **pool):
        wait_until(lambda: status_counts(conn).get("completed") == 5, timeout=30)
    assert status_counts(conn) == {"completed": 5, "pending": 5}
    with backend.workers(database_url, 1, tmp_path / "node.log", **FAST):
        wait_until(lambda: status_counts(conn).get("completed") == 10, timeout=60)
    runs = conn.execute(
        "SELECT backend, count(DISTINCT worker_id) AS w FROM executions GROUP BY backend "
        "ORDER BY backend"
    ).fetchall()
    assert [(r["backend"], r["w"]) for r in runs] == [("celery", 1), ("local", 1)]
    assert events_by_type(conn)["started"] == (10, 10)


async def test_a_child_killed_mid_run_is_recovered_as_an_attempt_never_overlapping(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    execution_id = await submit_one(database_url, "sleep", {"seconds": 2})
    with backend.workers(database_url, 2, tmp_path / "node.log", **FAST):
        first = wait_until(
            lambda: (row := one(conn, execution_id))["status"] == "running" and row, timeout=60
        )
        os.kill(worker_pid(str(first["worker_id"])), signal.SIGKILL)
        final = wait_until(
            lambda: (row := one(conn, execution_id))["status"] in {"completed", "failed"} and row,
            timeout=90,
        )
    assert final["status"] == "completed"
    assert final["attempt"] == 2
    assert final["worker_id"] != first["worker_id"]
    assert [e for e in events_of(conn, execution_id) if e != "progress"] == [
        "created", "queued", "started", "requeued", "queued", "started", "completed",
    ]  # fmt: skip


async def test_a_whole_node_killed_mid_run_is_recovered_by_the_other(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    ids = [await submit_one(database_url, "sleep", {"seconds": 1.5}) for _ in range(4)]
    with backend.workers(database_url, 2, tmp_path / "victim.log", **FAST) as victim:
        wait_until(lambda: status_counts(conn).get("running", 0) >= 2, timeout=60)
        family = [victim.pid, *(c.pid for c in psutil.Process(victim.pid).children(True))]
        for pid in family:
            os.kill(pid, signal.SIGKILL)
        with celery_node(database_url, 2, tmp_path / "survivor.log", **backend.env, **FAST):
            wait_until(lambda: status_counts(conn).get("completed") == len(ids), timeout=120)
    for execution_id in ids:
        events = events_of(conn, execution_id)
        assert events.count("completed") == 1, events
        assert events[-1] == "completed"
        # A second attempt only after the first was requeued: never two at once.
        starts = [i for i, e in enumerate(events) if e == "started"]
        requeues = [i for i, e in enumerate(events) if e == "requeued"]
        assert len(starts) == len(requeues) + 1
        assert all(r < s for r, s in zip(requeues, starts[1:], strict=True))
        assert one(conn, execution_id)["attempt"] == len(starts)


async def test_flaky_twice_completes_on_attempt_3_after_its_backoffs(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(
            aconn, "flaky", {"fail_times": 2}, max_attempts=3, retry_backoff_seconds=1
        )
    with backend.workers(database_url, 1, tmp_path / "node.log", **FAST):
        final = wait_until(
            lambda: (row := one(conn, execution.id))["status"] in {"completed", "failed"} and row,
            timeout=60,
        )
    assert final["status"] == "completed"
    assert final["attempt"] == 3
    events = conn.execute(
        "SELECT event_type, timestamp FROM execution_events WHERE execution_id = %s ORDER BY id",
        (execution.id,),
    ).fetchall()
    kinds = [str(e["event_type"]) for e in events]
    assert kinds.count("retry_scheduled") == 2 and kinds.count("started") == 3
    # Each retry started no earlier than its backoff (1 s, then 2 s) allowed.
    retry_at = [e["timestamp"] for e in events if e["event_type"] == "retry_scheduled"]
    starts = [e["timestamp"] for e in events if e["event_type"] == "started"][1:]
    waits = [(s - r).total_seconds() for r, s in zip(retry_at, starts, strict=True)]  # type: ignore[operator]
    assert waits[0] >= 1 and waits[1] >= 2, waits


async def test_cancel_a_pending_execution_then_its_task_does_nothing(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    execution_id = await submit_one(database_url, "noop", {})
    async with await db.aconnect(database_url) as aconn:
        after, _ = await make_backend(get_settings()).cancel(aconn, execution_id)
    assert after is not None and after.status == "cancelled"
    log = tmp_path / "node.log"
    with backend.workers(database_url, 1, log, **FAST):
        wait_until(lambda: "acknowledged without running" in log.read_text(), timeout=60)
    assert events_of(conn, execution_id) == ["created", "cancel_requested", "cancelled"]


async def test_cancel_a_running_execution_through_the_database_and_notify(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    execution_id = await submit_one(database_url, "sleep", {"seconds": 30})
    with backend.workers(database_url, 1, tmp_path / "node.log", **FAST):
        wait_until(lambda: one(conn, execution_id)["status"] == "running", timeout=60)
        async with await db.aconnect(database_url) as aconn:
            await make_backend(get_settings()).cancel(aconn, execution_id)
        final = wait_until(
            lambda: (row := one(conn, execution_id))["status"] == "cancelled" and row,
            timeout=20,
        )
    assert final["attempt"] == 1
    assert events_of(conn, execution_id)[-1] == "cancelled"


async def test_a_ten_second_broker_cut_during_a_drain_loses_and_doubles_nothing(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    assert backend.amqp_url is not None
    parts = urlsplit(backend.amqp_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    try:
        through = {**backend.env, "SPINE_CELERY_BROKER_URL": proxy.url(backend.amqp_url)}
        count = 200
        unpublished_celery_noops(conn, count // 2)  # the relay publishes these
        with celery_node(database_url, 2, tmp_path / "node.log", **through, **FAST):
            wait_until(lambda: status_counts(conn).get("completed", 0) >= 20, timeout=60)
            proxy.cut()
            async with await db.aconnect(database_url) as aconn:
                # Submits during the outage still succeed: the outbox keeps them.
                for _ in range(count // 2):
                    await submit(aconn, "noop")
            cut_at = time.monotonic()
            wait_until(lambda: time.monotonic() - cut_at >= 10, timeout=15)  # the outage
            proxy.restore()
            wait_until(lambda: status_counts(conn).get("completed") == count, timeout=120)
    finally:
        proxy.close()
    by_type = events_by_type(conn)
    assert by_type["started"] == (count, count)
    assert by_type["completed"] == (count, count)


def queue_depth(amqp_url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of `queue`, asked of the broker directly."""
    from kombu import Connection, Queue

    with Connection(amqp_url, connect_timeout=5) as c:
        declared: Any = Queue(queue).bind(c.default_channel).queue_declare(passive=True)
    _, ready, consumers = declared
    return int(ready), int(consumers)


async def test_a_running_execution_s_message_is_acknowledged_before_its_run_ends(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    """A closed channel (what RabbitMQ's consumer_timeout does) requeues only unacknowledged
    messages: the running execution's is not among them, and the node consumes again."""
    assert backend.amqp_url is not None and backend.prefix is not None
    parts = urlsplit(backend.amqp_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    through = {**backend.env, "SPINE_CELERY_BROKER_URL": proxy.url(backend.amqp_url)}
    try:
        with celery_node(database_url, 1, tmp_path / "node.log", **through, **FAST):
            long_run = await submit_one(database_url, "sleep", {"seconds": 8})
            queue = queue_name(backend.prefix, str(one(conn, long_run)["lane"]))
            wait_until(lambda: one(conn, long_run)["status"] == "running", timeout=60)
            proxy.cut()  # the node's channel closes mid-run
            wait_until(lambda: queue_depth(backend.amqp_url or "", queue)[1] == 0, timeout=30)
            ready, _ = queue_depth(backend.amqp_url, queue)
            assert one(conn, long_run)["status"] == "running"  # so the ack came before the end
            assert ready == 0  # nothing unacknowledged went back to the queue
            proxy.restore()
            after = await submit_one(database_url, "noop", {})
            wait_until(lambda: status_counts(conn).get("completed") == 2, timeout=60)
    finally:
        proxy.close()
    ran = [e for e in events_of(conn, long_run) if e != "progress"]
    assert ran == ["created", "queued", "started", "completed"]
    assert events_of(conn, after) == ["created", "queued", "started", "completed"]
    assert one(conn, long_run)["attempt"] == 1


def test_a_message_waiting_for_a_busy_child_is_given_back_and_runs_once(
    database_url: str, conn: Conn, backend: Backend, tmp_path: Path
) -> None:
    submit_many(conn, "sleep", 2, '{"seconds": 3}', backend="celery")  # the relay publishes
    log = tmp_path / "node.log"
    waiting = {"SPINE_CELERY_REQUEUE_WAITING_AFTER": "0.5"}
    with backend.workers(database_url, 1, log, **FAST, **waiting):
        wait_until(lambda: status_counts(conn).get("completed") == 2, timeout=90)
    assert "waited for a busy child" in log.read_text()
    by_type = events_by_type(conn)
    assert by_type["started"] == (2, 2)
    assert by_type["completed"] == (2, 2)


@pytest.mark.parametrize("fault", ["delay", "cut mid-stream"])
async def test_a_slow_or_broken_broker_link_during_a_drain_loses_and_doubles_nothing(
    database_url: str,
    conn: Conn,
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """Everything (the node, the relay and the submits) reaches the broker through the proxy."""
    assert backend.amqp_url is not None
    parts = urlsplit(backend.amqp_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    monkeypatch.setenv("SPINE_CELERY_BROKER_URL", proxy.url(backend.amqp_url))
    get_settings.cache_clear()
    through = {**backend.env, "SPINE_CELERY_BROKER_URL": proxy.url(backend.amqp_url)}
    count = 200
    try:
        unpublished_celery_noops(conn, count // 2)  # the relay publishes these
        with celery_node(database_url, 2, tmp_path / "node.log", **through, **FAST):
            wait_until(lambda: status_counts(conn).get("completed", 0) >= 20, timeout=60)
            if fault == "delay":
                proxy.delay = 0.05  # every chunk, either way
            else:
                proxy.cut_mid_stream()
            async with await db.aconnect(database_url) as aconn:
                for _ in range(count // 2):
                    await submit(aconn, "noop")
            if fault == "delay":
                wait_until(lambda: status_counts(conn).get("completed", 0) >= 120, timeout=120)
                proxy.delay = 0.0
            else:
                wait_until(lambda: proxy.mid_stream_cuts == 1, timeout=30)
            wait_until(lambda: status_counts(conn).get("completed") == count, timeout=120)
    finally:
        proxy.close()
    by_type = events_by_type(conn)
    assert by_type["started"] == (count, count)
    assert by_type["completed"] == (count, count)


async def test_health_reports_the_backend_and_the_broker_without_failing_when_it_is_down(
    database_url: str, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await db.aconnect(database_url) as aconn:
        up = await make_backend(get_settings()).health(aconn)
        assert (up["backend"], up["broker"]) == ("celery", "reachable")
        monkeypatch.setenv("SPINE_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
        get_settings.cache_clear()
        down_backend = make_backend(get_settings())
        down = await down_backend.health(aconn)
        assert (down["backend"], down["broker"]) == ("celery", "unreachable")
        # A submit still succeeds (the relay will publish it).
        execution, created = await submit(aconn, "noop", backend=down_backend)
        assert created
        row = await history.get(aconn, execution.id)
        assert row is not None and row.status == "pending"


async def test_ready_reports_the_backend_and_the_broker_and_stays_ready_through_an_outage(
    database_url: str, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api_support import api_client

    async with api_client() as client:
        body = (await client.get("/api/v1/health/ready")).json()
    assert (body["status"], body["backend"], body["broker"]) == ("ready", "celery", "reachable")
    async with api_client() as client:
        submitted = (await client.post("/api/v1/executions", json={"pipeline": "noop"})).json()
        fetched = (await client.get(f"/api/v1/executions/{submitted['id']}")).json()
    assert submitted["backend"] == fetched["backend"] == "celery"
    assert submitted["backend_run_id"] and fetched["backend_run_id"] == submitted["backend_run_id"]
    monkeypatch.setenv("SPINE_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    get_settings.cache_clear()
    async with api_client() as client:
        response = await client.get("/api/v1/health/ready")
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["broker"]) == ("ready", "unreachable")
        submitted = await client.post("/api/v1/executions", json={"pipeline": "noop"})
        assert submitted.status_code == 202, submitted.text
        assert (submitted.json()["backend"], submitted.json()["backend_run_id"]) == ("celery", None)


def test_db_status_reports_the_backend_and_the_broker(
    database_url: str, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "backend: celery, broker amqp://guest:***@127.0.0.1:5672// reachable" in result.output
    monkeypatch.setenv("SPINE_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "backend: celery, broker amqp://guest:***@127.0.0.1:1// unreachable" in result.output


async def test_the_dashboard_shows_the_backend_and_its_run_id(
    database_url: str, backend: Backend
) -> None:
    from tests.api_support import api_client

    execution_id = await submit_one(database_url, "noop", {})
    async with api_client() as client:
        page = await client.get(f"/ui/executions/{execution_id}")
        run_id = (await client.get(f"/api/v1/executions/{execution_id}")).json()["backend_run_id"]
    assert page.status_code == 200
    assert run_id and f'celery · run <span class="mono">{run_id}</span>' in page.text
