"""A database outage longer than the lease, with a real stop and start of a private server.

The lease must tell an outage from a death: workers that stayed alive keep
what they hold (nothing requeued, nothing started twice), and a worker killed
during the outage has its execution recovered exactly once, about one lease
after the server is back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import ROOT, spine_env, status_counts, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, object]]

pytestmark = pytest.mark.slow

LEASE = 3.0
OUTAGE = 2 * LEASE
SLEEP = 14.0  # outlasts the outage and a lease after it, so the sweeps find them running
SETTINGS = {
    "SPINE_LEASE_TIMEOUT": str(LEASE),
    "SPINE_POLL_INTERVAL": "0.2",
    "SPINE_MAX_ATTEMPTS": "5",
}


@pytest.fixture
def private_server() -> Iterator[tuple[Path, str]]:
    """An embedded server of this test's own (the suite's is shared), migrated; (state, url).

    Outside pytest's tmp_path: when run as root the server runs as another user,
    and a concurrent pytest run resets pytest's own temporary root to mode 0700.
    """
    from app import embedded

    state = Path(tempfile.mkdtemp(prefix="spine-outage-"))
    try:
        url = embedded.embedded_url(state)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE DATABASE spine")
        db_url = psycopg.conninfo.make_conninfo(url, dbname="spine")
        subprocess.run(
            [sys.executable, "-m", "app.cli", "db", "init"], env=spine_env(db_url), check=True,
            cwd=ROOT, capture_output=True,
        )  # fmt: skip
        yield state, db_url
    finally:
        embedded.stop(state)
        shutil.rmtree(state, ignore_errors=True)


def submit_sleeps(conn: Conn, n: int) -> None:
    conn.execute(
        """
        WITH new AS (
            INSERT INTO executions (pipeline, params, trigger_source)
            SELECT 'sleep', jsonb_build_object('seconds', %s::float8), 'test'
            FROM generate_series(1, %s) RETURNING id
        )
        INSERT INTO execution_events (execution_id, event_type) SELECT id, 'created' FROM new
        """,
        (SLEEP, n),
    )


def events(conn: Conn, event_type: str) -> dict[str, int]:
    """{execution id: how many events of this type}."""
    rows = conn.execute(
        "SELECT execution_id, count(*) AS n FROM execution_events WHERE event_type = %s "
        "GROUP BY execution_id",
        (event_type,),
    ).fetchall()
    return {str(r["execution_id"]): int(r["n"]) for r in rows}  # type: ignore[call-overload]


def outage(state: Path, during: float, while_down: object = None) -> None:
    """Stop the server, hold it down for `during` seconds, start it again."""
    from app import embedded

    embedded.stop(state)
    if callable(while_down):
        while_down()
    # The outage's length is what is under test: a deliberate span, not a wait for a condition.
    time.sleep(during)
    embedded.embedded_url(state)


def test_outage_of_two_leases_with_every_worker_alive_requeues_nothing(
    private_server: tuple[Path, str], tmp_path: Path
) -> None:
    state, url = private_server
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        submit_sleeps(conn, 3)
    with worker_pool(url, 3, tmp_path / "pool.log", **SETTINGS):
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            wait_until(lambda: status_counts(conn).get("running") == 3, timeout=30)
        outage(state, OUTAGE)
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            wait_until(lambda: status_counts(conn).get("completed") == 3, timeout=60)
            assert events(conn, "requeued") == {}
            assert set(events(conn, "started").values()) == {1}
            assert set(events(conn, "completed").values()) == {1}


def test_worker_killed_during_the_outage_is_recovered_once(
    private_server: tuple[Path, str], tmp_path: Path
) -> None:
    state, url = private_server
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        submit_sleeps(conn, 3)
    with worker_pool(url, 3, tmp_path / "pool.log", **SETTINGS):
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            wait_until(lambda: status_counts(conn).get("running") == 3, timeout=30)
            victim = conn.execute(
                "SELECT id, worker_id FROM executions WHERE status = 'running' LIMIT 1"
            ).fetchone()
        assert victim is not None
        outage(state, OUTAGE, lambda: os.kill(worker_pid(str(victim["worker_id"])), signal.SIGKILL))
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            wait_until(lambda: status_counts(conn).get("completed") == 3, timeout=90)
            assert events(conn, "requeued") == {victim["id"]: 1}
            started = events(conn, "started")
            assert started.pop(str(victim["id"])) == 2
            assert set(started.values()) == {1}
            assert set(events(conn, "completed").values()) == {1}
            # Recovered about one lease after the server came back.
            row = conn.execute(
                "SELECT extract(epoch FROM e.timestamp - pg_postmaster_start_time())::float8 AS s "
                "FROM execution_events e WHERE event_type = 'requeued'"
            ).fetchone()
            assert row is not None
            assert float(row["s"]) < 2.5 * LEASE
