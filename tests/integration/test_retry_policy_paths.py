"""Every way an execution comes to exist resolves its retry budget the same way.

The pipeline's RetryPolicy, then SPINE_MAX_ATTEMPTS where it says nothing,
then the submission's overrides (app.engine.retry.budget): a schedule's fire
and a manual run included, which once inserted rows of their own with the
column's default of 3 attempts. A manual retry resolves the row's fresh budget
the same way, from the policy and the environment of its own time, under the
overrides its submission set.
"""

from __future__ import annotations

import importlib
import os
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from psycopg import sql

from app import db
from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.engine import scheduling, workers
from app.engine.context import PipelineContext
from app.engine.recording import record_batch
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from app.engine.retry import RetryPolicy
from app.engine.schedules import ScheduleInput
from app.errors import InvalidRequest
from app.server import create_app
from tests.support import ROOT, fire_due, run_held, run_sync, status_counts

Conn = psycopg.Connection[dict[str, object]]


async def _nothing(ctx: PipelineContext, params: NoParams) -> Summary:
    return None


FIVE = Pipeline(
    "five_attempts", "retried up to 5 times", NoParams, _nothing, retry=RetryPolicy(max_attempts=5)
)


def with_five() -> Registry:
    """The built-in pipelines and one whose policy gives it 5 attempts."""
    return Registry([*default_registry(), FIVE])


def attempts_by_source(conn: Conn, pipeline: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT trigger_source, max_attempts FROM executions WHERE pipeline = %s", (pipeline,)
    ).fetchall()
    return {str(r["trigger_source"]): int(str(r["max_attempts"])) for r in rows}


@pytest.fixture
def seven(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """SPINE_MAX_ATTEMPTS=7 (the column's default is 3)."""
    monkeypatch.setenv("SPINE_MAX_ATTEMPTS", "7")
    get_settings.cache_clear()
    assert get_settings().max_attempts == 7
    return database_url


async def fire_one(url: str, registry: Registry, pipeline: str) -> None:
    """An every-second schedule of `pipeline`, fired by a pool's pass."""
    inp = ScheduleInput(name=f"every-{pipeline}", pipeline=pipeline, interval_seconds=1)
    async with await db.aconnect(url) as aconn:
        await scheduling.create(aconn, registry, get_settings(), inp)
        later = datetime.now(UTC) + timedelta(seconds=3)
        report = await fire_due(aconn, registry, now=later)
    assert [e.pipeline for e in report.fired] == [pipeline]


async def test_a_scheduled_fire_gets_spine_max_attempts(seven: str, conn: Conn) -> None:
    await fire_one(seven, default_registry(), "noop")
    assert attempts_by_source(conn, "noop") == {"schedule": 7}


def test_a_pipeline_policy_holds_however_its_execution_comes_to_exist(
    seven: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = with_five()
    run_sync(fire_one(seven, registry, FIVE.name))
    # Synchronous: the CLI below runs its own event loop.
    with TestClient(create_app(registry=registry)) as client:
        manual = client.post(f"/api/v1/schedules/every-{FIVE.name}/run")
        assert manual.status_code == 202, manual.text
        submitted = client.post("/api/v1/executions", json={"pipeline": FIVE.name})
        assert submitted.status_code == 202, submitted.text
        plain = client.post("/api/v1/executions", json={"pipeline": "noop"})
        assert plain.status_code == 202, plain.text
    # The CLI's registry is the catalog's; here it holds the five-attempt pipeline too.
    cli_run = importlib.import_module("app.cli.run")  # `app.cli.run` is also a command
    monkeypatch.setattr(cli_run, "default_registry", lambda: registry)
    result = CliRunner().invoke(main, ["run", FIVE.name])
    assert result.exit_code == 0, result.output
    assert attempts_by_source(conn, FIVE.name) == {"schedule": 5, "manual": 5, "api": 5, "cli": 5}
    # The environment's default where the policy says nothing; an override over both.
    assert attempts_by_source(conn, "noop") == {"api": 7}
    result = CliRunner().invoke(
        main, ["run", FIVE.name, "--max-attempts", "2", "--logical-key", "over"]
    )
    assert result.exit_code == 0, result.output
    row = conn.execute("SELECT max_attempts FROM executions WHERE logical_key = 'over'").fetchone()
    assert row == {"max_attempts": 2}


# ------------------------------------------------------------------ a manual retry


def max_attempts_env(monkeypatch: pytest.MonkeyPatch, attempts: int) -> None:
    """SPINE_MAX_ATTEMPTS says `attempts` from now on."""
    monkeypatch.setenv("SPINE_MAX_ATTEMPTS", str(attempts))
    get_settings.cache_clear()
    assert get_settings().max_attempts == attempts


async def _refuse(ctx: PipelineContext, params: NoParams) -> Summary:
    raise InvalidRequest("refused")  # bad input: failed after one attempt, whatever the budget


def with_refusers(policy_attempts: int | None) -> Registry:
    """The built-in pipelines, `refused` (its policy names no attempts) and
    `refused_by_policy`, whose policy names `policy_attempts` (None: none)."""
    policy = RetryPolicy(max_attempts=policy_attempts)
    return Registry(
        [
            *default_registry(),
            Pipeline("refused", "fails at once", NoParams, _refuse),
            Pipeline("refused_by_policy", "fails at once", NoParams, _refuse, retry=policy),
        ]
    )


async def fail_all(url: str, registry: Registry) -> None:
    """Run every pending execution once in this process, through what a worker runs."""
    worker_id = "budget-test-worker"
    async with await db.aconnect(url) as aconn:
        await workers.heartbeat(aconn, worker_id, "test", os.getpid())
    pool = await db.open_async_pool(url, get_settings())
    try:
        _, claimed, _ = await record_batch(pool, worker_id, [], claim=10)
        for execution in claimed:
            await run_held(pool, execution, worker_id, registry=registry)
    finally:
        await pool.close()


def budgets(conn: Conn) -> dict[str, tuple[int, float, float | None]]:
    rows = conn.execute(
        "SELECT id, max_attempts, retry_backoff_seconds, timeout_seconds FROM executions"
    ).fetchall()
    return {
        str(r["id"]): (
            int(str(r["max_attempts"])),
            float(str(r["retry_backoff_seconds"])),
            None if r["timeout_seconds"] is None else float(str(r["timeout_seconds"])),
        )
        for r in rows
    }


def test_a_manual_retry_resolves_a_fresh_budget_and_keeps_the_overrides(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    max_attempts_env(monkeypatch, 3)
    before = with_refusers(None)
    with TestClient(create_app(registry=before)) as client:
        ids = []
        for body in (
            {"pipeline": "refused"},
            {"pipeline": "refused", "max_attempts": 2, "timeout_seconds": 30},
            {"pipeline": "refused_by_policy"},
        ):
            created = client.post("/api/v1/executions", json=body)
            assert created.status_code == 202, created.text
            ids.append(created.json()["id"])
    plain, two, policy = ids
    assert budgets(conn) == {plain: (3, 10.0, None), two: (2, 10.0, 30.0), policy: (3, 10.0, None)}
    run_sync(fail_all(database_url, before))
    assert status_counts(conn) == {"failed": 3}

    # Then the environment says 6, and a new release's policy gives `refused_by_policy` 5.
    max_attempts_env(monkeypatch, 6)
    after = with_refusers(5)
    with TestClient(create_app(registry=after)) as client:
        retried = client.post(f"/api/v1/executions/{plain}/retry")
        assert retried.status_code == 202, retried.text
        assert (retried.json()["status"], retried.json()["max_attempts"]) == ("pending", 6)
    # The CLI's registry is the catalog's; here it holds the new release's pipelines.
    cli_executions = importlib.import_module("app.cli.executions")
    monkeypatch.setattr(cli_executions, "default_registry", lambda: after)
    one = CliRunner().invoke(main, ["executions", "retry", policy])
    assert one.exit_code == 0, one.output
    bulk = CliRunner().invoke(main, ["executions", "retry", "--status", "failed", "--yes"])
    assert bulk.exit_code == 0, bulk.output
    assert "retried 1 execution(s)" in bulk.output
    assert status_counts(conn) == {"pending": 3}
    # The environment where neither policy nor submission says; the policy over it; the
    # submission's own numbers over both.
    assert budgets(conn) == {plain: (6, 10.0, None), two: (2, 10.0, 30.0), policy: (5, 10.0, None)}


def test_a_row_from_before_the_overrides_were_stored_keeps_its_numbers(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    migration = ROOT / "migrations" / "100_core_budget_overrides.sql"
    # The view of both tiers (migration 150) reads the column: put back as it was after.
    view = conn.execute("SELECT pg_get_viewdef('executions_all') AS sql").fetchone()
    assert view is not None
    conn.execute("ALTER TABLE executions DROP COLUMN overrides CASCADE")
    row = conn.execute(
        "INSERT INTO executions (pipeline, trigger_source, status, max_attempts,"
        " retry_backoff_seconds) VALUES ('noop', 'api', 'failed', 4, 2) RETURNING id"
    ).fetchone()
    assert row is not None
    conn.execute(migration.read_text())
    conn.execute(sql.SQL("CREATE VIEW executions_all AS {}").format(sql.SQL(str(view["sql"]))))
    max_attempts_env(monkeypatch, 6)
    with TestClient(create_app()) as client:
        retried = client.post(f"/api/v1/executions/{row['id']}/retry")
        assert retried.status_code == 202, retried.text
    assert budgets(conn) == {str(row["id"]): (4, 2.0, None)}
