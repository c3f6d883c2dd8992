"""What a data domain is to the rest of the app: one `Domain` value, and the `Catalog` of them.

A domain is a package `app/<name>/` laid out by convention; the value names
the package and says what cannot be found by looking (its OpenAPI tag, its
migration numbers). Its parts are loaded by name when a front end asks for
them, so the worker, which wants only pipelines, never loads a controller or
a click command:

    pipelines.py   PIPELINES, the domain's `Pipeline` values      (required)
    api.py         CONTROLLERS, Litestar controllers under /api/v1 (optional)
    cli.py         COMMANDS, {existing group name: [click commands]} (optional)
    ui.py          PAGES (handlers under /ui) and NAV ((label, path), ...) (optional)
    datasets.py    DATASETS, the domain's `Dataset` values (optional)
    templates/     the pages' Jinja templates, which extend `base.html`
    static/        served at /ui/static/<name>/

`app.catalog` holds the one `Catalog`; the app factory and the CLI take the
domains from it, and nothing else names them.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from app.engine.datasets import Dataset, DatasetCatalog
from app.engine.registry import Pipeline

if TYPE_CHECKING:
    import click

__all__ = ["CORE_MIGRATIONS", "MIGRATION_RANGE_SIZE", "Catalog", "Domain"]

MIGRATION_RANGE_SIZE = 10
CORE_MIGRATIONS = (range(1, 10), range(100, 1000))
"""Core migrations: 001-009, then 100 upward. Domains take 010-019, 020-029, ..."""


@dataclass(frozen=True)
class Domain:
    """One data domain: its package, its OpenAPI tag and its range of migration numbers."""

    name: str
    package: str
    description: str
    migrations: range
    nav: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        first = self.migrations.start
        if (
            first < 10
            or first >= 100
            or first % MIGRATION_RANGE_SIZE
            or len(self.migrations) != MIGRATION_RANGE_SIZE
        ):
            raise ValueError(f"domain {self.name}: migrations must be one range of ten below 100")

    @property
    def directory(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        assert spec is not None, self.package
        assert spec.origin is not None, self.package
        return Path(spec.origin).parent

    def part(self, name: str) -> ModuleType | None:
        """The domain's module `name` (`api`, `cli`, `ui`, ...), or None when it has none."""
        module = f"{self.package}.{name}"
        if importlib.util.find_spec(module) is None:
            return None
        return importlib.import_module(module)

    def pipelines(self) -> Sequence[Pipeline[Any]]:
        module = self.part("pipelines")
        assert module is not None, f"domain {self.name} has no pipelines module"
        return tuple(module.PIPELINES)

    def datasets(self) -> Sequence[Dataset]:
        module = self.part("datasets")
        return tuple(module.DATASETS) if module else ()

    def controllers(self) -> Sequence[Any]:
        module = self.part("api")
        return tuple(module.CONTROLLERS) if module else ()

    def commands(self) -> Mapping[str, Sequence[click.Command]]:
        module = self.part("cli")
        return dict(module.COMMANDS) if module else {}

    def pages(self) -> Sequence[Any]:
        module = self.part("ui")
        return tuple(module.PAGES) if module else ()

    def templates(self) -> Path | None:
        found = self.directory / "templates"
        return found if found.is_dir() else None

    def static(self) -> Path | None:
        found = self.directory / "static"
        return found if found.is_dir() else None


class Catalog:
    """The domains the app is built with, in order (their pages, tags and commands keep it)."""

    def __init__(self, *domains: Domain) -> None:
        names = [d.name for d in domains]
        if len(set(names)) != len(names):
            raise ValueError(f"a domain is listed twice: {names}")
        ranges = sorted((d.migrations.start, d.name) for d in domains)
        for (a, name_a), (b, name_b) in itertools.pairwise(ranges):
            if a == b:
                raise ValueError(f"domains {name_a} and {name_b} share migrations {a:03d}-")
        self.domains: tuple[Domain, ...] = tuple(domains)

    def __iter__(self) -> Iterator[Domain]:
        return iter(self.domains)

    def with_domain(self, domain: Domain) -> Catalog:
        """This catalog and one more domain (how a test, or a plugin, adds one)."""
        return Catalog(*self.domains, domain)

    def pipelines(self) -> list[Pipeline[Any]]:
        return [p for d in self.domains for p in d.pipelines()]

    def datasets(self) -> DatasetCatalog:
        """Every dataset of the domains, by name."""
        return DatasetCatalog([ds for d in self.domains for ds in d.datasets()])

    def next_migration_range(self) -> range:
        """The range of ten a new domain takes: the next free one after the domains'."""
        start = max((d.migrations.start for d in self.domains), default=0) + MIGRATION_RANGE_SIZE
        return range(start, start + MIGRATION_RANGE_SIZE)

    def owner_of_migration(self, number: int) -> str | None:
        """`core`, the owning domain's name, or None when no range holds `number`."""
        if any(number in r for r in CORE_MIGRATIONS):
            return "core"
        return next((d.name for d in self.domains if number in d.migrations), None)
