"""The execution engine in-process: registry, dispatcher, claim, runner, cancel, recovery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import psycopg
import pytest

from app import db
from app.engine import batches, executions, history, leases, models, workers
from app.engine.context import PipelineContext
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from app.engine.retry import RetryPolicy
from app.errors import InvalidParams, InvalidRequest, UnknownPipeline
from tests.support import claim, claim_and_start, run_inline, submit

Conn = psycopg.Connection[dict[str, object]]


def events_of(conn: Conn, execution_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT event_type FROM execution_events WHERE execution_id = %s ORDER BY id",
        (execution_id,),
    ).fetchall()
    return [str(r["event_type"]) for r in rows]


async def test_submit_records_pending_with_created_event(database_url: str, conn: Conn) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, created = await submit(aconn, "sleep", {"seconds": 2}, trigger_source="test")
    assert created
    assert execution.status == "pending"
    assert execution.params == {"seconds": 2.0}
    assert execution.trigger_source == "test"
    assert events_of(conn, execution.id) == ["created"]


async def test_bad_submissions_store_nothing(database_url: str, conn: Conn) -> None:
    async with await db.aconnect(database_url) as aconn:
        with pytest.raises(UnknownPipeline):
            await submit(aconn, "nope", {})
        with pytest.raises(InvalidParams):
            await submit(aconn, "sleep", {"seconds": "x"})
        with pytest.raises(InvalidRequest, match="lane"):
            await submit(aconn, "noop", {}, lane="express")
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 0}


async def test_concurrent_submits_with_one_logical_key_create_one(
    database_url: str, conn: Conn
) -> None:
    async def one() -> tuple[str, bool]:
        async with await db.aconnect(database_url) as aconn:
            execution, created = await submit(aconn, "noop", {}, logical_key="daily-2026-01-06")
            return execution.id, created

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert len({execution_id for execution_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    row = conn.execute("SELECT count(*) AS n FROM executions").fetchone()
    assert row == {"n": 1}


async def test_logical_key_is_free_again_once_finished(database_url: str) -> None:
    first = await run_inline(database_url, "noop")
    async with await db.aconnect(database_url) as aconn:
        a, created_a = await submit(aconn, "noop", {}, logical_key="k")
        b, created_b = await submit(aconn, "noop", {}, logical_key="k")
    assert first.status == "completed"
    assert created_a and not created_b and a.id == b.id


async def test_claim_takes_normal_lane_first_then_oldest(database_url: str) -> None:
    async with await db.aconnect(database_url) as aconn:
        old_backfill, _ = await submit(aconn, "noop", {}, lane="backfill")
        normal_1, _ = await submit(aconn, "noop", {})
        normal_2, _ = await submit(aconn, "noop", {})
        await aconn.execute("INSERT INTO workers (id, host, pid) VALUES ('w', 'h', 1)")
        order = []
        while (claimed := await claim_and_start(aconn, "w")) is not None:
            order.append(claimed.id)
            assert claimed.status == "running" and claimed.attempt == 1
    assert order == [normal_1.id, normal_2.id, old_backfill.id]


async def test_noop_runs_through_every_state(database_url: str, conn: Conn) -> None:
    final = await run_inline(database_url, "noop")
    assert final.status == "completed"
    assert final.started_at is not None and final.completed_at is not None
    assert events_of(conn, final.id) == ["created", "queued", "started", "completed"]


def _registry_with(
    name: str,
    run: Any,
    params: type[msgspec.Struct] = NoParams,
    retry: RetryPolicy = RetryPolicy(max_attempts=1),  # noqa: B008 - frozen, so shareable
) -> Registry:
    """One pipeline, by default never retried: the test sees its first attempt's end."""
    return Registry([Pipeline(name, "test pipeline", params, run, retry=retry)])


async def test_failure_keeps_one_line_error_and_traceback_in_event(
    database_url: str, conn: Conn
) -> None:
    async def explode(ctx: PipelineContext, params: NoParams) -> Summary:
        raise RuntimeError("disk on fire\nsecond line")

    registry = _registry_with("explode", explode)
    final = await run_inline(database_url, "explode", registry=registry)
    assert final.status == "failed"
    assert final.error == "RuntimeError: disk on fire"
    payload = conn.execute(
        "SELECT payload FROM execution_events WHERE execution_id = %s AND event_type = 'failed'",
        (final.id,),
    ).fetchone()
    assert payload is not None
    assert "Traceback" in payload["payload"]["traceback"]  # type: ignore[index]


async def test_result_summary_is_stored_in_completed_event(database_url: str, conn: Conn) -> None:
    async def answer(ctx: PipelineContext, params: NoParams) -> Summary:
        return {"rows": 42}

    final = await run_inline(database_url, "answer", registry=_registry_with("answer", answer))
    row = conn.execute(
        "SELECT payload FROM execution_events WHERE execution_id = %s AND event_type = 'completed'",
        (final.id,),
    ).fetchone()
    assert row is not None and row["payload"]["result"] == {"rows": 42}  # type: ignore[index]


async def test_cancel_pending_ends_at_once(database_url: str, conn: Conn) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "sleep", {"seconds": 60})
        after, outcome = await executions.request_cancel(aconn, execution.id)
        _, outcome_again = await executions.request_cancel(aconn, execution.id)
        missing, outcome_missing = await executions.request_cancel(aconn, "no-such-id")
    assert outcome == "cancelled" and after is not None and after.status == "cancelled"
    assert outcome_again == "finished"
    assert missing is None and outcome_missing == "missing"
    assert events_of(conn, execution.id) == ["created", "cancel_requested", "cancelled"]


async def test_cancel_running_stops_at_next_check(database_url: str, conn: Conn) -> None:
    started = asyncio.Event()

    async def long(ctx: PipelineContext, params: NoParams) -> Summary:
        started.set()
        for i in range(10_000):
            await ctx.check_cancelled()
            await asyncio.sleep(0.01)
            await ctx.progress(i, 10_000)
        return None

    registry = _registry_with("long", long)
    task = asyncio.create_task(run_inline(database_url, "long", registry=registry))
    await asyncio.wait_for(started.wait(), timeout=10)
    execution_id = str(conn.execute("SELECT id FROM executions").fetchone()["id"])  # type: ignore[index]
    async with await db.aconnect(database_url) as aconn:
        _, outcome = await executions.request_cancel(aconn, execution_id)
    assert outcome == "requested"
    final = await asyncio.wait_for(task, timeout=10)
    assert final.status == "cancelled"
    events = events_of(conn, final.id)
    assert events[-1] == "cancelled"
    assert events.count("cancel_requested") == 1


async def test_a_worker_that_lost_its_claim_cannot_finish(database_url: str) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "noop", {})
        await aconn.execute(
            "INSERT INTO workers (id, host, pid) VALUES ('a', 'h', 1), ('b', 'h', 2)"
        )
        await claim_and_start(aconn, "a")
        assert not await leases.finish(aconn, execution.id, "b", models.End("completed"))
        assert (await leases.claim_state(aconn, execution.id, "b")).held is False
        assert await leases.finish(aconn, execution.id, "a", models.End("completed"))
        final = await history.get(aconn, execution.id)
    assert final is not None and final.status == "completed"


LEASE = 3.0


async def server_older_than_the_lease(aconn: db.AsyncConn) -> None:
    """Recovery counts a heartbeat from the server's start at the earliest (a restart resets
    every lease): on a server started moments ago nothing is stale yet."""
    while True:
        cur = await aconn.execute(
            "SELECT now() - pg_postmaster_start_time() > make_interval(secs => %s) AS old",
            (LEASE,),
        )
        row = await cur.fetchone()
        if row is not None and row["old"]:
            return
        await asyncio.sleep(0.1)


async def test_recovery_requeues_then_fails_after_max_attempts(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "noop", {}, max_attempts=2)
        await aconn.execute(
            "INSERT INTO workers (id, host, pid, heartbeat_at) VALUES "
            "('dead', 'h', 1, now() - interval '1 hour'), ('live', 'h', 2, now())"
        )
        await server_older_than_the_lease(aconn)
        for attempt in (1, 2):
            claimed = await claim_and_start(aconn, "dead")
            assert claimed is not None and claimed.attempt == attempt
            # A live worker's execution is never touched.
            recovered = await workers.recover_stale(aconn, lease_timeout=LEASE)
            assert [r["id"] for r in recovered] == [execution.id]
        final = await history.get(aconn, execution.id)
    assert final is not None
    assert final.status == "failed"
    assert final.error is not None and final.error.startswith("worker lost: dead")
    assert events_of(conn, execution.id) == [
        "created", "queued", "started", "requeued", "queued", "started", "failed",
    ]  # fmt: skip


async def test_recovery_ends_a_cancel_requested_execution_as_cancelled(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "noop", {})
        await aconn.execute(
            "INSERT INTO workers (id, host, pid, heartbeat_at) "
            "VALUES ('dead', 'h', 1, now() - interval '1 hour')"
        )
        assert await claim_and_start(aconn, "dead") is not None
        _, outcome = await executions.request_cancel(aconn, execution.id)
        assert outcome == "requested"
        await server_older_than_the_lease(aconn)
        recovered = await workers.recover_stale(aconn, lease_timeout=LEASE)
        assert [(r["id"], r["status"]) for r in recovered] == [(execution.id, "cancelled")]
        final = await history.get(aconn, execution.id)
    assert final is not None and final.status == "cancelled" and final.completed_at is not None
    assert events_of(conn, execution.id) == [
        "created", "queued", "started", "cancel_requested", "cancelled",
    ]  # fmt: skip


async def test_recovery_leaves_live_workers_alone(database_url: str) -> None:
    async with await db.aconnect(database_url) as aconn:
        await submit(aconn, "noop", {})
        await aconn.execute("INSERT INTO workers (id, host, pid) VALUES ('live', 'h', 1)")
        await claim_and_start(aconn, "live")
        assert await workers.recover_stale(aconn, lease_timeout=30) == []


def test_prune_removes_only_old_finished_executions(database_url: str, conn: Conn) -> None:
    from click.testing import CliRunner

    from app.cli import main

    conn.execute(
        """
        INSERT INTO workers (id, host, pid, heartbeat_at, stopped_at) VALUES
            ('w', 'h', 1, now() - interval '40 days', NULL),
            ('gone', 'h', 2, now() - interval '40 days', now() - interval '40 days'),
            ('silent', 'h', 3, now() - interval '40 days', NULL),
            ('recently-stopped', 'h', 4, now() - interval '40 days', now()),
            ('live', 'h', 5, now(), NULL);
        INSERT INTO executions (id, pipeline, trigger_source, status, worker_id, created_at,
                                completed_at)
        VALUES ('old-done', 'noop', 't', 'completed', 'w', now() - interval '40 days',
                now() - interval '40 days'),
               ('old-failed', 'noop', 't', 'failed', 'w', now() - interval '40 days',
                now() - interval '31 days'),
               ('recent-done', 'noop', 't', 'completed', 'w', now(), now()),
               ('old-running', 'noop', 't', 'running', 'w', now() - interval '40 days', NULL),
               ('old-pending', 'noop', 't', 'pending', NULL, now() - interval '40 days', NULL);
        INSERT INTO execution_events (execution_id, event_type)
        SELECT id, 'created' FROM executions;
        """
    )
    result = CliRunner().invoke(main, ["executions", "prune", "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "pruned 2 finished execution(s) and 2 gone worker(s)" in result.output
    left = {r["id"] for r in conn.execute("SELECT id FROM executions").fetchall()}
    assert left == {"recent-done", "old-running", "old-pending"}
    orphans = conn.execute(
        "SELECT count(*) AS n FROM execution_events WHERE execution_id NOT IN "
        "('recent-done', 'old-running', 'old-pending')"
    ).fetchone()
    assert orphans == {"n": 0}
    # 'w' is silent too, but still named by a running execution: recovery needs it.
    workers = {r["id"] for r in conn.execute("SELECT id FROM workers").fetchall()}
    assert workers == {"w", "recently-stopped", "live"}


async def test_database_failure_under_a_pipeline_requeues_it(database_url: str, conn: Conn) -> None:
    async def cut_off(ctx: PipelineContext, params: NoParams) -> Summary:
        async with ctx.pool.connection() as c:
            # A real server-side disconnect, as in a restart or failover.
            await c.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return None

    registry = _registry_with("cut_off", cut_off, retry=RetryPolicy())
    final = await run_inline(database_url, "cut_off", registry=registry)
    assert final.status == "pending"
    assert final.worker_id is None
    assert events_of(conn, final.id)[-1] == "requeued"


async def test_a_result_that_is_not_json_fails_the_execution_cleanly(database_url: str) -> None:
    async def odd(ctx: PipelineContext, params: NoParams) -> Summary:
        return {"when": object()}

    final = await run_inline(database_url, "odd", registry=_registry_with("odd", odd))
    assert final.status == "failed"
    assert final.error is not None and "not JSON-able" in final.error


async def test_a_batch_is_claimed_in_order_and_its_ends_recorded_with_the_next_claim(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        backfill, _ = await submit(aconn, "noop", {}, lane="backfill")
        first, _ = await submit(aconn, "noop", {})
        second, _ = await submit(aconn, "noop", {})
        await aconn.execute("INSERT INTO workers (id, host, pid) VALUES ('w', 'h', 1)")
        held = await claim(aconn, "w", 2)
        # Normal lane first, then oldest; held but not started, the attempt not yet counted.
        assert [e.id for e in held] == [first.id, second.id]
        assert {(e.status, e.worker_id, e.attempt) for e in held} == {("queued", "w", 0)}
        # As if claimed a second ago: the records below happened since.
        await aconn.execute("UPDATE executions SET queued_at = queued_at - interval '1 second'")
        t0 = time.monotonic()
        records = [
            batches.Record(first.id, "completed", t0 - 0.2, t0 - 0.1, None, {"result": 1}),
            batches.Record(second.id, "failed", t0 - 0.05, t0 - 0.01, "boom", {"error": "boom"}),
        ]
        recorded, following = await batches.record(aconn, "w", records, claim=5)
        assert recorded == {first.id, second.id}
        assert [e.id for e in following] == [backfill.id]
        # What "w" no longer holds writes nothing; a start alone makes it running.
        assert await batches.record(aconn, "w", records) == (set(), [])
        start = batches.Record(backfill.id, "running", time.monotonic(), time.monotonic())
        assert await batches.record(aconn, "w", [start]) == ({backfill.id}, [])
        # Sent again (its answer lost): still held, but the start is written once.
        assert await batches.record(aconn, "w", [start]) == ({backfill.id}, [])
        done = {e.id: e for e in [await history.get(aconn, i) for i in (first.id, second.id)] if e}
        running = await history.get(aconn, backfill.id)
    assert done[first.id].status == "completed" and done[first.id].attempt == 1
    assert done[second.id].status == "failed" and done[second.id].error == "boom"
    assert running is not None and running.status == "running" and running.attempt == 1
    for execution_id in (first.id, second.id):
        assert events_of(conn, execution_id) == [
            "created", "queued", "started", done[execution_id].status
        ]  # fmt: skip
    # Stamped with when they happened (their ages sent), never before the claim.
    ran = conn.execute(
        """
        SELECT extract(epoch FROM completed_at - started_at)::float8 AS ran,
               queued_at <= started_at AS in_order
        FROM executions WHERE id IN (%s, %s) ORDER BY seq
        """,
        (first.id, second.id),
    ).fetchall()
    assert [r["in_order"] for r in ran] == [True, True]
    seconds = [float(str(r["ran"])) for r in ran]
    assert abs(seconds[0] - 0.1) < 0.03 and abs(seconds[1] - 0.04) < 0.03, seconds
    assert events_of(conn, backfill.id) == ["created", "queued", "started"]


async def test_a_claim_never_seen_by_its_worker_is_given_back_uncounted(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "noop", {})
        await aconn.execute("INSERT INTO workers (id, host, pid) VALUES ('w', 'h', 1)")
        assert await claim(aconn, "w", 3) != []  # its answer "lost" on the way
        reason = leases.CLAIM_ANSWER_LOST
        assert await leases.release_held(aconn, "w", reason=reason) == [execution.id]
        assert await leases.release_held(aconn, "w", reason=reason) == []
        back = await history.get(aconn, execution.id)
    assert back is not None and back.status == "pending" and back.worker_id is None
    assert back.attempt == 0
    assert events_of(conn, execution.id) == ["created", "queued", "requeued"]


async def test_a_heartbeat_puts_back_a_pruned_worker_row(database_url: str, conn: Conn) -> None:
    async with await db.aconnect(database_url) as aconn:
        await workers.heartbeat(aconn, "w", "h", 1)
        await aconn.execute("DELETE FROM workers WHERE id = 'w'")
        await workers.heartbeat(aconn, "w", "h", 1)
        await workers.heartbeat(aconn, "w", "h", 1)
    assert conn.execute("SELECT id, stopped_at FROM workers").fetchall() == [
        {"id": "w", "stopped_at": None}
    ]


async def test_pruning_workers_never_takes_a_row_younger_than_the_lease(
    database_url: str, conn: Conn
) -> None:
    conn.execute(
        """
        INSERT INTO workers (id, host, pid, heartbeat_at) VALUES
            ('beat-10s-ago', 'h', 1, now() - interval '10 seconds'),
            ('silent-2min', 'h', 2, now() - interval '2 minutes')
        """
    )
    async with await db.aconnect(database_url) as aconn:
        assert await workers.prune_workers(aconn, older_than_seconds=1, lease_timeout=60) == 1
    assert conn.execute("SELECT id FROM workers").fetchall() == [{"id": "beat-10s-ago"}]


async def test_a_given_back_execution_that_was_cancelled_ends_cancelled(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        execution, _ = await submit(aconn, "noop", {})
        await workers.heartbeat(aconn, "w", "h", 1)
        assert await claim_and_start(aconn, "w") is not None
        _, outcome = await executions.request_cancel(aconn, execution.id)
        assert outcome == "requested"
        reason = leases.GIVEN_BACK_ON_STOP
        assert await leases.release_held(aconn, "w", reason=reason) == [execution.id]
        final = await history.get(aconn, execution.id)
    assert final is not None and final.status == "cancelled" and final.completed_at is not None
    assert events_of(conn, execution.id) == [
        "created", "queued", "started", "cancel_requested", "cancelled",
    ]  # fmt: skip


async def test_a_retry_is_written_by_the_batch_statement_while_attempts_are_left(
    database_url: str, conn: Conn
) -> None:
    async with await db.aconnect(database_url) as aconn:
        again, _ = await submit(aconn, "noop", {}, max_attempts=2, retry_backoff_seconds=5)
        last, _ = await submit(aconn, "noop", {}, max_attempts=1)
        await workers.heartbeat(aconn, "w", "h", 1)
        assert {e.id for e in await claim(aconn, "w", 2)} == {again.id, last.id}
        t0 = time.monotonic()
        records = [
            batches.Record(e.id, "failed", t0 - 0.02, t0, "boom", {"error": "boom"}, 60.0)
            for e in (again, last)
        ]
        recorded, _ = await batches.record(aconn, "w", records)
        assert recorded == {again.id, last.id}
        retried = await history.get(aconn, again.id)
        failed = await history.get(aconn, last.id)
    assert retried is not None and failed is not None
    # Attempts left: back to pending after its backoff, the attempt counted.
    assert (retried.status, retried.attempt, retried.worker_id) == ("pending", 1, None)
    assert retried.started_at is None and retried.completed_at is None
    assert retried.available_at > retried.created_at
    assert events_of(conn, again.id) == ["created", "queued", "started", "retry_scheduled"]
    # None left: the end.
    assert (failed.status, failed.attempt, failed.error) == ("failed", 1, "boom")
    assert events_of(conn, last.id) == ["created", "queued", "started", "failed"]
