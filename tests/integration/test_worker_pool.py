"""The worker pool as real processes: drain, crash recovery, graceful stop, supervisor death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.celery_support import Backend
from tests.support import (
    ROOT,
    child_pids,
    spine_env,
    status_counts,
    stop_tree,
    submit_many,
    wait_until,
    worker_pid,
    worker_pool,
)

Conn = psycopg.Connection[dict[str, object]]


def one_execution(conn: Conn) -> dict[str, object]:
    row = conn.execute("SELECT * FROM executions").fetchone()
    assert row is not None
    return row


# The Celery drain at full size (2 nodes x 2 children x 2,000) is a slow test of
# test_celery_backend.py; here one node of 4 children drains a quarter of it.
DRAIN = {"local": 2000, "celery": 500}


def test_pool_drains_2000_noops_each_claimed_and_started_once(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    count = DRAIN[backend.name]
    submit_many(conn, "noop", count, backend=backend.name)
    with backend.workers(database_url, processes=4, log_path=tmp_path / "pool.log"):
        wait_until(lambda: status_counts(conn).get("completed") == count, timeout=120)
    counts = conn.execute(
        """
        SELECT event_type, count(*) AS n, count(DISTINCT execution_id) AS d
        FROM execution_events GROUP BY event_type
        """
    ).fetchall()
    by_type = {r["event_type"]: (r["n"], r["d"]) for r in counts}
    assert by_type["queued"] == (count, count)
    assert by_type["started"] == (count, count)
    assert by_type["completed"] == (count, count)
    assert "requeued" not in by_type
    workers = conn.execute(
        "SELECT count(DISTINCT worker_id) AS n FROM executions WHERE status = 'completed'"
    ).fetchone()
    assert workers is not None and int(workers["n"]) >= 2  # type: ignore[call-overload]


def test_killed_worker_execution_is_recovered_by_another(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    submit_many(conn, "sleep", 1, '{"seconds": 2}', backend=backend.name)
    # A lease of 3 s (heartbeats every second): short enough to recover quickly, long
    # enough that the live worker never loses its lease to a stall of a loaded machine.
    settings = {"SPINE_LEASE_TIMEOUT": "3", "SPINE_POLL_INTERVAL": "0.1"}
    with backend.workers(database_url, 2, tmp_path / "pool.log", **settings):
        first = wait_until(
            lambda: (row := one_execution(conn))["status"] == "running" and row, timeout=30
        )
        os.kill(worker_pid(str(first["worker_id"])), signal.SIGKILL)
        final = wait_until(
            lambda: (row := one_execution(conn))["status"] in {"completed", "failed"} and row,
            timeout=60,
        )
    assert final["status"] == "completed"
    assert final["attempt"] == 2
    assert final["worker_id"] != first["worker_id"]
    events = [
        r["event_type"]
        for r in conn.execute("SELECT event_type FROM execution_events ORDER BY id").fetchall()
    ]
    assert events.count("requeued") == 1
    assert events.count("completed") == 1
    assert events[-1] == "completed"


def test_sigterm_lets_the_running_execution_finish_then_exits_0(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    submit_many(conn, "sleep", 1, '{"seconds": 1.5}', backend=backend.name)
    with backend.workers(database_url, 2, tmp_path / "pool.log") as pool:
        wait_until(lambda: one_execution(conn)["status"] == "running")
        children = child_pids(pool.pid)
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=30) == 0
        assert one_execution(conn)["status"] == "completed"
        _, alive = psutil.wait_procs([psutil.Process(p) for p in children if psutil.pid_exists(p)])
        assert not alive


def test_children_exit_when_the_supervisor_is_killed(database_url: str, tmp_path: Path) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log") as pool:
        children = wait_until(lambda: len(child_pids(pool.pid)) == 2 and child_pids(pool.pid))
        procs = [psutil.Process(p) for p in children]
        pool.send_signal(signal.SIGKILL)
        pool.wait(timeout=10)
        _, alive = psutil.wait_procs(procs, timeout=15)
        assert not alive, f"orphaned workers still running: {alive}"


def test_dead_child_is_restarted(database_url: str, tmp_path: Path) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log") as pool:
        before = wait_until(lambda: len(child_pids(pool.pid)) == 2 and child_pids(pool.pid))
        os.kill(before[0], signal.SIGKILL)
        after = wait_until(
            lambda: (now := child_pids(pool.pid)) and len(now) == 2 and before[0] not in now and now
        )
    assert before[1] in after
    assert "died (killed by SIGKILL); restarting" in (tmp_path / "pool.log").read_text()


@pytest.mark.parametrize(
    ("pipeline", "params", "code"), [("noop", [], 0), ("sleep", ["-p", "seconds=x"], 1)]
)
def test_spine_run_wait_exit_code(
    database_url: str, tmp_path: Path, pipeline: str, params: list[str], code: int
) -> None:
    with worker_pool(database_url, 1, tmp_path / "pool.log", SPINE_POLL_INTERVAL="0.1"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run", pipeline, *params, "--wait"],
            env=spine_env(database_url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            stop_tree(proc.pid)
    assert proc.returncode == code, (out, err)
    if code == 0:
        assert "completed" in out
    else:
        assert "invalid params for sleep" in err


_PROBE = """
import os, signal, sys
from app.config import get_settings
from worker import supervisor as pool

def probe(*_args):  # settings, url, parent_pid, slot
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    print("child", signal.SIGTERM in blocked and signal.SIGINT in blocked, flush=True)
    os._exit(0)

pool._child_main = probe
supervisor = pool.Supervisor(get_settings(), processes=1)
signal.signal(signal.SIGTERM, supervisor._on_signal)
supervisor._spawn(0)
supervisor._children[0].join(10)
print("parent", signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []), flush=True)
"""


def test_a_new_child_holds_stop_signals_until_its_handlers_are_its_own() -> None:
    """Between fork and reset, the supervisor's handler is the child's: no signal may run it."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split("\n")
    assert "child True" in out  # blocked from the fork on (the real child unblocks them)
    assert "parent False" in out  # and the supervisor takes signals again at once
