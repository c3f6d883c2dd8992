"""Faults with real processes and a real PostgreSQL: kill -9, SIGTERM under load, server restart.

Whatever happens, every execution ends exactly once and nothing is lost. The
kill -9 and SIGTERM trials run for both backends (the `backend` fixture): the
pool, and Celery nodes over RabbitMQ.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from app.config import Settings
from app.engine import leases
from app.web.connection import CONNECT_TIMEOUT
from tests.celery_support import Backend
from tests.support import (
    ROOT,
    free_port,
    spine_env,
    status_counts,
    stop_tree,
    submit_many,
    wait_until,
    worker_pid,
)

Conn = psycopg.Connection[dict[str, object]]

pytestmark = pytest.mark.slow


def completed_events_per_execution(conn: Conn) -> dict[int, int]:
    """How many executions have 0, 1, 2... `completed` events: {count: executions}."""
    rows = conn.execute(
        """
        SELECT n, count(*) AS executions FROM (
            SELECT e.id, count(ev.id) FILTER (WHERE ev.event_type = 'completed') AS n
            FROM executions e LEFT JOIN execution_events ev ON ev.execution_id = e.id
            GROUP BY e.id
        ) per GROUP BY n
        """
    ).fetchall()
    return {int(r["n"]): int(r["executions"]) for r in rows}  # type: ignore[call-overload]


def otc_snapshot(conn: Conn) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    metrics = conn.execute(
        "SELECT symbol, trade_date, trade_count, total_volume, total_notional, vwap, high_price, "
        "low_price FROM otc_metrics_daily ORDER BY symbol, trade_date"
    ).fetchall()
    trades = conn.execute(
        "SELECT trade_id, symbol, executed_at, price, size, side, venue FROM otc_trades "
        "ORDER BY trade_id"
    ).fetchall()
    return metrics, trades


def test_crash_trials_every_execution_completes_exactly_once(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    rng = random.Random(20260106)
    conn.execute(
        """
        WITH new AS (
            -- Each execution's own max_attempts is its budget for lost workers too.
            INSERT INTO executions (pipeline, params, trigger_source, max_attempts, backend)
            SELECT 'sleep', jsonb_build_object('seconds', 0.3 + (g %% 5) * 0.2), 'test', 50,
                   %(backend)s
            FROM generate_series(1, 24) g
            UNION ALL
            SELECT 'otc_ingest', '{"file": "otc_sample.csv"}', 'test', 50, %(backend)s
            FROM generate_series(1, 3)
            RETURNING id
        )
        INSERT INTO execution_events (execution_id, event_type) SELECT id, 'created' FROM new
        """,
        {"backend": backend.name},
    )
    settings = {
        "SPINE_LEASE_TIMEOUT": "0.9",
        "SPINE_POLL_INTERVAL": "0.1",
        "SPINE_DATA_DIR": str(ROOT / "data"),
        # Celery: a child killed after taking its message and before its claim
        # leaves a published, pending execution, which the relay sends again.
        "SPINE_CELERY_REPUBLISH_AFTER": "3",
    }
    kills = 0
    with backend.workers(database_url, 3, tmp_path / "pool.log", **settings):
        while kills < 12:
            running = conn.execute(
                "SELECT worker_id FROM executions WHERE status = 'running' "
                "ORDER BY random() LIMIT 1"
            ).fetchone()
            if running is None:
                if status_counts(conn).get("pending", 0) == 0:
                    break  # nothing left to interrupt
                wait_until(
                    lambda: (
                        conn.execute("SELECT 1 FROM executions WHERE status = 'running'").fetchone()
                        or not status_counts(conn).get("pending")
                    ),
                    timeout=30,
                )
                continue
            # Randomised timing (not synchronisation): let it run a little, then kill -9.
            time.sleep(rng.uniform(0.05, 0.4))
            try:
                os.kill(worker_pid(str(running["worker_id"])), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        # The 27 (24 sleeps, 3 ingests), and the propagation pass the first load asked for
        # (its backend's: the pool's, or the Celery node's), each completed once.
        wait_until(
            lambda: (
                (counts := status_counts(conn)).get("completed", 0) >= 27
                and set(counts) == {"completed"}
            ),
            timeout=180,
        )
    assert kills >= 10, f"only {kills} kills happened"
    ours = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE pipeline IN ('sleep', 'otc_ingest')"
    ).fetchone()
    assert ours == {"n": 27}
    per_execution = completed_events_per_execution(conn)
    assert set(per_execution) == {1} and per_execution[1] >= 27, per_execution
    requeued = conn.execute(
        "SELECT count(*) AS n FROM execution_events WHERE event_type = 'requeued'"
    ).fetchone()
    assert requeued is not None and int(requeued["n"]) >= 1  # type: ignore[call-overload]

    # The OTC tables equal a clean single run's.
    after_crashes = otc_snapshot(conn)
    conn.execute("TRUNCATE otc_raw_chunks, otc_trades, otc_metrics_daily CASCADE")
    submit_many(conn, "otc_ingest", 1, '{"file": "otc_sample.csv"}', backend=backend.name)
    with backend.workers(database_url, 1, tmp_path / "clean.log", **settings):
        wait_until(
            lambda: (
                (counts := status_counts(conn)).get("completed", 0) >= 28
                and set(counts) == {"completed"}
                and conn.execute(
                    "SELECT count(*) AS n FROM executions"
                    " WHERE pipeline = 'otc_ingest' AND status = 'completed'"
                ).fetchone()
                == {"n": 4}
            ),
            timeout=120,
        )
    assert otc_snapshot(conn) == after_crashes


def test_sigterm_during_a_1000_noop_drain_loses_and_doubles_nothing(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    submit_many(conn, "noop", 1000, backend=backend.name)
    with backend.workers(database_url, 3, tmp_path / "first.log") as pool:
        wait_until(lambda: status_counts(conn).get("completed", 0) >= 150, timeout=60)
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=60) == 0
    counts = status_counts(conn)
    assert set(counts) <= {"completed", "pending"}, counts
    assert sum(counts.values()) == 1000
    with backend.workers(database_url, 3, tmp_path / "second.log"):
        wait_until(lambda: status_counts(conn).get("completed") == 1000, timeout=120)
    assert completed_events_per_execution(conn) == {1: 1000}
    # Each process may stop holding a claimed batch it has not started: it gives
    # those back (a `requeued` event saying so), and they start once, later.
    # Nothing is started twice, and nothing else is requeued. (A Celery child
    # claims one execution at a time, so it has none to give back.)
    extra = conn.execute(
        """
        SELECT
            (SELECT count(*) FROM execution_events WHERE event_type = 'started') - 1000
                AS extra_starts,
            (SELECT count(*) FROM execution_events WHERE event_type = 'requeued'
              AND payload ->> 'reason' = %s) AS given_back,
            (SELECT count(*) FROM execution_events WHERE event_type = 'requeued') AS requeued
        """,
        (leases.GIVEN_BACK_ON_STOP,),
    ).fetchone()
    assert extra is not None
    assert extra["extra_starts"] == 0
    assert extra["given_back"] == extra["requeued"]
    assert int(extra["given_back"]) <= 3 * Settings().claim_batch  # type: ignore[call-overload]


def test_postgres_restart_api_and_workers_recover(tmp_path: Path) -> None:
    """A private embedded server (others share the suite's): stop it under load, start it again."""
    from app import embedded

    state = tmp_path / "pg"
    url = embedded.embedded_url(state)
    port = free_port()
    api = worker = None
    worker_log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed in finally
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE DATABASE spine")
        db_url = psycopg.conninfo.make_conninfo(url, dbname="spine")
        env = spine_env(db_url, SPINE_POLL_INTERVAL="0.2", SPINE_LEASE_TIMEOUT="3")
        subprocess.run(
            [sys.executable, "-m", "app.cli", "db", "init"], env=env, check=True, cwd=ROOT,
            capture_output=True,
        )  # fmt: skip
        api = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--port", str(port)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "start", "--max-concurrent", "2"],
            env=env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def ready_status() -> int:
            try:
                return client.get("/api/v1/health/ready").status_code
            except httpx.TransportError:
                return 0

        wait_until(lambda: ready_status() == 200, timeout=60)
        before = [
            client.post("/api/v1/executions", json={"pipeline": "sleep", "params": {"seconds": 1}})
            for _ in range(4)
        ]
        assert {r.status_code for r in before} == {202}

        embedded.stop(state)
        wait_until(lambda: ready_status() == 503, timeout=30)
        assert client.get("/api/v1/health").status_code == 200  # liveness does not need the DB
        for path in ("/api/v1/executions", "/api/v1/health/ready"):
            # A 503 once the pool's wait is over (2 s), well before the client's 5 s.
            started = time.monotonic()
            answer = client.get(path)
            assert answer.status_code == 503, answer.text
            assert time.monotonic() - started < CONNECT_TIMEOUT + 2.0, path

        embedded.embedded_url(state)  # start it again
        wait_until(lambda: ready_status() == 200, timeout=30)
        after = [client.post("/api/v1/executions", json={"pipeline": "noop"}) for _ in range(4)]
        assert {r.status_code for r in after} == {202}
        ids = [r.json()["id"] for r in before + after]

        def all_done() -> bool:
            statuses = [client.get(f"/api/v1/executions/{i}").json()["status"] for i in ids]
            return all(s == "completed" for s in statuses)

        wait_until(all_done, timeout=90)
        with psycopg.connect(db_url) as c:
            per = c.execute(
                "SELECT count(*) FROM execution_events WHERE event_type = 'completed'"
            ).fetchone()
        assert per == (8,)
    finally:
        for proc in (api, worker):
            if proc is not None:
                stop_tree(proc.pid)
                proc.wait()
        embedded.stop(state)
        worker_log.close()
        client.close()
