"""POST/GET /api/v1/executions, events and cancel, against a real database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from app.web.pagination import encode_cursor
from tests.api_support import Client, api_client, make_running, problem

URL = "/api/v1/executions"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


async def submit(client: Client, pipeline: str = "noop", **body: object) -> dict[str, object]:
    response = await client.post(URL, json={"pipeline": pipeline, **body})
    assert response.status_code == 202, response.text
    return dict(response.json())


# ------------------------------------------------------------------ submit


async def test_submit_answers_202_pending_with_location(client: Client) -> None:
    response = await client.post(URL, json={"pipeline": "sleep", "params": {"seconds": 2}})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["pipeline"] == "sleep"
    assert body["params"] == {"seconds": 2.0}
    assert body["lane"] == "normal"
    assert body["trigger_source"] == "api"
    assert body["attempt"] == 0
    assert body["logical_key"] is None
    assert body["started_at"] is None and body["completed_at"] is None and body["error"] is None
    assert set(body) == {
        "id", "pipeline", "params", "lane", "status", "trigger_source", "logical_key",
        "attempt", "cancel_requested", "created_at", "started_at", "completed_at", "error",
        "max_attempts", "available_at", "timeout_seconds", "retry_backoff_seconds", "last_error",
        "backend", "backend_run_id",
    }  # fmt: skip
    assert body["max_attempts"] == 3 and body["timeout_seconds"] is None
    assert (body["backend"], body["backend_run_id"]) == ("local", None)
    location = response.headers["location"]
    assert location == f"{URL}/{body['id']}"
    fetched = await client.get(location)
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_submit_fills_param_defaults_and_takes_the_lane(client: Client) -> None:
    body = await submit(client, "sleep", lane="backfill")
    assert body["params"] == {"seconds": 1.0}
    assert body["lane"] == "backfill"


async def test_active_logical_key_returns_the_existing_execution_with_200(client: Client) -> None:
    first = await client.post(URL, json={"pipeline": "noop", "logical_key": "day-1"})
    second = await client.post(URL, json={"pipeline": "noop", "logical_key": "day-1"})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    # Once it is finished the key is free again.
    await client.post(f"{URL}/{first.json()['id']}/cancel")
    third = await client.post(URL, json={"pipeline": "noop", "logical_key": "day-1"})
    assert third.status_code == 202
    assert third.json()["id"] != first.json()["id"]


async def test_unknown_pipeline_is_422_listing_the_known_ones(client: Client) -> None:
    body = problem(await client.post(URL, json={"pipeline": "nope"}), 422)
    assert "nope" in body["detail"]
    assert {"noop", "sleep"} <= set(body["known_pipelines"])
    assert body["type"].endswith("unknown-pipeline")
    assert body["instance"] == URL
    assert [e["field"] for e in body["errors"]] == ["pipeline"]


async def test_invalid_params_are_422_naming_the_field(client: Client) -> None:
    response = await client.post(URL, json={"pipeline": "sleep", "params": {"seconds": "soon"}})
    body = problem(response, 422)
    assert "params.seconds" in body["detail"]
    body = problem(await client.post(URL, json={"pipeline": "noop", "params": {"x": 1}}), 422)
    assert "x" in body["detail"]


async def test_blank_logical_key_is_422(client: Client) -> None:
    body = problem(await client.post(URL, json={"pipeline": "noop", "logical_key": "  "}), 422)
    assert "logical_key" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"pipeline": "noop", "paramz": {}}, "paramz"),  # a typo is an error, not a default
        ({}, "pipeline"),
        ({"pipeline": 3}, "pipeline"),
        ({"pipeline": ""}, "pipeline"),
        ({"pipeline": "x" * 101}, "pipeline"),
        ({"pipeline": "noop", "lane": "express"}, "lane"),
        ({"pipeline": "noop", "params": []}, "params"),
        ({"pipeline": "noop", "logical_key": "k" * 201}, "logical_key"),
        ({"pipeline": "noop", "logical_key": ""}, "logical_key"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    client: Client, payload: dict[str, object], field: str
) -> None:
    body = problem(await client.post(URL, json=payload), 400)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["source"] == "body"
    assert f"`{field}`" in body["detail"]


async def test_a_body_that_is_not_an_object_is_400(client: Client) -> None:
    problem(await client.post(URL, json=["noop"]), 400)
    problem(await client.post(URL, content=b"null"), 400)
    problem(await client.post(URL, content=b""), 400)


async def test_malformed_json_is_400(client: Client) -> None:
    body = problem(await client.post(URL, content=b'{"pipeline": "noop"'), 400)
    assert "not valid JSON" in body["detail"]
    assert body["type"].endswith("malformed-body")


async def test_nothing_is_stored_for_refused_submissions(client: Client) -> None:
    await client.post(URL, json={"pipeline": "nope"})
    await client.post(URL, json={"pipeline": "sleep", "params": {"seconds": -1}})
    await client.post(URL, json={"pipeline": "noop", "bogus": 1})
    assert (await client.get(URL)).json() == []


# ------------------------------------------------------------------ list


async def test_list_is_newest_first(client: Client) -> None:
    ids = [(await submit(client))["id"] for _ in range(3)]
    response = await client.get(URL)
    assert response.status_code == 200
    assert [e["id"] for e in response.json()] == ids[::-1]
    assert "link" not in response.headers


async def test_list_filters_by_status_pipeline_and_lane(client: Client) -> None:
    noop = await submit(client, "noop")
    backfill = await submit(client, "sleep", lane="backfill")
    cancelled = await submit(client, "noop")
    await client.post(f"{URL}/{cancelled['id']}/cancel")

    async def ids(**query: str) -> list[object]:
        response = await client.get(URL, params=query)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert await ids(status="cancelled") == [cancelled["id"]]
    assert await ids(status="pending") == [backfill["id"], noop["id"]]
    assert await ids(pipeline="sleep") == [backfill["id"]]
    assert await ids(lane="backfill") == [backfill["id"]]
    assert await ids(lane="normal", status="pending") == [noop["id"]]
    assert await ids(pipeline="nothing-by-this-name") == []


async def test_keyset_pages_follow_the_link_header(client: Client) -> None:
    ids = [(await submit(client))["id"] for _ in range(5)]
    await submit(client, "sleep")  # filtered out: the filter must survive into the next link
    seen: list[object] = []
    url: str | None = f"{URL}?pipeline=noop&limit=2"
    pages = 0
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= 2
        seen += [e["id"] for e in page]
        pages += 1
        link = response.headers.get("link")
        if link is None:
            url = None
            continue
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert match, link
        url = match.group(1)
        query = parse_qs(urlsplit(url).query)
        assert query["pipeline"] == ["noop"] and query["limit"] == ["2"]
        assert len(query["cursor"]) == 1
    assert seen == ids[::-1]
    assert pages == 3


async def test_a_full_last_page_has_no_link(client: Client) -> None:
    for _ in range(2):
        await submit(client)
    response = await client.get(URL, params={"limit": 2})
    assert len(response.json()) == 2
    assert "link" not in response.headers


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!", encode_cursor("otc_metrics", "ACME", "2026-01-06"), "e30", "W10"],
)
async def test_a_foreign_or_broken_cursor_is_400(client: Client, cursor: str) -> None:
    body = problem(await client.get(URL, params={"cursor": cursor}), 400)
    assert body["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"status": "sleeping"}, "status"),
        ({"lane": "express"}, "lane"),
    ],
)
async def test_bad_query_parameters_are_400_naming_them(
    client: Client, query: dict[str, str], field: str
) -> None:
    body = problem(await client.get(URL, params=query), 400)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["source"] == "query"


async def test_limit_500_is_allowed(client: Client) -> None:
    assert (await client.get(URL, params={"limit": 500})).status_code == 200


# ------------------------------------------------------------------ one execution, events


async def test_unknown_execution_is_404(client: Client) -> None:
    body = problem(await client.get(f"{URL}/no-such-id"), 404)
    assert "no-such-id" in body["detail"]
    problem(await client.get(f"{URL}/no-such-id/events"), 404)


async def test_events_come_in_order(client: Client) -> None:
    execution = await submit(client)
    await client.post(f"{URL}/{execution['id']}/cancel")
    response = await client.get(f"{URL}/{execution['id']}/events")
    assert response.status_code == 200
    events = response.json()
    assert [e["event_type"] for e in events] == ["created", "cancel_requested", "cancelled"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["execution_id"] for e in events} == {execution["id"]}
    assert events[0]["payload"] == {"trigger_source": "api", "lane": "normal"}
    assert all(e["timestamp"] for e in events)
    newer = await client.get(f"{URL}/{execution['id']}/events", params={"after": events[0]["id"]})
    assert newer.json() == events[1:]
    latest = await client.get(f"{URL}/{execution['id']}/events", params={"after": events[-1]["id"]})
    assert latest.json() == []
    problem(await client.get(f"{URL}/{execution['id']}/events", params={"after": -1}), 400)


# ------------------------------------------------------------------ cancel


async def test_cancel_pending_is_202_cancelled_then_409(client: Client) -> None:
    execution = await submit(client)
    response = await client.post(f"{URL}/{execution['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["completed_at"] is not None
    body = problem(await client.post(f"{URL}/{execution['id']}/cancel"), 409)
    assert "already finished" in body["detail"]


async def test_cancel_running_asks_it_to_stop(client: Client, database_url: str) -> None:
    execution = await submit(client, "sleep", params={"seconds": 60})
    await make_running(database_url, str(execution["id"]))
    response = await client.post(f"{URL}/{execution['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True
    again = await client.post(f"{URL}/{execution['id']}/cancel")  # already requested: still 202
    assert again.status_code == 202
    events = (await client.get(f"{URL}/{execution['id']}/events")).json()
    assert [e["event_type"] for e in events].count("cancel_requested") == 1


async def test_cancel_unknown_is_404(client: Client) -> None:
    problem(await client.post(f"{URL}/no-such-id/cancel"), 404)


async def test_a_time_window_that_ends_before_it_starts_is_422(client: Client) -> None:
    """As a date range in the wrong order is: the client's mistake, named, not an empty page."""
    answer = await client.get(
        "/api/v1/executions",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    body = problem(answer, 422)
    assert body["errors"][0]["field"] == "since"
    assert (
        "since 2026-02-01T00:00:00+00:00 is after until 2026-01-01T00:00:00+00:00"
        in (body["detail"])
    )
    same = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert (await client.get("/api/v1/executions", params=same)).status_code == 200
