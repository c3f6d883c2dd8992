"""/api/v1/schedules against a real database: CRUD, 422s naming the field, pause/resume/run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app import db
from tests.api_support import Client, api_client, problem
from tests.support import fire_due

URL = "/api/v1/schedules"
Conn = psycopg.Connection[dict[str, object]]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


async def create(client: Client, name: str = "nightly", **body: Any) -> dict[str, Any]:
    payload = {"name": name, "pipeline": "noop", "cron": "30 18 * * *", **body}
    response = await client.post(URL, json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_then_get_shows_the_next_slot_in_the_market_time_zone(
    client: Client,
) -> None:
    body = await create(client, params={})
    assert body["timezone"] == "America/New_York"  # SPINE_MARKET_TZ's default
    assert body["enabled"] is True and body["misfire_grace_seconds"] == 300
    assert body["interval_seconds"] is None and body["last_fired_at"] is None
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    local = next_fire.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (18, 30)
    assert timedelta(0) < next_fire - datetime.now(UTC) <= timedelta(days=1)
    detail = (await client.get(f"{URL}/nightly")).json()
    assert detail["recent_fires"] == [] and detail["recent_skips"] == []
    assert detail["next_fire_at"] == body["next_fire_at"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "Bad minute"),
        ({"cron": "0 18 * *"}, "cron", "expected 5 fields"),
        ({"cron": "0 18 * * *", "interval_seconds": 5}, "cron", "got both"),
        ({"cron": None}, "cron", "got neither"),
        ({"cron": None, "interval_seconds": 0}, "interval_seconds", "at least 1"),
        ({"timezone": "Nowhere/City"}, "timezone", "IANA"),
    ],
)
async def test_invalid_timing_is_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str, words: str
) -> None:
    payload = {"name": "bad", "pipeline": "noop", "cron": "0 18 * * *", **body}
    found = problem(await client.post(URL, json=payload), 422)
    assert words in found["detail"]
    assert found["errors"][0]["field"] == field


async def test_unknown_pipeline_and_bad_params_are_422(client: Client) -> None:
    unknown = problem(
        await client.post(URL, json={"name": "x", "pipeline": "nope", "cron": "0 1 * * *"}), 422
    )
    assert "nope" in unknown["detail"] and "noop" in unknown["known_pipelines"]
    bad = problem(
        await client.post(
            URL,
            json={"name": "x", "pipeline": "sleep", "params": {"seconds": -1}, "cron": "0 1 * * *"},
        ),
        422,
    )
    assert "params.seconds" in bad["detail"]


async def test_a_taken_name_is_409_and_put_replaces(client: Client) -> None:
    await create(client)
    problem(
        await client.post(
            URL, json={"name": "nightly", "pipeline": "noop", "interval_seconds": 60}
        ),
        409,
    )
    replaced = await client.put(
        URL, json={"name": "nightly", "pipeline": "noop", "interval_seconds": 60}
    )
    assert replaced.status_code == 200
    assert replaced.json()["cron"] is None and replaced.json()["interval_seconds"] == 60
    created = await client.put(
        URL, json={"name": "other", "pipeline": "noop", "interval_seconds": 60}
    )
    assert created.status_code == 201


async def test_patch_switches_timing_and_recomputes_the_next_slot(client: Client) -> None:
    await create(client)
    patched = await client.patch(f"{URL}/nightly", json={"interval_seconds": 3600})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["cron"] is None and body["interval_seconds"] == 3600
    assert datetime.fromisoformat(body["next_fire_at"]).minute == 0
    problem(await client.patch(f"{URL}/nightly", json={"cron": "bad"}), 422)
    problem(await client.patch(f"{URL}/nightly", json={"nope": 1}), 400)
    problem(await client.patch(f"{URL}/missing", json={"enabled": False}), 404)


async def test_list_is_paginated_by_name_and_delete_removes(client: Client) -> None:
    for name in ("c", "a", "b"):
        await create(client, name)
    first = await client.get(URL, params={"limit": 2})
    assert [s["name"] for s in first.json()] == ["a", "b"]
    link = first.headers["link"].split(";")[0].strip("<>")
    second = await client.get(link)
    assert [s["name"] for s in second.json()] == ["c"] and "link" not in second.headers
    removed = await client.delete(f"{URL}/b")
    assert removed.status_code == 200 and removed.json()["name"] == "b"
    problem(await client.get(f"{URL}/b"), 404)
    problem(await client.delete(f"{URL}/b"), 404)


async def test_pause_fires_nothing_resume_continues_and_run_fires_now(
    client: Client, database_url: str, conn: Conn
) -> None:
    await create(client, "every", cron=None, interval_seconds=1, misfire_grace_seconds=60)
    paused = await client.post(f"{URL}/every/pause")
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    later = datetime.now(UTC) + timedelta(seconds=30)
    async with await db.aconnect(database_url) as aconn:
        report = await fire_due(aconn, now=later)
    assert report.fired == [] and report.skipped_slots == 0  # a paused schedule fires nothing

    run = await client.post(f"{URL}/every/run")
    assert run.status_code == 202, run.text
    execution = run.json()
    assert execution["trigger_source"] == "manual" and execution["status"] == "pending"
    assert execution["logical_key"].startswith("schedule:every:")

    resumed = await client.post(f"{URL}/every/resume")
    assert resumed.status_code == 200 and resumed.json()["enabled"] is True
    assert datetime.fromisoformat(resumed.json()["next_fire_at"]) > datetime.now(UTC) - timedelta(
        seconds=1
    )
    async with await db.aconnect(database_url) as aconn:
        report = await fire_due(aconn, now=datetime.now(UTC) + timedelta(seconds=2))
    assert len(report.fired) == 1 and report.fired[0].trigger_source == "schedule"

    detail = (await client.get(f"{URL}/every")).json()
    fires = detail["recent_fires"]
    assert [f["manual"] for f in fires] == [False, True]  # newest first
    assert {f["status"] for f in fires} == {"pending"}
    assert fires[1]["execution_id"] == execution["id"]
    problem(await client.post(f"{URL}/missing/run"), 404)
    problem(await client.post(f"{URL}/missing/pause"), 404)


async def test_mutations_need_the_token_when_one_is_set(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", "s3cret")
    async with api_client() as client:
        body = {"name": "t", "pipeline": "noop", "cron": "0 1 * * *"}
        problem(await client.post(URL, json=body), 401)
        problem(await client.put(URL, json=body), 401)
        auth = {"Authorization": "Bearer s3cret"}
        assert (await client.post(URL, json=body, headers=auth)).status_code == 201
        problem(await client.patch(f"{URL}/t", json={"enabled": False}), 401)
        problem(await client.post(f"{URL}/t/run"), 401)
        problem(await client.delete(f"{URL}/t"), 401)
        assert (await client.get(f"{URL}/t")).status_code == 200  # reads stay open


async def test_an_identical_put_keeps_a_due_slot_and_a_changed_timing_moves_it(
    client: Client, database_url: str, conn: Conn
) -> None:
    body = {"name": "due", "pipeline": "noop", "interval_seconds": 60}
    assert (await client.put(URL, json=body)).status_code == 201
    due = datetime(2026, 1, 1, 12, tzinfo=UTC)  # a slot the pools have not fired yet
    conn.execute("UPDATE schedules SET next_fire_at = %s", (due,))
    same = await client.put(URL, json={**body, "params": {}, "misfire_grace_seconds": 600})
    assert same.status_code == 200, same.text
    assert datetime.fromisoformat(same.json()["next_fire_at"]) == due
    async with await db.aconnect(database_url) as aconn:
        report = await fire_due(aconn, now=due + timedelta(seconds=1))
    assert [e.logical_key for e in report.fired] == ["schedule:due:2026-01-01T12:00:00Z"]

    conn.execute("UPDATE schedules SET next_fire_at = %s", (due,))
    changed = await client.put(URL, json={**body, "interval_seconds": 120})
    assert datetime.fromisoformat(changed.json()["next_fire_at"]) > datetime.now(UTC)
