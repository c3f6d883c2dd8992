"""The layout's rules, checked on the real import graph.

The contracts (engine, domains, worker) live in pyproject.toml's
`[tool.importlinter]` and are checked by import-linter's own command; the
absence of cycles is checked with grimp, the graph library it is built on.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_linter_contracts_are_kept() -> None:
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_data_domain_is_named_in_the_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    domains = {
        f"app.{p.name}"
        for p in (ROOT / "app").iterdir()
        if p.is_dir() and (p / "pipelines.py").is_file()
    }
    engine, domain_rule, independence, _ = config["contracts"]
    assert domains <= set(engine["forbidden_modules"])
    assert domains == set(domain_rule["source_modules"])
    assert independence["type"] == "independence"
    assert domains == set(independence["modules"])


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
