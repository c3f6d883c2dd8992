"""Schedules fired by real worker pools (`spine worker start` processes) and the real CLI.

- Three pools and a 1 s interval for about 15 s: each slot fired exactly once,
  and every slot in the window either fired or recorded as skipped.
- The pools stopped for 10 s, then restarted: the downtime rule, exactly.
- Pause, resume and run-now through `spine schedules` subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import scheduling
from app.engine.schedules import ScheduleInput
from tests.celery_support import Backend
from tests.support import ROOT, run_sync, spine_env, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, object]]
SECOND = timedelta(seconds=1)


def add_every_second(database_url: str, name: str, grace: int = 5) -> int:
    async def go() -> int:
        async with await db.aconnect(database_url) as conn:
            inp = ScheduleInput(
                name=name, pipeline="noop", interval_seconds=1, misfire_grace_seconds=grace
            )
            schedule = await scheduling.create(conn, default_registry(), get_settings(), inp)
            return schedule.id

    result: int = run_sync(go())
    return result


@contextmanager
def pools(
    database_url: str, tmp_path: Path, count: int, tag: str, backend: Backend | None = None
) -> Iterator[None]:
    """`count` pools of one process (or Celery nodes of one child, given that backend)."""
    with ExitStack() as stack:
        for i in range(count):
            log_path = tmp_path / f"pool-{tag}-{i}.log"
            if backend is None:
                stack.enter_context(worker_pool(database_url, processes=1, log_path=log_path))
            else:
                stack.enter_context(backend.workers(database_url, 1, log_path))
        yield


def ran_once(conn: Conn, backend: str) -> int:
    """How many fired executions completed; fails if one started twice or ran elsewhere."""
    rows = conn.execute(
        """
        SELECT e.backend, e.status,
               (SELECT count(*) FROM execution_events v
                WHERE v.execution_id = e.id AND v.event_type = 'started') AS starts
        FROM executions e WHERE e.trigger_source = 'schedule'
        """
    ).fetchall()
    assert all(r["backend"] == backend for r in rows)
    assert all(r["starts"] in (0, 1) for r in rows)
    return sum(1 for r in rows if r["status"] == "completed")


def fired(conn: Conn, schedule_id: int) -> list[datetime]:
    rows = conn.execute(
        "SELECT fire_at FROM schedule_fires WHERE schedule_id = %s AND NOT manual ORDER BY fire_at",
        (schedule_id,),
    ).fetchall()
    return [r["fire_at"] for r in rows]  # type: ignore[misc]


def skips(conn: Conn, schedule_id: int) -> list[tuple[datetime, datetime, int]]:
    rows = conn.execute(
        "SELECT first_slot, last_slot, slots FROM schedule_skips WHERE schedule_id = %s "
        "ORDER BY first_slot",
        (schedule_id,),
    ).fetchall()
    return [(r["first_slot"], r["last_slot"], r["slots"]) for r in rows]  # type: ignore[misc]


def first_slot(conn: Conn, schedule_id: int) -> datetime:
    row = conn.execute("SELECT next_fire_at FROM schedules WHERE id = %s", (schedule_id,))
    found = row.fetchone()
    assert found is not None
    return found["next_fire_at"]  # type: ignore[return-value]


def assert_every_slot_accounted_for(
    conn: Conn, schedule_id: int, start: datetime
) -> list[datetime]:
    """From `start` to the last fire, each slot fired once or lies in a recorded skip."""
    fires = fired(conn, schedule_id)
    assert len(fires) == len(set(fires)), "a slot fired twice"
    skipped: list[datetime] = []
    for first, last, count in skips(conn, schedule_id):
        run = [first + k * SECOND for k in range(count)]
        assert run[-1] == last
        skipped += run
    assert not set(skipped) & set(fires)
    window = int((fires[-1] - start) / SECOND) + 1
    assert sorted(fires + skipped) == [start + k * SECOND for k in range(window)]
    return fires


def test_three_pools_fire_each_slot_of_a_one_second_schedule_exactly_once(
    database_url: str, conn: Conn, tmp_path: Path, backend: Backend
) -> None:
    schedule = add_every_second(database_url, "every-second")
    start = first_slot(conn, schedule)
    with pools(database_url, tmp_path, 3, "a", backend):
        wait_until(lambda: len(fired(conn, schedule)) >= 16, timeout=90, interval=0.2)
        # Every fire runs once, on the backend's own workers.
        wait_until(lambda: ran_once(conn, backend.name) >= 16, timeout=30, interval=0.2)
    fires = assert_every_slot_accounted_for(conn, schedule, start)
    # Skips happen before the pools' first tick (they were starting up). While they run,
    # a slot is skipped only when all three stall past the next one (a second-long stall
    # of the database on a loaded CI machine): recorded, and rare.
    later = sum(n for first, _, n in skips(conn, schedule) if first > fires[0])
    assert later <= 2, f"{later} slots skipped while the pools ran"
    rows = conn.execute(
        "SELECT count(*) AS n, count(DISTINCT logical_key) AS keys FROM executions "
        "WHERE trigger_source = 'schedule'"
    ).fetchone()
    assert rows == {"n": len(fires), "keys": len(fires)}


def test_pools_down_ten_seconds_fire_the_latest_missed_slot_once_and_record_the_rest(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    schedule = add_every_second(database_url, "through-downtime", grace=5)
    start = first_slot(conn, schedule)
    with pools(database_url, tmp_path, 3, "before"):
        wait_until(lambda: len(fired(conn, schedule)) >= 3, timeout=90, interval=0.2)
    before = fired(conn, schedule)
    time.sleep(10)  # the downtime under test, not a wait for something to happen
    with pools(database_url, tmp_path, 3, "after"):
        wait_until(lambda: len(fired(conn, schedule)) >= len(before) + 2, timeout=90, interval=0.2)
    fires = assert_every_slot_accounted_for(conn, schedule, start)
    after = [f for f in fires if f > before[-1]]
    gap = after[0] - before[-1]
    assert gap >= 10 * SECOND, "the first fire after the restart is the latest missed slot"
    # One skip record covers exactly the older missed slots.
    assert (before[-1] + SECOND, after[0] - SECOND, int(gap / SECOND) - 1) in skips(conn, schedule)
    assert after[1] - after[0] == SECOND  # then it continues from the next slot


def spine(database_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=spine_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result


def test_cli_add_pause_resume_run_and_remove_with_a_live_pool(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    bad = spine(database_url, "schedules", "add", "x", "noop", "--cron", "61 * * * *", ok=False)
    assert "Bad minute" in bad.stderr and "Traceback" not in bad.stderr
    assert "exactly one" in spine(database_url, "schedules", "add", "x", "noop", ok=False).stderr
    added = spine(
        database_url, "schedules", "add", "beat", "sleep", "--every", "1s", "-p", "seconds=0"
    )
    assert added.stdout.startswith("beat: every 1s")
    listed = spine(database_url, "schedules", "list").stdout
    assert "beat" in listed and "enabled" in listed
    as_json = json.loads(spine(database_url, "schedules", "list", "--format", "json").stdout)
    assert [(s["name"], s["interval_seconds"]) for s in as_json] == [("beat", 1)]
    row = conn.execute("SELECT id FROM schedules WHERE name = 'beat'").fetchone()
    assert row is not None
    schedule = int(row["id"])  # type: ignore[call-overload]
    with pools(database_url, tmp_path, 1, "cli"):
        wait_until(lambda: len(fired(conn, schedule)) >= 2, timeout=60, interval=0.2)
        spine(database_url, "schedules", "pause", "beat")
        count = len(fired(conn, schedule))
        execution_id = spine(database_url, "schedules", "run", "beat").stdout.strip()
        wait_until(  # the pool is alive: it ran the manual fire
            lambda: conn.execute(
                "SELECT 1 FROM executions WHERE id = %s AND status = 'completed'", (execution_id,)
            ).fetchone(),
            timeout=60,
        )
        time.sleep(3)  # three ticks in which a paused schedule must fire nothing
        assert len(fired(conn, schedule)) == count
        resumed = spine(database_url, "schedules", "resume", "beat").stdout
        assert resumed.startswith("beat: resumed, next ")
        wait_until(lambda: len(fired(conn, schedule)) >= count + 2, timeout=60, interval=0.2)
    shown = spine(database_url, "schedules", "show", "beat").stdout
    assert '"manual": true' in shown and execution_id in shown
    assert '"enabled": true' in shown
    spine(database_url, "schedules", "remove", "beat")
    assert "no schedules" in spine(database_url, "schedules", "list").stderr
    gone = spine(database_url, "schedules", "pause", "beat", ok=False)
    assert "no schedule named 'beat'" in gone.stderr
