"""Retries, backoff, timeouts, delayed runs and manual retry, through real worker pools.

Every time compared here is the database's (event timestamps, available_at).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.config import get_settings
from app.engine import leases, models, workers
from tests.api_support import api_client, problem
from tests.support import (
    ROOT,
    child_pids,
    claim_and_start,
    run_sync,
    spine_env,
    status_counts,
    submit,
    wait_until,
    worker_pid,
    worker_pool,
)

Conn = psycopg.Connection[dict[str, object]]
FAST = {"SPINE_POLL_INTERVAL": "0.1"}
"""Idle workers poll often: a retry whose wait is over is claimed within 0.1 s."""


def submit_one(database_url: str, pipeline: str, params: dict[str, Any], **options: Any) -> str:
    """The real submit (policy resolved, params validated); the new execution's id."""

    async def go() -> str:
        async with await db.aconnect(database_url) as aconn:
            execution, _ = await submit(aconn, pipeline, params, **options)
            return execution.id

    return str(run_sync(go()))


def row(conn: Conn, execution_id: str) -> dict[str, Any]:
    found = conn.execute("SELECT * FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert found is not None
    return found


def ended(conn: Conn, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (r := row(conn, execution_id))["status"] in {"completed", "failed", "cancelled"} and r
        ),
        timeout=timeout,
    )


def events(conn: Conn, execution_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT event_type, timestamp, payload FROM execution_events"
        " WHERE execution_id = %s ORDER BY id",
        (execution_id,),
    ).fetchall()


def of_type(conn: Conn, execution_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in events(conn, execution_id) if e["event_type"] == event_type]


def live_workers(conn: Conn) -> int:
    found = conn.execute(
        "SELECT count(*) AS n FROM workers WHERE stopped_at IS NULL"
        " AND heartbeat_at > now() - interval '5 seconds'"
    ).fetchone()
    assert found is not None
    return int(found["n"])  # type: ignore[call-overload,no-any-return]


def assert_one_end_and_unique_starts(conn: Conn, execution_id: str) -> None:
    """Ends once; each attempt started once."""
    kinds = [e["event_type"] for e in events(conn, execution_id)]
    assert kinds.count("completed") + kinds.count("failed") == 1, kinds
    attempts = [e["payload"]["attempt"] for e in of_type(conn, execution_id, "started")]
    assert len(attempts) == len(set(attempts)), attempts
    assert attempts == list(range(1, len(attempts) + 1))


# ------------------------------------------------------------------ backoff and budget


def test_flaky_completes_on_its_third_attempt_after_growing_waits(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log", **FAST):
        execution_id = submit_one(
            database_url,
            "flaky",
            {"fail_times": 2, "message": "vendor timeout"},
            max_attempts=3,
            retry_backoff_seconds=0.2,
        )
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"]) == ("completed", 3)
    retries = of_type(conn, execution_id, "retry_scheduled")
    assert [r["payload"]["attempt"] for r in retries] == [1, 2]
    assert {r["payload"]["error"] for r in retries} == {"vendor timeout"}
    assert all("retry_at" in r["payload"] for r in retries)
    starts = [e["timestamp"] for e in of_type(conn, execution_id, "started")]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= timedelta(seconds=0.2)
    assert starts[2] - starts[1] >= timedelta(seconds=0.4)
    # The jitter only adds, at most 10%; the rest is claim latency on a busy machine.
    assert starts[2] - starts[1] < timedelta(seconds=5)
    assert_one_end_and_unique_starts(conn, execution_id)


def test_flaky_fails_for_good_after_exactly_max_attempts(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log", **FAST):
        execution_id = submit_one(
            database_url,
            "flaky",
            {"fail_times": 5, "message": "file not there yet"},
            max_attempts=3,
            retry_backoff_seconds=0.05,
        )
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"], final["error"]) == (
        "failed",
        3,
        "file not there yet",
    )
    errors = [
        e["payload"]["error"]
        for e in events(conn, execution_id)
        if e["event_type"] in {"retry_scheduled", "failed"}
    ]
    assert errors == ["file not there yet"] * 3
    assert_one_end_and_unique_starts(conn, execution_id)


def test_bad_input_is_permanent_and_fails_after_one_attempt(
    database_url: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bad.csv").write_bytes(b"id,sym,when\n1,2,3\n")
    monkeypatch.setenv("SPINE_DATA_DIR", str(data))
    get_settings.cache_clear()
    with worker_pool(database_url, 2, tmp_path / "pool.log", SPINE_DATA_DIR=str(data), **FAST):
        execution_id = submit_one(database_url, "otc_ingest", {"file": "bad.csv"}, max_attempts=3)
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"]) == ("failed", 1)
    assert "wrong header" in final["error"]
    assert not of_type(conn, execution_id, "retry_scheduled")


def test_a_thousand_flaky_executions_end_as_their_fail_times_say(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute(
        """
        WITH new AS (
            INSERT INTO executions (pipeline, params, trigger_source, max_attempts,
                                    retry_backoff_seconds)
            SELECT 'flaky',
                   jsonb_build_object('fail_times', floor(random() * 4)::int, 'message', 'boom'),
                   'test', 3, 0
            FROM generate_series(1, 1000)
            RETURNING id
        )
        INSERT INTO execution_events (execution_id, event_type) SELECT id, 'created' FROM new
        """
    )
    with worker_pool(database_url, 4, tmp_path / "pool.log", **FAST):
        conn.execute("NOTIFY spine_executions")
        wait_until(
            lambda: sum(status_counts(conn).get(s, 0) for s in ("completed", "failed")) == 1000,
            timeout=240,
        )
    wrong = conn.execute(
        """
        SELECT id, params, status, attempt FROM executions
        WHERE (params->>'fail_times')::int < 3
              AND (status <> 'completed' OR attempt <> (params->>'fail_times')::int + 1)
           OR (params->>'fail_times')::int = 3 AND (status <> 'failed' OR attempt <> 3)
        """
    ).fetchall()
    assert wrong == []
    per_execution = conn.execute(
        """
        SELECT e.id,
               count(*) FILTER (WHERE v.event_type = 'started') AS starts,
               count(DISTINCT v.payload->>'attempt') FILTER (WHERE v.event_type = 'started')
                   AS distinct_starts,
               count(*) FILTER (WHERE v.event_type IN ('completed', 'failed')) AS ends,
               count(*) FILTER (WHERE v.event_type = 'retry_scheduled') AS retries,
               max(e.attempt) AS attempt
        FROM executions e JOIN execution_events v ON v.execution_id = e.id
        GROUP BY e.id
        HAVING count(*) FILTER (WHERE v.event_type = 'started') <> max(e.attempt)
            OR count(DISTINCT v.payload->>'attempt') FILTER (WHERE v.event_type = 'started')
               <> max(e.attempt)
            OR count(*) FILTER (WHERE v.event_type IN ('completed', 'failed')) <> 1
            OR count(*) FILTER (WHERE v.event_type = 'retry_scheduled') <> max(e.attempt) - 1
        """
    ).fetchall()
    assert per_execution == []
    spread = conn.execute(
        "SELECT count(DISTINCT payload->>'worker_id') AS n FROM execution_events"
        " WHERE event_type = 'started'"
    ).fetchone()
    assert spread is not None and int(spread["n"]) >= 2  # type: ignore[call-overload]


# ------------------------------------------------------------------ delayed runs


def test_a_delayed_run_starts_at_its_time_not_before(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log", **FAST):
        wait_until(lambda: live_workers(conn) == 2)
        now = conn.execute("SELECT now() AS t").fetchone()
        assert now is not None
        run_at = now["t"] + timedelta(seconds=2)  # type: ignore[operator]
        execution_id = submit_one(database_url, "noop", {}, run_at=run_at)
        final = ended(conn, execution_id)
    assert final["status"] == "completed"
    assert final["available_at"] == run_at
    (started,) = of_type(conn, execution_id, "started")
    assert run_at <= started["timestamp"] < run_at + timedelta(seconds=1)
    (created,) = of_type(conn, execution_id, "created")
    assert datetime.fromisoformat(created["payload"]["run_at"]) == run_at


# ------------------------------------------------------------------ timeouts


def test_a_timed_out_attempt_is_stopped_and_retried(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    with worker_pool(database_url, 2, tmp_path / "pool.log", **FAST):
        execution_id = submit_one(
            database_url,
            "sleep",
            {"seconds": 30},
            timeout_seconds=1,
            max_attempts=2,
            retry_backoff_seconds=0,
        )
        final = ended(conn, execution_id, timeout=30)
    assert (final["status"], final["attempt"]) == ("failed", 2)
    assert final["error"] == "timed out after 1 s"
    (retry,) = of_type(conn, execution_id, "retry_scheduled")
    assert retry["payload"]["error"] == "timed out after 1 s"
    assert retry["payload"]["error_type"] == "TimedOut"
    for event in (retry, *of_type(conn, execution_id, "failed")):
        assert event["payload"]["duration_s"] < 10  # stopped at its deadline, not after 30 s


def test_a_pipeline_deaf_to_its_timeout_is_abandoned_and_the_pool_goes_on(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    log = tmp_path / "pool.log"
    with worker_pool(database_url, 1, log, SPINE_TIMEOUT_GRACE="1", **FAST) as pool:
        before = wait_until(lambda: child_pids(pool.pid))
        stuck = submit_one(
            database_url,
            "flaky",
            {"fail_times": 0, "seconds": 60, "cooperative": False},
            timeout_seconds=1,
            max_attempts=1,
        )
        final = ended(conn, stuck, timeout=30)
        # The one worker process was replaced, and the new one runs what comes next.
        after = wait_until(lambda: (now := child_pids(pool.pid)) and now != before and now)
        follow_up = submit_one(database_url, "noop", {})
        assert ended(conn, follow_up)["status"] == "completed"
    assert final["status"] == "failed"
    assert final["error"].startswith("timed out after 1 s; abandoned 1 s later")
    assert before[0] not in after
    assert "died (exit code 75); restarting" in log.read_text()


# ------------------------------------------------------------------ lost workers


def test_kill_9_during_an_attempt_counts_it_and_the_policy_decides(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    settings = {"SPINE_LEASE_TIMEOUT": "1.5", **FAST}
    with worker_pool(database_url, 2, tmp_path / "pool.log", **settings):
        execution_id = submit_one(
            database_url, "flaky", {"fail_times": 0, "seconds": 3}, max_attempts=2
        )
        first = wait_until(lambda: (r := row(conn, execution_id))["status"] == "running" and r)
        os.kill(worker_pid(str(first["worker_id"])), signal.SIGKILL)
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"]) == ("completed", 2)
    (requeued,) = of_type(conn, execution_id, "requeued")
    assert requeued["payload"]["reason"] == "worker lost"
    assert_one_end_and_unique_starts(conn, execution_id)


def test_kill_9_out_of_attempts_fails_it_once(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    settings = {"SPINE_LEASE_TIMEOUT": "1.5", **FAST}
    with worker_pool(database_url, 2, tmp_path / "pool.log", **settings):
        execution_id = submit_one(
            database_url, "flaky", {"fail_times": 0, "seconds": 3}, max_attempts=1
        )
        first = wait_until(lambda: (r := row(conn, execution_id))["status"] == "running" and r)
        os.kill(worker_pid(str(first["worker_id"])), signal.SIGKILL)
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"]) == ("failed", 1)
    assert final["error"].startswith("worker lost")
    assert_one_end_and_unique_starts(conn, execution_id)


def test_kill_9_during_a_retry_wait_changes_nothing(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    settings = {"SPINE_LEASE_TIMEOUT": "1.5", **FAST}
    with worker_pool(database_url, 2, tmp_path / "pool.log", **settings):
        execution_id = submit_one(
            database_url, "flaky", {"fail_times": 1}, max_attempts=3, retry_backoff_seconds=3
        )
        (retry,) = wait_until(lambda: of_type(conn, execution_id, "retry_scheduled"))
        assert row(conn, execution_id)["status"] == "pending"
        (started,) = of_type(conn, execution_id, "started")
        os.kill(worker_pid(started["payload"]["worker_id"]), signal.SIGKILL)
        final = ended(conn, execution_id)
    assert (final["status"], final["attempt"]) == ("completed", 2)
    second = of_type(conn, execution_id, "started")[1]
    assert second["timestamp"] >= datetime.fromisoformat(retry["payload"]["retry_at"])
    assert not of_type(conn, execution_id, "requeued")
    assert_one_end_and_unique_starts(conn, execution_id)


# ------------------------------------------------------------------ manual retry


async def test_retry_over_the_api_after_the_input_is_fixed(
    database_url: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    bad = data / "trades.csv"
    bad.write_bytes(b"not,a,header\n")
    monkeypatch.setenv("SPINE_DATA_DIR", str(data))
    pool_env = {"SPINE_DATA_DIR": str(data), **FAST}
    async with api_client() as client:
        created = await client.post(
            "/api/v1/executions", json={"pipeline": "otc_ingest", "params": {"file": "trades.csv"}}
        )
        assert created.status_code == 202, created.text
        execution_id = created.json()["id"]
        assert problem(await client.post(f"/api/v1/executions/{execution_id}/retry"), 409)[
            "detail"
        ].endswith("it is still active")
        with worker_pool(database_url, 1, tmp_path / "pool.log", **pool_env):
            assert ended(conn, execution_id)["status"] == "failed"
            listed = await client.get(
                "/api/v1/executions", params={"status": "failed", "attempt_gte": 1}
            )
            assert [e["id"] for e in listed.json()] == [execution_id]
            assert "'trades.csv': wrong header" in listed.json()[0]["last_error"]
            bad.write_bytes(b"trade_id,symbol,executed_at,price,size,side,venue\n")
            retried = await client.post(f"/api/v1/executions/{execution_id}/retry")
            assert retried.status_code == 202, retried.text
            body = retried.json()
            assert (body["status"], body["attempt"], body["error"]) == ("pending", 0, None)
            final = ended(conn, execution_id)
        assert (final["status"], final["attempt"]) == ("completed", 1)
        assert problem(await client.post(f"/api/v1/executions/{execution_id}/retry"), 409)
        assert problem(await client.post("/api/v1/executions/nope/retry"), 404)
    (event,) = of_type(conn, execution_id, "retried")
    assert event["payload"] == {
        "trigger_source": "api",
        "previous_status": "failed",
        "previous_attempts": 1,
    }


def spine_cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=spine_env(database_url),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_retry_from_the_cli_one_and_in_bulk(database_url: str, conn: Conn, tmp_path: Path) -> None:
    failing = [
        submit_one(database_url, "flaky", {"fail_times": 1}, max_attempts=1) for _ in range(3)
    ]
    other = submit_one(database_url, "sleep", {"seconds": 5}, timeout_seconds=0.2, max_attempts=1)
    fine = submit_one(database_url, "noop", {})
    with worker_pool(database_url, 2, tmp_path / "pool.log", **FAST):
        for execution_id in [*failing, other, fine]:
            ended(conn, execution_id)
    cancelled = submit_one(database_url, "noop", {})
    assert "cancelled" in spine_cli(database_url, "executions", "cancel", cancelled).stdout
    assert status_counts(conn) == {"failed": 4, "completed": 1, "cancelled": 1}

    one = spine_cli(database_url, "executions", "retry", cancelled)
    assert one.returncode == 0, one.stderr
    assert f"{cancelled}: retried (status pending)" in one.stdout
    again = spine_cli(database_url, "executions", "retry", cancelled)
    assert again.returncode == 1 and "still pending" in again.stderr

    listed = spine_cli(database_url, "executions", "list", "--status", "failed", "--since", "1d")
    assert listed.stdout.count(" 1/1 ") == 4 and "flaky failure" in listed.stdout
    assert "timed out after 0.2 s" in listed.stdout

    # The bulk form asks first; "no" changes nothing.
    bulk = ["executions", "retry", "--status", "failed", "--pipeline", "flaky", "--since", "1d"]
    refused = spine_cli(database_url, *bulk, stdin="n\n")
    assert refused.returncode == 1 and "retry 3 execution(s)?" in refused.stderr
    assert status_counts(conn)["failed"] == 4
    done = spine_cli(database_url, *bulk, stdin="y\n")
    assert done.returncode == 0, done.stderr
    assert "retried 3 execution(s)" in done.stdout
    assert status_counts(conn) == {"pending": 4, "completed": 1, "failed": 1}
    assert row(conn, other)["status"] == "failed"
    for execution_id in failing:
        state = row(conn, execution_id)
        assert (state["status"], state["attempt"]) == ("pending", 0)
        (event,) = of_type(conn, execution_id, "retried")
        assert event["payload"]["trigger_source"] == "cli"
    nothing = spine_cli(database_url, *bulk, "--yes")
    assert "no failed or cancelled executions match" in nothing.stdout
    future = spine_cli(database_url, "executions", "retry", "--until", "2000-01-01T00:00:00Z")
    assert "no failed or cancelled executions match" in future.stdout


# ------------------------------------------------------------------ the wait, the API's checks


async def test_the_wait_doubles_with_up_to_10_percent_jitter_and_is_capped(
    database_url: str, conn: Conn
) -> None:
    waits: list[float] = []
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(
            aconn, "flaky", {"fail_times": 9}, max_attempts=4, retry_backoff_seconds=4
        )
        execution_id = execution.id
        await workers.heartbeat(aconn, "w", "test", 1)
        for _ in range(3):
            conn.execute(
                "UPDATE executions SET available_at = now() WHERE id = %s", (execution_id,)
            )
            claimed = await claim_and_start(aconn, "w")
            assert claimed is not None
            end = models.End("failed", "boom", {"error": "boom"}, retry_max_backoff=10)
            async with aconn.transaction():  # now() is the finish's own clock
                assert await leases.finish(aconn, execution_id, "w", end)
                got = await (
                    await aconn.execute(
                        "SELECT extract(epoch FROM available_at - now())::float8 AS s"
                        " FROM executions WHERE id = %s",
                        (execution_id,),
                    )
                ).fetchone()
            assert got is not None
            waits.append(float(str(got["s"])))
    assert 4 <= waits[0] <= 4.4
    assert 8 <= waits[1] <= 8.8
    assert waits[2] == 10  # 16 s, capped
    assert row(conn, execution_id)["status"] == "pending"


async def test_submission_options_are_checked_and_listed(database_url: str) -> None:
    async with api_client() as client:
        url = "/api/v1/executions"
        for bad in (
            {"max_attempts": 0},
            {"max_attempts": 101},
            {"retry_backoff_seconds": -1},
            {"timeout_seconds": 0},
            {"run_at": "2026-01-06T16:00:00"},  # no offset
        ):
            problem(await client.post(url, json={"pipeline": "noop", **bad}), 400)
        created = await client.post(
            url,
            json={
                "pipeline": "noop",
                "max_attempts": 7,
                "retry_backoff_seconds": 1.5,
                "timeout_seconds": 60,
                "run_at": "2999-01-01T00:00:00Z",
            },
        )
        assert created.status_code == 202, created.text
        body = created.json()
        assert (body["max_attempts"], body["retry_backoff_seconds"]) == (7, 1.5)
        assert body["timeout_seconds"] == 60
        assert body["available_at"].startswith("2999-01-01T00:00:00")
        since = (await client.get(url, params={"since": "2000-01-01T00:00:00Z"})).json()
        assert [e["id"] for e in since] == [body["id"]]
        assert (await client.get(url, params={"until": "2000-01-01T00:00:00Z"})).json() == []
        assert (await client.get(url, params={"attempt_gte": 1})).json() == []
        problem(await client.get(url, params={"since": "2000-01-01T00:00:00"}), 422)


def test_spine_run_takes_the_policy_timeout_and_a_delay(database_url: str, conn: Conn) -> None:
    done = spine_cli(
        database_url,
        *("run", "noop", "--in", "1h", "--max-attempts", "5"),
        *("--retry-backoff", "2m", "--timeout", "90"),
    )
    assert done.returncode == 0, done.stderr
    assert "submitted" in done.stdout and "not before" in done.stdout
    found = conn.execute(
        "SELECT max_attempts, retry_backoff_seconds, timeout_seconds,"
        " extract(epoch FROM available_at - created_at)::float8 AS delay FROM executions"
    ).fetchone()
    assert found is not None
    assert (found["max_attempts"], found["retry_backoff_seconds"], found["timeout_seconds"]) == (
        5,
        120,
        90,
    )
    assert 3599 <= float(str(found["delay"])) <= 3601
    at = spine_cli(database_url, "run", "noop", "--at", "2999-01-01T00:00:00+00:00")
    assert at.returncode == 0, at.stderr
    both = spine_cli(database_url, "run", "noop", "--at", "2999-01-01", "--in", "1m")
    assert both.returncode == 2 and "--at or --in" in both.stderr
    bad = spine_cli(database_url, "run", "noop", "--max-attempts", "0")
    assert bad.returncode == 2


@pytest.mark.parametrize(
    "end",
    [
        models.End("failed", "boom", {"error": "boom"}, retry_max_backoff=10),
        models.End(
            "deferred", None, {"reason": "later"}, retry_at=datetime(2099, 1, 1, tzinfo=UTC)
        ),
    ],
    ids=["a-failure-with-attempts-left", "a-deferral"],
)
async def test_an_attempt_that_ends_after_its_cancel_was_asked_is_not_run_again(
    database_url: str, conn: Conn, end: models.End
) -> None:
    """A cancel asked while the attempt runs (its check not reached yet): an end that
    would go back to pending (a retry, a deferral) ends cancelled instead, at once."""
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "flaky", {"fail_times": 9}, max_attempts=4)
        await workers.heartbeat(aconn, "w", "test", 1)
        claimed = await claim_and_start(aconn, "w")
        assert claimed is not None and claimed.id == execution.id
        conn.execute("UPDATE executions SET cancel_requested = true WHERE id = %s", (claimed.id,))
        assert await leases.finish(aconn, execution.id, "w", end)
    ended_row = row(conn, execution.id)
    assert (ended_row["status"], ended_row["attempt"]) == (
        "cancelled",
        1 if end.status == "failed" else 0,
    )
    assert ended_row["completed_at"] is not None
    kinds = [e["event_type"] for e in events(conn, execution.id)]
    assert kinds[-1] == "cancelled"
    assert "retry_scheduled" not in kinds and "deferred" not in kinds
