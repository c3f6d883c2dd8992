"""Liveness, readiness (real outages and migration drift), the pipeline list and OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar import Litestar

from app.migrations import discover
from app.server import create_app
from tests.api_support import Client, api_client, closed_port, problem


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


async def test_liveness(client: Client) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"]


async def test_ready_when_the_database_answers_and_is_migrated(client: Client) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["migrations"] == {"applied": len(discover()), "pending": [], "changed": []}
    assert body["live_workers"] == 0
    assert "reason" not in body


async def test_not_ready_with_a_pending_migration(
    client: Client, conn: psycopg.Connection[dict[str, object]]
) -> None:
    last = discover()[-1].name
    conn.execute("DELETE FROM schema_migrations WHERE name = %s", (last,))
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["migrations"]["pending"] == [last]
    assert last in body["reason"] and "spine db init" in body["reason"]


async def test_not_ready_when_an_applied_migration_changed(
    client: Client, conn: psycopg.Connection[dict[str, object]]
) -> None:
    first = discover()[0].name
    conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE name = %s", (first,))
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json()["migrations"]["changed"] == [first]


async def test_not_ready_on_an_empty_database(
    database_url: str, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database nobody migrated: no schema_migrations table at all."""
    name = f"{psycopg.conninfo.conninfo_to_dict(database_url)['dbname']}_empty"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        monkeypatch.setenv("DATABASE_URL", psycopg.conninfo.make_conninfo(server_url, dbname=name))
        async with api_client() as client:
            response = await client.get("/api/v1/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["migrations"]["applied"] == 0
        assert body["migrations"]["pending"] == [m.name for m in discover()]
        assert "live_workers" not in body
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_database_down_is_503_and_liveness_stays_up(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the URL: readiness and data routes say 503; no secret leaks."""
    secret = "pw-never-shown-7f3a"
    url = f"postgresql://spine:{secret}@127.0.0.1:{closed_port()}/spine?connect_timeout=1"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr("app.web.connection.CONNECT_TIMEOUT", 0.5)
    caplog.set_level(logging.DEBUG)
    async with api_client() as client:
        assert (await client.get("/api/v1/health")).status_code == 200
        ready = await client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json()["database"] == "unavailable"
        assert ready.headers["retry-after"]
        listing = await client.get("/api/v1/executions")
        body = problem(listing, 503)
        assert body["type"].endswith("database-unavailable")
        assert listing.headers["retry-after"]
        submitted = await client.post("/api/v1/executions", json={"pipeline": "noop"})
        problem(submitted, 503)
    for text in (ready.text, listing.text, submitted.text, caplog.text):
        assert secret not in text


async def test_pipelines_lists_names_descriptions_and_params(client: Client) -> None:
    response = await client.get("/api/v1/pipelines")
    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()}
    assert {"noop", "sleep"} <= set(by_name)
    assert by_name["noop"]["params"] == []
    assert by_name["sleep"]["params"] == [
        {"name": "seconds", "type": "float", "default": "1.0", "description": "How long to sleep."}
    ]
    assert all(p["description"] for p in by_name.values())


# ------------------------------------------------------------------ OpenAPI


def _api_routes(app: Litestar) -> set[tuple[str, str]]:
    """(METHOD, path) of every route create_app registered under /api/v1 for the document
    (Reg SHO's `/symbols/{rest:path}`, the history of a symbol with a `/`, is kept out)."""
    found = set()
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        path = route.path_format  # {execution_id}, as in OpenAPI
        for handler in getattr(route, "route_handlers", ()):
            if not handler.include_in_schema:  # an alias kept out of the document on purpose
                continue
            for method in handler.http_methods:
                if method not in {"HEAD", "OPTIONS"}:
                    found.add((method, path))
    return found


async def test_openapi_document_is_valid_and_describes_every_route(client: Client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    validator.validate(doc)
    assert doc["info"]["title"] == "Market Spine"
    assert "NUMERIC" in doc["info"]["description"]  # money: exact in the DB, floats in JSON

    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert _api_routes(create_app()) == documented
    schemas = doc["components"]["schemas"]
    for method, path in documented:
        operation = doc["paths"][path][method.lower()]
        assert operation["operationId"] and operation["summary"] and operation["description"]
        for status, answer in operation["responses"].items():
            content = answer.get("content", {})
            assert content, f"{method} {path} {status} has no schema"
            ref = next(iter(content.values()))["schema"]
            ref = ref.get("items", ref).get("$ref", "")
            assert ref.removeprefix("#/components/schemas/") in schemas, (method, path, status)
            if status.startswith(("4", "5")) and path != "/api/v1/health/ready":
                assert set(content) == {"application/problem+json"}, (method, path, status)
    body = doc["paths"]["/api/v1/executions"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"].endswith("/ExecutionCreate")
    create = schemas["ExecutionCreate"]
    assert create["properties"]["pipeline"]["maxLength"] == 100
    assert sorted(create["properties"]["lane"]["enum"]) == ["backfill", "normal"]
    # No token is configured: no bearer scheme, so Swagger UI shows no Authorize button.
    assert "bearerAuth" not in doc["components"].get("securitySchemes", {})


async def test_interactive_docs_are_served_under_schema(client: Client) -> None:
    for path in ("/schema", "/schema/swagger", "/schema/redoc"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "text/html" in response.headers["content-type"]
        assert "Market Spine" in response.text
