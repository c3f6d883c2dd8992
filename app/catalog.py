"""The data domains the app is built with: the one module that names them.

The engine knows no data domain; the app factory (`app.server`), the CLI and
the worker take the domains from `DOMAINS` and each domain's parts from its
own package (see `app.domains`). Adding a domain is one entry here.
"""

from __future__ import annotations

from typing import Final

from app import finra, ftd, otc, regsho
from app.config import Settings, get_settings
from app.db import AsyncConn
from app.domains import Catalog
from app.engine import builtin, sensors
from app.engine.backends import make_backend
from app.engine.registry import Registry

__all__ = ["DOMAINS", "default_registry", "registry_for", "store_graph", "sync_datasets"]

DOMAINS: Final = Catalog(otc.DOMAIN, finra.DOMAIN, regsho.DOMAIN, ftd.DOMAIN)


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


async def sync_datasets(conn: AsyncConn, settings: Settings) -> list[str]:
    """Store the datasets' dependency graph and create their scan schedules (paused), as
    declared (`spine db init`); the names of the schedules created."""
    return await sensors.sync(conn, default_registry(), settings, DOMAINS.datasets())


async def store_graph(conn: AsyncConn) -> None:
    """Store the datasets' dependency graph as declared. Each pool's scheduler runs it when
    it starts, so a release that adds a dataset or an edge is followed by propagation
    without a separate `spine db init`."""
    await sensors.store_graph(conn, DOMAINS.datasets())
