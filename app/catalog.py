"""The data domains the app is built with: the one module that names them.

The engine knows no data domain; the app factory (`app.server`), the CLI and
the worker take the domains from `DOMAINS` and each domain's parts from its
own package (see `app.domains`). Adding a domain is one entry here.
"""

from __future__ import annotations

from typing import Final

from app import finra, otc
from app.domains import Catalog
from app.engine import builtin
from app.engine.registry import Registry

__all__ = ["DOMAINS", "default_registry", "registry_for"]

DOMAINS: Final = Catalog(otc.DOMAIN, finra.DOMAIN)


def registry_for(catalog: Catalog) -> Registry:
    """The engine's own pipelines and every pipeline of the catalog's domains, by name."""
    return Registry([*builtin.PIPELINES, *catalog.pipelines()])


def default_registry() -> Registry:
    """Every built-in pipeline, by name."""
    return registry_for(DOMAINS)
