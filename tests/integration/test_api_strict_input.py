"""Strict input: JSON types as declared, no key twice, IANA zones only, no epoch date-times.

Each refusal is a problem document whose one-line detail names the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api_support import Client, api_client, problem

EXECUTIONS = "/api/v1/executions"
SCHEDULES = "/api/v1/schedules"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


def names(body: dict[str, Any], field: str) -> None:
    """The problem names `field` in its detail (one line) and in its errors."""
    assert field in body["detail"], body
    assert "\n" not in body["detail"]
    if "errors" in body:
        assert field in [e["field"] for e in body["errors"]], body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", "3"),
        ("timeout_seconds", "5"),
        ("retry_backoff_seconds", "1.5"),
        ("max_attempts", True),
        ("run_at", 1_900_000_000),
        ("run_at", 1_900_000_000.5),
        ("lane", 1),
    ],
)
async def test_an_execution_field_of_the_wrong_json_type_is_refused(
    client: Client, field: str, value: object
) -> None:
    response = await client.post(EXECUTIONS, json={"pipeline": "noop", field: value})
    names(problem(response, 400), field)
    assert (await client.get(EXECUTIONS)).json() == []  # nothing was recorded


async def test_params_of_the_wrong_json_type_are_refused_naming_the_param(client: Client) -> None:
    response = await client.post(EXECUTIONS, json={"pipeline": "sleep", "params": {"seconds": "1"}})
    names(problem(response, 422), "params.seconds")
    accepted = await client.post(EXECUTIONS, json={"pipeline": "sleep", "params": {"seconds": 1}})
    assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"pipeline": "noop", "pipeline": "sleep"}', "pipeline"),
        (b'{"pipeline": "sleep", "params": {"seconds": 1, "seconds": 2}}', "seconds"),
        (b'{"pipeline": "noop", "params": {}, "params": {}}', "params"),
    ],
)
async def test_a_json_key_given_twice_is_refused(
    client: Client, content: bytes, field: str
) -> None:
    response = await client.post(EXECUTIONS, content=content, headers=JSON)
    body = problem(response, 400)
    names(body, field)
    assert "more than once" in body["detail"]


async def test_schedule_numbers_as_strings_and_duplicate_keys_are_refused(client: Client) -> None:
    base = {"name": "s1", "pipeline": "noop"}
    for field, value in (("interval_seconds", "60"), ("misfire_grace_seconds", "5")):
        timing = {} if field == "interval_seconds" else {"interval_seconds": 60}
        response = await client.post(SCHEDULES, json={**base, **timing, field: value})
        names(problem(response, 400), field)
    twice = b'{"name": "s1", "pipeline": "noop", "cron": "* * * * *", "cron": "0 * * * *"}'
    names(problem(await client.post(SCHEDULES, content=twice, headers=JSON), 400), "cron")
    params = {**base, "pipeline": "sleep", "interval_seconds": 60, "params": {"seconds": "2"}}
    names(problem(await client.put(SCHEDULES, json=params), 422), "params.seconds")


@pytest.mark.parametrize("zone", ["", "localtime", "posixrules", "Factory", "right/UTC"])
async def test_only_iana_time_zones_are_accepted(client: Client, zone: str) -> None:
    payload = {"name": "tz", "pipeline": "noop", "cron": "0 18 * * *", "timezone": zone}
    response = await client.post(SCHEDULES, json=payload)
    assert response.status_code in (400, 422), response.text
    names(problem(response, response.status_code), "timezone")
    assert (await client.get(SCHEDULES)).json() == []


async def test_iana_zones_and_links_are_accepted_and_patches_are_held_to_the_same_rules(
    client: Client,
) -> None:
    for i, zone in enumerate(["UTC", "America/New_York", "US/Eastern", "Etc/GMT+5"]):
        payload = {"name": f"tz{i}", "pipeline": "sleep", "cron": "0 18 * * *", "timezone": zone}
        created = await client.post(SCHEDULES, json=payload)
        assert created.status_code == 201, created.text
        assert created.json()["timezone"] == zone
    names(problem(await client.patch(f"{SCHEDULES}/tz0", json={"timezone": "localtime"}), 422),
          "timezone")  # fmt: skip
    names(problem(await client.patch(f"{SCHEDULES}/tz0", json={"timezone": ""}), 400), "timezone")
    wrong = await client.patch(f"{SCHEDULES}/tz0", json={"params": {"seconds": "1"}})
    names(problem(wrong, 422), "params.seconds")
    assert (await client.get(f"{SCHEDULES}/tz0")).json()["timezone"] == "UTC"


@pytest.mark.parametrize("value", ["1700000000", "1700000000.5", "-1", "1e9"])
async def test_a_query_date_time_written_as_a_number_is_refused(client: Client, value: str) -> None:
    for field in ("since", "until"):
        response = await client.get(EXECUTIONS, params={field: value})
        names(problem(response, 400), field)
    fine = await client.get(EXECUTIONS, params={"since": "2026-01-06T21:30:00Z"})
    assert fine.status_code == 200, fine.text
