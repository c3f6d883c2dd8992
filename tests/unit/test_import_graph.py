"""The layout's rules, checked on the real import graph.

The contracts (engine, domains, front ends, worker) live in pyproject.toml's
`[tool.importlinter]` and are checked by import-linter's own command. What
holds for every domain of the catalog, a new one included without editing the
contracts, is checked here with grimp, the graph library it is built on: only
the catalog imports a domain, and a domain's templates and assets are its own.
The absence of cycles is checked the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grimp
import pytest

from app.catalog import DOMAINS

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_linter_contracts_are_kept() -> None:
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("app", "worker", "tests", "bench", exclude_type_checking_imports=True)


def _outside(domain: str) -> Callable[[str], bool]:
    package = f"app.{domain}"
    return lambda module: module != package and not module.startswith(f"{package}.")


@pytest.mark.parametrize("domain", [d.name for d in DOMAINS])
def test_only_the_catalog_imports_a_domain(domain: str) -> None:
    """Outside app/<domain>/, only app/catalog.py (and tests and bench) imports the domain."""
    graph = _graph()
    package = f"app.{domain}"
    inside = [m for m in graph.modules if not _outside(domain)(m)]
    importers = {
        importer
        for module in inside
        for importer in graph.find_modules_that_directly_import(module)
        if _outside(domain)(importer)
    }
    allowed = {"app.catalog"}
    strays = sorted(
        m for m in importers - allowed if not m.startswith(("tests.", "bench.", "tests", "bench"))
    )
    assert strays == [], f"{package} imported from outside its folder by {strays}"
    assert "app.catalog" in importers


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in {".html", ".js", ".css"}]


@pytest.mark.parametrize("domain", [d.name for d in DOMAINS])
def test_a_domains_templates_and_static_files_live_in_its_folder(domain: str) -> None:
    """The templates a domain renders are in app/<domain>/templates and nowhere else, and no
    template or static file outside the folder refers to its assets, nor a core dashboard
    file to the element ids of its templates (its charts' data blocks and canvases)."""
    folder = ROOT / "app" / domain
    code = "\n".join(p.read_text() for p in folder.rglob("*.py"))
    rendered = set(re.findall(r'Template\(\s*"([^"]+)"', code))
    own = {p.name for p in (folder / "templates").glob("*.html")}
    assert rendered, f"app/{domain} renders no template"
    assert rendered <= own
    ids = {i for p in (folder / "templates").glob("*.html") for i in _IDS.findall(p.read_text())}
    others = [p for p in _files(ROOT / "app") if folder not in p.parents]
    for path in others:
        assert path.name not in own, f"{path} has the name of app/{domain}'s template"
        if {"vendor", "redoc"} & set(path.parts):  # third-party files
            continue
        text = path.read_text()
        assert f"/ui/static/{domain}/" not in text, f"{path} refers to app/{domain}'s assets"
        if ROOT / "app" / "ui" not in path.parents:
            continue  # another domain's page may use the same id for its own element
        found = {i for i in ids if re.search(rf"[\"'#]{re.escape(i)}[\"']", text)}
        assert not found, f"{path} refers to app/{domain}'s elements {sorted(found)}"


_IDS = re.compile(r'\bid="([^"{]+)"')


@pytest.mark.parametrize("package", ["app", "worker"])
def test_no_import_cycles(package: str) -> None:
    graph = grimp.build_graph("app", "worker", exclude_type_checking_imports=True)
    cycles = sorted(
        (a, b)
        for a in graph.modules
        if a.startswith(package)
        for b in graph.find_modules_directly_imported_by(a)
        if graph.chain_exists(importer=b, imported=a)
    )
    assert cycles == []
