"""What the API says of itself: OPTIONS lists every method; unknown fields are refused."""

from __future__ import annotations

from typing import Any

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
