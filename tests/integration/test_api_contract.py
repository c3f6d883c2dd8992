"""What the API says of itself: OPTIONS lists every method; unknown fields are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_support import api_client


async def test_options_lists_every_method_of_the_path(database_url: str) -> None:
    async with api_client() as client:
        collection = await client.options("/api/v1/executions")
        one = await client.options("/api/v1/executions/e1")
    assert collection.status_code == 204
    assert collection.headers["allow"] == "GET, OPTIONS, POST"
    assert one.headers["allow"] == "GET, OPTIONS"


async def test_openapi_marks_execution_create_and_every_pipelines_params_closed(
    database_url: str,
) -> None:
    async with api_client() as client:
        document: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
        pipelines = (await client.get("/api/v1/pipelines")).json()
    schemas = document["components"]["schemas"]
    create = schemas["ExecutionCreate"]
    assert create["additionalProperties"] is False
    refs = [item["$ref"].rsplit("/", 1)[1] for item in create["properties"]["params"]["anyOf"]]
    assert refs
    for name in refs:
        assert schemas[name]["additionalProperties"] is False, name
    documented = {prop for name in refs for prop in schemas[name]["properties"]}
    listed = {param["name"] for p in pipelines for param in p["params"]}
    assert documented == listed


async def test_options_on_a_schedule_lists_all_its_methods(database_url: str) -> None:
    async with api_client() as client:
        one = await client.options("/api/v1/schedules/nightly")
    assert one.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.mark.parametrize(
    ("env", "writes", "reads"),
    [
        ({}, None, None),  # no token: nothing to send
        (
            {"SPINE_API_TOKEN": "t0ken-for-the-schema"},
            [{"bearerAuth": []}],
            None,  # a read takes no token: no padlock
        ),
        (
            {"SPINE_API_TOKEN": "t0ken-for-the-schema", "SPINE_API_TOKEN_READS": "1"},
            [{"bearerAuth": []}],
            [{"bearerAuth": []}],
        ),
    ],
)
async def test_the_token_is_required_in_the_document_exactly_where_the_server_requires_it(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    writes: Any,
    reads: Any,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with api_client() as client:
        operations = _operations((await client.get("/schema/openapi.json")).json())
    assert operations["POST /api/v1/executions"].get("security") == writes
    assert operations["DELETE /api/v1/schedules/{name}"].get("security") == writes
    assert operations["GET /api/v1/executions"].get("security") == reads
    assert operations["GET /api/v1/otc/metrics/daily"].get("security") == reads
    assert operations["GET /api/v1/health"].get("security") is None  # probes stay open


async def test_the_document_states_the_servers_constraints(database_url: str) -> None:
    async with api_client() as client:
        document = (await client.get("/schema/openapi.json")).json()
        pipelines = sorted(p["name"] for p in (await client.get("/api/v1/pipelines")).json())
    operations = _operations(document)

    def query(operation: str, name: str) -> dict[str, Any]:
        found = [p for p in operations[operation]["parameters"] if p["name"] == name]
        return dict(found[0]["schema"])

    assert query("GET /api/v1/executions", "attempt_gte")["minimum"] == 0
    assert query("GET /api/v1/finra/weeks/{week}/symbols", "min_shares")["minimum"] == 0
    assert query("GET /api/v1/executions", "cursor")["pattern"] == "^[A-Za-z0-9_-]{1,512}$"
    schemas = document["components"]["schemas"]
    create = schemas["ExecutionCreate"]["properties"]

    def number(field: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in field["anyOf"] if s["type"] == "number")

    assert number(create["timeout_seconds"])["exclusiveMinimum"] == 0
    assert number(create["retry_backoff_seconds"])["minimum"] == 0
    for body in ("ExecutionCreate", "ScheduleCreate", "SchedulePatch"):
        assert schemas[body]["additionalProperties"] is False, body
        assert sorted(schemas[body]["properties"]["pipeline"]["enum"]) == pipelines, body
    timing = schemas["ScheduleCreate"]["oneOf"]
    assert sorted(variant["required"] for variant in timing) == [["cron"], ["interval_seconds"]]
    assert schemas["SchedulePatch"]["not"] == {"required": ["cron", "interval_seconds"]}
