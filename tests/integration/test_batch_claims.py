"""Batched claims with real worker pools: what a worker holds unstarted, and what becomes of it.

A batch is held when quick executions came first (the batch grew) and one of
the batch blocks its worker's event loop (`flaky` with `cooperative: false`):
the ones behind it stay `queued`, held by that worker, until it ends. Each
test makes that moment, then stops, kills or cancels, and checks the record.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psycopg

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import executions, leases, retries
from app.engine.backends import make_backend
from tests.support import (
    child_pids,
    run_sync,
    status_counts,
    wait_until,
    worker_pid,
    worker_pool,
)

Conn = psycopg.Connection[dict[str, object]]

BLOCKER = '{"fail_times": 0, "seconds": 0.6, "cooperative": false}'
SETTINGS = {"SPINE_CLAIM_BATCH": "8", "SPINE_POLL_INTERVAL": "0.1"}


def enqueue(
    conn: Conn, pipeline: str, count: int, params: str = "{}", lane: str = "normal"
) -> None:
    """Rows and their `created` events in one statement, claimed in this order."""
    conn.execute(
        """
        WITH new AS (
            INSERT INTO executions (pipeline, params, trigger_source, lane)
            SELECT %s, %s::jsonb, 'test', %s FROM generate_series(1, %s)
            RETURNING id
        )
        INSERT INTO execution_events (execution_id, event_type) SELECT id, 'created' FROM new
        """,
        (pipeline, params, lane, count),
    )


def enqueue_with_blockers(conn: Conn) -> None:
    """Quick work with a blocker every so often: some batch holds work behind a blocker."""
    enqueue(conn, "noop", 40)
    for _ in range(4):
        enqueue(conn, "flaky", 1, BLOCKER)
        enqueue(conn, "noop", 12)
    conn.execute("NOTIFY spine_executions")


def held_behind_a_blocker(conn: Conn) -> dict[str, Any] | None:
    """A blocker running (its start not yet written: the loop is blocked) with queued
    executions of the same worker behind it in claim order; None until then."""
    row = conn.execute(
        """
        SELECT b.worker_id, b.id AS blocker,
               array_agg(q.id ORDER BY q.seq) AS behind
        FROM executions b
        JOIN executions q ON q.worker_id = b.worker_id AND q.status = 'queued' AND q.seq > b.seq
        -- Held a while: the quick ones before it in its batch are done, it runs.
        WHERE b.pipeline = 'flaky' AND b.status = 'queued'
          AND b.queued_at < now() - interval '150 milliseconds'
        GROUP BY b.worker_id, b.id
        LIMIT 1
        """
    ).fetchone()
    return dict(row) if row else None


def events(conn: Conn, execution_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT event_type FROM execution_events WHERE execution_id = %s ORDER BY id",
        (execution_id,),
    ).fetchall()
    return [str(r["event_type"]) for r in rows]


def assert_each_ran_once(
    conn: Conn, total: int, *, recovered: frozenset[str] = frozenset()
) -> None:
    """Every execution completed once and has one `started` event; its attempt is the
    first, or the second for one recovered from a lost worker (that attempt counted)."""
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE status = 'completed') AS done,
               (SELECT count(*) FROM execution_events WHERE event_type = 'started') AS starts,
               (SELECT count(*) FROM execution_events WHERE event_type = 'completed') AS ends
        FROM executions
        """
    ).fetchone()
    assert row == {"done": total, "starts": total, "ends": total}
    attempts = conn.execute("SELECT id, attempt FROM executions").fetchall()
    for r in attempts:
        assert r["attempt"] == (2 if r["id"] in recovered else 1), r


def test_sigterm_gives_back_the_batch_it_holds_unstarted(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    enqueue_with_blockers(conn)
    total = 40 + 4 * 13
    with worker_pool(database_url, 1, tmp_path / "first.log", **SETTINGS) as pool:
        held = wait_until(lambda: held_behind_a_blocker(conn), timeout=60)
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=60) == 0
    # The blocker finished (or, on a slow machine, had not started and went back);
    # what it held behind it went back unstarted, uncounted.
    blocker = conn.execute("SELECT status FROM executions WHERE id = %s", (held["blocker"],))
    assert blocker.fetchone() in ({"status": "completed"}, {"status": "pending"})
    for execution_id in held["behind"]:
        back = conn.execute(
            "SELECT status, attempt, worker_id FROM executions WHERE id = %s", (execution_id,)
        ).fetchone()
        assert back == {"status": "pending", "attempt": 0, "worker_id": None}
        assert events(conn, execution_id) == ["created", "queued", "requeued"]
    reasons = conn.execute(
        "SELECT DISTINCT payload ->> 'reason' AS reason FROM execution_events"
        " WHERE event_type = 'requeued'"
    ).fetchall()
    assert reasons == [{"reason": leases.GIVEN_BACK_ON_STOP}]
    assert set(status_counts(conn)) <= {"completed", "pending"}
    with worker_pool(database_url, 2, tmp_path / "second.log", **SETTINGS):
        wait_until(lambda: status_counts(conn).get("completed") == total, timeout=90)
    assert_each_ran_once(conn, total)


def test_kill_9_with_a_batch_held_recovers_each_once(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    enqueue_with_blockers(conn)
    total = 40 + 4 * 13
    settings = {**SETTINGS, "SPINE_LEASE_TIMEOUT": "1.5"}
    with worker_pool(database_url, 1, tmp_path / "pool.log", **settings):
        held = wait_until(lambda: held_behind_a_blocker(conn), timeout=60)
        os.kill(worker_pid(str(held["worker_id"])), signal.SIGKILL)
        # The supervisor starts a new process; its sweep gives back what the dead one held.
        wait_until(lambda: status_counts(conn).get("completed") == total, timeout=90)
    recovered = conn.execute(
        """
        SELECT execution_id, count(*) AS n, min(payload ->> 'reason') AS reason
        FROM execution_events WHERE event_type = 'requeued' GROUP BY execution_id
        """
    ).fetchall()
    by_id = {str(r["execution_id"]): r for r in recovered}
    # The blocker and everything held behind it: back once each, as lost, and that
    # attempt counted (it may have run); nothing else went back.
    for execution_id in [held["blocker"], *held["behind"]]:
        assert by_id[execution_id]["n"] == 1
        assert by_id[execution_id]["reason"] == "worker lost"
    assert all(r["n"] == 1 for r in recovered)
    assert_each_ran_once(conn, total, recovered=frozenset(by_id))


def test_a_cancel_of_a_held_unstarted_execution_ends_it_unrun(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    enqueue_with_blockers(conn)
    with worker_pool(database_url, 1, tmp_path / "pool.log", **SETTINGS):
        held = wait_until(lambda: held_behind_a_blocker(conn), timeout=60)
        target = held["behind"][-1]

        async def cancel() -> str:
            async with await db.aconnect(database_url) as aconn:
                _, outcome = await executions.request_cancel(aconn, target)
                return outcome

        assert run_sync(cancel()) == "requested"
        final = wait_until(
            lambda: (
                (r := conn.execute(
                    "SELECT status, attempt, started_at FROM executions WHERE id = %s", (target,)
                ).fetchone())
                and r["status"] in ("completed", "cancelled", "failed")
                and r
            ),
            timeout=60,
        )  # fmt: skip
    assert final == {"status": "cancelled", "attempt": 0, "started_at": None}
    assert events(conn, target) == ["created", "queued", "cancel_requested", "cancelled"]


def test_normal_before_backfill_and_no_pool_starves_with_two_pools(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    settings = {**SETTINGS, "SPINE_CLAIM_BATCH": "16"}
    with (
        worker_pool(database_url, 3, tmp_path / "deep.log", **settings) as deep,
        worker_pool(database_url, 1, tmp_path / "small.log", **settings) as small,
    ):
        # Both pools up (each process registered) before the work arrives, all at once.
        live = "SELECT count(*) AS n FROM workers WHERE stopped_at IS NULL"
        wait_until(lambda: conn.execute(live).fetchone() == {"n": 4}, timeout=60)
        with conn.transaction():
            enqueue(conn, "noop", 600, lane="backfill")
            enqueue(conn, "noop", 600)
            conn.execute("NOTIFY spine_executions")
        wait_until(lambda: status_counts(conn).get("completed") == 1200, timeout=120)
        deep_pids, small_pids = set(child_pids(deep.pid)), set(child_pids(small.pid))
    assert_each_ran_once(conn, 1200)
    # Normal first: no backfill execution was claimed before a normal one, but for
    # claims made in the same instant (one batch per process at most).
    early = conn.execute(
        """
        SELECT count(*) AS n FROM executions
        WHERE lane = 'backfill'
          AND queued_at < (SELECT max(queued_at) FROM executions WHERE lane = 'normal')
        """
    ).fetchone()
    assert early is not None and int(str(early["n"])) <= 4 * 16
    # Each pool got work: the one-process pool is not starved by the three-process one.
    ran = conn.execute("SELECT worker_id, count(*) AS n FROM executions GROUP BY worker_id")
    by_pool = {"deep": 0, "small": 0}
    for r in ran.fetchall():
        pid = worker_pid(str(r["worker_id"]))
        assert pid in deep_pids | small_pids
        by_pool["deep" if pid in deep_pids else "small"] += int(str(r["n"]))
    assert by_pool["small"] >= 0.1 * 1200, by_pool


def test_a_retry_of_a_cancelled_execution_runs_on_the_worker_that_saw_the_cancel(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    enqueue(conn, "sleep", 1, '{"seconds": 30}')
    conn.execute("NOTIFY spine_executions")
    with worker_pool(database_url, 1, tmp_path / "pool.log", **SETTINGS):
        row = wait_until(
            lambda: conn.execute(
                "SELECT id FROM executions WHERE status = 'running'"
            ).fetchone()
        )  # fmt: skip
        execution_id = str(row["id"])

        async def cancel_then_retry() -> None:
            async with await db.aconnect(database_url) as aconn:
                await executions.request_cancel(aconn, execution_id)
                wait_until(
                    lambda: status_counts(conn) == {"cancelled": 1}, timeout=30
                )  # fmt: skip
                backend = make_backend(get_settings())
                await retries.retry_one(
                    aconn,
                    default_registry(),
                    get_settings(),
                    execution_id,
                    source="test",
                    backend=backend,
                )

        run_sync(cancel_then_retry())
        # The one worker saw the cancel notice; the retried run (attempt 1 again) goes ahead.
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM executions WHERE status = 'running' AND attempt = 1"
            ).fetchone()
        )  # fmt: skip
    after_retry = events(conn, execution_id)
    after_retry = after_retry[after_retry.index("retried") :]
    assert after_retry[:3] == ["retried", "queued", "started"]
    assert "cancelled" not in after_retry
