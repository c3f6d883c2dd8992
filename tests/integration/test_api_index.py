"""`GET /api/v1` lists every route group, read from the app's routes (issue 31, item 16)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from app import finra, otc
from app.config import get_settings
from app.domains import Catalog
from app.server import create_app


async def _index(catalog: Catalog | None = None) -> dict[str, dict[str, object]]:
    get_settings.cache_clear()
    async with AsyncTestClient(create_app(catalog=catalog)) as client:
        response = await client.get("/api/v1")
        assert response.status_code == 200, response.text
        openapi = (await client.get("/schema/openapi.json")).json()
    groups: dict[str, dict[str, object]] = response.json()["groups"]
    listed = {route.split(" ", 1)[1] for g in groups.values() for route in g["routes"]}  # type: ignore[attr-defined]
    assert set(openapi["paths"]) - {"/api/v1"} <= listed  # every documented route is there
    return groups


@pytest.mark.usefixtures("database_url")
async def test_every_route_group_is_listed() -> None:
    groups = await _index()
    for name in ("executions", "schedules", "otc", "finra", "pipelines", "health"):
        assert groups[name]["href"] == f"/api/v1/{name}", name
    assert groups["ui"]["href"] == "/ui" and "GET /ui/finra" in groups["ui"]["routes"]  # type: ignore[operator]
    assert groups["metrics"] == {"href": "/metrics", "routes": ["GET /metrics"]}
    assert "POST /api/v1/schedules/{name}/run" in groups["schedules"]["routes"]  # type: ignore[operator]


@pytest.mark.usefixtures("database_url")
async def test_the_groups_come_from_the_routes_not_a_list() -> None:
    only_otc = await _index(Catalog(otc.DOMAIN))
    assert "otc" in only_otc and "finra" not in only_otc
    assert "finra" in await _index(Catalog(otc.DOMAIN, finra.DOMAIN))


# ------------------------------------------------------------------ item 17: Swagger's padlocks

MUTATING = {"post", "put", "patch", "delete"}


@pytest.mark.usefixtures("database_url")
@pytest.mark.parametrize(
    ("token", "reads", "locked"),
    [("", "0", "none"), ("t0ken", "0", "writes"), ("t0ken", "1", "all")],
)
async def test_the_padlocks_are_on_the_routes_that_need_the_token(
    monkeypatch: pytest.MonkeyPatch, token: str, reads: str, locked: str
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", token)
    monkeypatch.setenv("SPINE_API_TOKEN_READS", reads)
    get_settings.cache_clear()
    async with AsyncTestClient(create_app()) as client:
        document = (await client.get("/schema/openapi.json")).json()
        swagger = (await client.get("/schema/swagger")).text
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in MUTATING | {"get"}
    }
    public = {"/api/v1", "/api/v1/health", "/api/v1/health/ready"}
    for (method, path), operation in operations.items():
        needs = locked == "all" or (locked == "writes" and method in MUTATING)
        if path in public:
            needs = False
        expected: list[dict[str, list[str]]] | None = [{"bearerAuth": []}] if needs else None
        assert operation.get("security") == expected, (method, path)
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert ("bearerAuth" in schemes) == bool(token)  # Swagger's Authorize button only with one
    writes = sum(1 for (m, p) in operations if m in MUTATING)
    shown = swagger.count('"security":[{"bearerAuth":[]}]')  # the page's own copy
    assert shown == {"none": 0, "writes": writes, "all": len(operations) - len(public)}[locked]
