"""docs/architecture.md is the map: every module, file and function it names exists.

Checked: the package tree (each `name.py` and `folder/` under its parent), the
dotted names in backticks (`app.engine.batches.record`: the module, then the
attribute) and the paths in backticks (`app/api/routes/executions.py`).
The README's architecture part links to the map rather than repeating it.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "architecture.md"
_NAME = re.compile(r"^[\w]+(?:\.py|/)$")


def _tree() -> list[Path]:
    """The paths of the first code block under "## The packages"."""
    text = MAP.read_text()
    block = text[text.index("## The packages") :].split("```")[1]
    parents: dict[int, Path] = {}
    found: list[Path] = []
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        names = []
        for word in line.split():
            if not _NAME.match(word.rstrip(",")):
                break
            names.append(word.rstrip(","))
        if not names or indent % 2 or (indent and indent - 2 not in parents):
            continue
        base = parents[indent - 2] if indent else ROOT
        for name in names:
            path = base / name.rstrip("/")
            found.append(path)
            if name.endswith("/"):
                parents[indent] = path
                parents = {k: v for k, v in parents.items() if k <= indent}
    return found


def _dotted() -> set[str]:
    return set(re.findall(r"`((?:app|worker)(?:\.\w+)+)(?:\(\))?`", MAP.read_text()))


def _paths() -> set[str]:
    return set(re.findall(r"`((?:app|worker|tests|docs|migrations)/[\w/.]+)`", MAP.read_text()))


def test_the_tree_is_read() -> None:
    tree = _tree()
    assert ROOT / "app" / "engine" / "batches.py" in tree
    assert ROOT / "app" / "otc" / "templates" in tree
    assert ROOT / "worker" / "loop.py" in tree
    assert len(tree) > 60


@pytest.mark.parametrize("path", _tree(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_of_the_tree_exists(path: Path) -> None:
    assert path.exists(), f"docs/architecture.md names {path.relative_to(ROOT)}"


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


@pytest.mark.parametrize("name", sorted(_dotted()))
def test_every_dotted_name_exists(name: str) -> None:
    parts = name.split(".")
    cut = 1
    while cut < len(parts) and _is_module(".".join(parts[: cut + 1])):
        cut += 1
    value: object = importlib.import_module(".".join(parts[:cut]))
    for attribute in parts[cut:]:
        assert hasattr(value, attribute), f"docs/architecture.md names {name}"
        value = getattr(value, attribute)


@pytest.mark.parametrize("path", sorted(_paths()))
def test_every_path_exists(path: str) -> None:
    if path.startswith("app/demo/") or path.startswith("migrations/050_demo"):
        return  # the recipe's example domain (tests/unit/test_domain_recipe.py builds it)
    assert (ROOT / path).exists(), f"docs/architecture.md names {path}"


def test_the_readme_links_to_the_map() -> None:
    readme = (ROOT / "README.md").read_text()
    part = readme[readme.index("## Architecture") :]
    assert "docs/architecture.md" in part
    assert "run_pipeline" not in readme
    assert "SKIP LOCKED → running" not in part  # the claim holds rows `queued`
