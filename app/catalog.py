"""The data domains the app is built with: the one module that names them.

The engine knows no data domain; the app factory (`app.server`), the CLI and
the worker take the domains from `DOMAINS` and each domain's parts from its
own package (see `app.domains`). Adding a domain is one entry here.
"""

from __future__ import annotations

from typing import Final

from app import finra, ftd, otc
from app.config import get_settings
from app.domains import Catalog
from app.engine import builtin, sensors
from app.engine.backends import make_backend
from app.engine.registry import Registry

__all__ = ["DOMAINS", "default_registry", "registry_for"]

DOMAINS: Final = Catalog(otc.DOMAIN, finra.DOMAIN, ftd.DOMAIN)


def registry_for(catalog: Catalog) -> Registry:
    """The engine's own pipelines, the datasets' scan and propagation (app.engine.sensors)
    and every pipeline of the catalog's domains, by name."""
    built: list[Registry] = []
    sensing = sensors.pipelines(catalog.datasets(), lambda: built[0], get_settings, make_backend)
    built.append(Registry([*builtin.PIPELINES, *sensing, *catalog.pipelines()]))
    return built[0]


def default_registry() -> Registry:
    """Every built-in pipeline, by name."""
    return registry_for(DOMAINS)
