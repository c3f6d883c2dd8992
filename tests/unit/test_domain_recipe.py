"""docs/architecture.md's "Adding a data domain", followed to the letter.

The recipe's files are written, as the page shows them, into a temporary
package; the domain is registered the way the recipe's catalog line does
(`DOMAINS` plus one domain); then its pipeline, its API route, its page, its
menu entry and its command must all appear, and nothing else was edited.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from app.catalog import DOMAINS, registry_for
from app.cli import build_cli
from app.config import Settings
from app.domains import Catalog, Domain
from app.server import create_app

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "spine_recipe_demo"


def recipe() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return text[text.index("## Adding a data domain") :]


def recipe_files() -> dict[str, str]:
    """Each `**`path`**` marker, paired in order with the code blocks that follow it."""
    pending: list[str] = []
    files: dict[str, str] = {}
    for match in re.finditer(r"\*\*`([^`]+)`\*\*|```\w*\n(.*?)```", recipe(), re.DOTALL):
        if match.group(1) is not None:
            pending.append(match.group(1))
        else:
            assert pending, f"a code block names no file: {match.group(2)[:60]!r}"
            files[pending.pop(0)] = match.group(2)
    assert not pending, f"markers without code: {pending}"
    return files


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Domain]:
    files = recipe_files()
    for path, text in files.items():
        if path.startswith("app/demo/"):
            target = tmp_path / PACKAGE / path.removeprefix("app/demo/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE).DOMAIN
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def demo_catalog(domain: Domain) -> Catalog:
    """What the recipe's catalog line builds: the built-in domains, then the new one."""
    line = recipe_files()["app/catalog.py"].strip()
    assert line == (
        "DOMAINS: Final = Catalog(otc.DOMAIN, finra.DOMAIN, regsho.DOMAIN, ftd.DOMAIN, demo.DOMAIN)"
    )
    assert [d.name for d in DOMAINS] == ["otc", "finra", "regsho", "ftd"]
    return DOMAINS.with_domain(domain)


def test_the_recipe_names_only_its_folder_the_catalog_and_its_migration() -> None:
    paths = recipe_files()
    assert {p.split("/")[0] for p in paths} == {"app", "migrations"}
    assert {p for p in paths if not p.startswith("app/demo/")} == {
        "app/catalog.py",
        "migrations/050_demo_quotes.sql",
    }


def test_the_domain_takes_the_next_migration_range(demo: Domain) -> None:
    assert demo.migrations == DOMAINS.next_migration_range() == range(50, 60)
    migration = next(p for p in recipe_files() if p.startswith("migrations/"))
    number = int(Path(migration).name.split("_", 1)[0])
    catalog = demo_catalog(demo)
    assert catalog.owner_of_migration(number) == "demo"
    assert DOMAINS.owner_of_migration(number) is None  # before registration: nobody's


def test_its_pipeline_route_page_and_command_appear(demo: Domain) -> None:
    catalog = demo_catalog(demo)
    assert "demo_echo" in registry_for(catalog).names()
    assert "demo_echo" not in registry_for(DOMAINS).names()

    app = create_app(Settings(), catalog=catalog)
    schema = app.openapi_schema.to_schema()
    assert "/api/v1/demo/echo" in schema["paths"]
    assert {"name": "demo", "description": "Demo quotes."} in schema["tags"]
    # Not entered: the lifespan (the pool) does not start; no request here needs it.
    client = TestClient(app)
    assert client.get("/api/v1/demo/echo", params={"symbol": "CpK"}).json() == {"symbol": "CpK"}
    assert client.get("/api/v1/demo/echo", params={"symbol": "C/K"}).status_code == 200
    assert client.get("/api/v1/demo/echo", params={"symbol": "C K"}).status_code == 400
    pipelines = [p["name"] for p in client.get("/api/v1/pipelines").json()]
    assert "demo_echo" in pipelines
    page = client.get("/ui/demo")
    assert page.status_code == 200
    assert "<h1>demo</h1>" in page.text
    assert 'href="/ui/demo"' in page.text  # its menu entry

    cli = build_cli(catalog)
    done = CliRunner().invoke(cli, ["query", "demo", "CpK"])
    assert done.exit_code == 0, done.output
    assert done.output == "CpK\n"
    listed = CliRunner().invoke(cli, ["query", "--help"]).output
    assert "demo" in listed
    assert "metrics" in listed  # OTC's commands stay where they were
    assert "demo" not in CliRunner().invoke(build_cli(DOMAINS), ["query", "--help"]).output
