"""Every way an execution comes to exist resolves its retry budget the same way.

The pipeline's RetryPolicy, then SPINE_MAX_ATTEMPTS where it says nothing,
then the submission's overrides (app.engine.retry.budget): a schedule's fire
and a manual run included, which once inserted rows of their own with the
column's default of 3 attempts.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from app import db
from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.engine import scheduling
from app.engine.context import PipelineContext
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from app.engine.retry import RetryPolicy
from app.engine.schedules import ScheduleInput
from app.server import create_app
from tests.support import fire_due, run_sync

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
