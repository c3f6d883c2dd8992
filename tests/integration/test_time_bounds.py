"""Times outside what every reader can represent are refused before anything is stored (issue 31).

A `run_at` after year 9999 used to be stored (available_at 10000-01-01) while
the API answered 400; every later read of the table then failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import psycopg
import pytest
from click.testing import CliRunner

from app import db
from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.engine import executions
from app.engine.backends import make_backend
from app.engine.submit import submit
from app.errors import InvalidField
from app.time_bounds import LATEST
from tests.api_support import Client, api_client, problem
from tests.support import ROOT

Conn = psycopg.Connection[dict[str, object]]
URL = "/api/v1/executions"
PAST_9999 = "9999-12-31T23:59:59-14:00"  # 10000-01-01T13:59:59Z


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


def _count(conn: Conn) -> object:
    row = conn.execute("SELECT count(*) AS n FROM executions").fetchone()
    assert row is not None
    return row["n"]


@pytest.mark.parametrize("run_at", [PAST_9999, "0001-01-01T00:00:00+14:00"])
async def test_api_refuses_a_run_at_out_of_range_and_stores_nothing(
    client: Client, conn: Conn, run_at: str
) -> None:
    response = await client.post(URL, json={"pipeline": "noop", "run_at": run_at})
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "run_at"
    assert "run_at" in body["detail"]
    assert _count(conn) == 0
    listed = await client.get(URL, params={"status": "pending"})
    assert listed.status_code == 200 and listed.json() == []


async def test_api_accepts_a_run_at_just_inside_the_range(client: Client) -> None:
    inside = (LATEST - dt.timedelta(seconds=1)).isoformat()
    response = await client.post(URL, json={"pipeline": "noop", "run_at": inside})
    assert response.status_code == 202, response.text
    assert (await client.get(response.headers["location"])).status_code == 200


@pytest.mark.parametrize("name", ["since", "until"])
async def test_api_refuses_list_filters_out_of_range(client: Client, name: str) -> None:
    body = problem(await client.get(URL, params={name: PAST_9999}), 422)
    assert body["errors"][0]["field"] == name


async def test_submit_refuses_a_delay_that_carries_run_at_past_the_range(
    database_url: str, conn: Conn
) -> None:
    near = LATEST - dt.timedelta(seconds=10)
    async with await db.aconnect(database_url) as aconn:
        with pytest.raises(InvalidField) as refused:
            await submit(
                aconn,
                default_registry(),
                get_settings(),
                "noop",
                run_at=near,
                delay_seconds=3600,
                backend=make_backend(get_settings()),
            )
    assert refused.value.field == "run_at"
    assert _count(conn) == 0


async def test_a_refused_insert_leaves_nothing_behind(database_url: str, conn: Conn) -> None:
    """The database itself refuses a time its clients cannot read: the statement fails whole."""
    beyond = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-14)))
    new = executions.NewExecution(
        id=executions.new_id(),
        pipeline="noop",
        params={},
        lane="normal",
        trigger_source="test",
        logical_key=None,
        max_attempts=1,
        retry_backoff_seconds=0,
        run_at=beyond,
    )
    async with await db.aconnect(database_url) as aconn:
        with pytest.raises(psycopg.Error):
            await executions.insert(aconn, new)
    assert _count(conn) == 0
    assert conn.execute("SELECT count(*) AS n FROM execution_events").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", "noop", "--at", PAST_9999], "--at"),
        (["executions", "list", "--since", PAST_9999], "--since"),
        (["executions", "list", "--until", PAST_9999], "--until"),
        (["executions", "retry", "--status", "failed", "--since", PAST_9999], "--since"),
    ],
)
def test_cli_refuses_times_out_of_range(
    database_url: str, conn: Conn, args: list[str], option: str
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert option in result.output and "9999-12-30" in result.output
    assert "Traceback" not in result.output
    assert _count(conn) == 0


async def test_dashboard_refuses_filters_out_of_range(client: Client) -> None:
    response = await client.get("/ui/executions", params={"since": "9999-12-31T23:59"})
    assert response.status_code == 400
    assert "since" in response.text and "9999-12-30" in response.text


def test_the_migration_makes_a_row_stored_by_the_bug_readable_again(
    database_url: str, conn: Conn
) -> None:
    migration = ROOT / "migrations" / "130_core_times_in_range.sql"
    conn.execute("ALTER TABLE executions DROP CONSTRAINT executions_available_at_readable")
    conn.execute(
        "INSERT INTO executions (pipeline, trigger_source, available_at)"
        " VALUES ('noop', 'api', '10000-01-01 13:59:59+00')"
    )
    conn.execute(migration.read_text())
    result = CliRunner().invoke(main, ["executions", "list"])
    assert result.exit_code == 0, result.output
    assert "pending" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["executions", "prune", "--older-than", "99999999999999d"],
        ["executions", "list", "--since", "99999999999999d"],
        ["data", "prune-raw", "--older-than", "99999999999999w"],
    ],
)
def test_cli_refuses_ages_beyond_the_calendar(database_url: str, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "is too long: at most 3,652,056d" in result.output and "Traceback" not in result.output


async def test_an_offset_beyond_postgresqls_is_accepted_as_the_same_instant(
    client: Client, conn: Conn
) -> None:
    """RFC 3339 allows offsets to ±23:59, PostgreSQL only to ±15:59: sent in UTC, it is stored."""
    answer = await client.post(
        "/api/v1/executions", json={"pipeline": "noop", "run_at": "2030-10-28T17:35:13-23:13"}
    )
    assert answer.status_code == 202, answer.text
    row = conn.execute(
        "SELECT available_at FROM executions WHERE id = %s", (answer.json()["id"],)
    ).fetchone()
    assert row is not None
    assert row["available_at"] == dt.datetime(2030, 10, 29, 16, 48, 13, tzinfo=dt.UTC)
    listed = await client.get("/api/v1/executions", params={"since": "2000-01-01T00:00:00+23:59"})
    assert listed.status_code == 200, listed.text
