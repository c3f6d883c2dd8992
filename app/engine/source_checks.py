"""`spine sources check`: can each configured publisher be reached, now?

One HEAD per remote source (the datasets' sources, grouped by name and base
URL: a source serving several datasets is asked once), at the source's
`probe` path. Each answer says whether the host answered, the status, the
latency, and whether credentials were used (an OAuth2 token asked for first,
when the source has them configured). It changes nothing, takes no host slot
and is no part of /health/ready: a publisher being down is not our outage.

`ok` is what the command's exit status sums up: the host answered with a
status below 500 (a 404 or 405 at the probe path still says the host is up).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec

from app.config import Settings
from app.engine.datasets import DatasetCatalog
from app.engine.fetch import (
    TOKENS,
    ContactRequired,
    SourceRefused,
    SourceUnavailable,
    new_client,
    require_contact,
)
from app.engine.sources import RemoteSource
from app.errors import first_line

__all__ = ["SourceCheck", "check_sources"]


class SourceCheck(msgspec.Struct):
    """One source's answer to its probe."""

    source: str
    url: str
    datasets: list[str]
    reachable: bool
    """The host answered (any HTTP status)."""
    status: int | None
    latency_ms: int | None
    credentials: bool
    """A bearer token was asked for and sent (the source's credentials are set)."""
    ok: bool
    """Reachable, with a status below 500."""
    error: str | None


async def check_sources(
    settings: Settings, datasets: DatasetCatalog, *, probe_seconds: float = 10.0
) -> list[SourceCheck]:
    """Probe every remote source of these datasets, concurrently: one line each, by name."""
    groups: dict[tuple[str, str], tuple[RemoteSource, list[str]]] = {}
    for d in datasets:
        if d.remote is not None:
            key = (d.remote.name, d.remote.base(settings))
            groups.setdefault(key, (d.remote, []))[1].append(d.name)
    async with new_client(settings) as client:
        found = await asyncio.gather(
            *(
                _check(client, settings, source, sorted(names), probe_seconds)
                for source, names in groups.values()
            )
        )
    return sorted(found, key=lambda c: (c.source, c.url))


async def _check(
    client: httpx.AsyncClient,
    settings: Settings,
    source: RemoteSource,
    datasets: list[str],
    probe_seconds: float,
) -> SourceCheck:
    url = source.base(settings) + source.probe
    line = SourceCheck(source.name, url, datasets, False, None, None, False, False, None)
    try:
        require_contact(source, settings)
        headers: dict[str, str] = {}
        if source.token is not None and source.token.credentials(settings) is not None:
            line.credentials = True
            token = await TOKENS.token(client, source.token, settings)
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        response = await client.head(url, headers=headers, timeout=probe_seconds)
        line.latency_ms = round((time.perf_counter() - started) * 1000)
    except (ContactRequired, SourceRefused, SourceUnavailable) as exc:
        line.error = first_line(exc)
        return line
    except httpx.TransportError as exc:
        name = type(exc).__name__
        line.error = name if first_line(exc) == name else f"{name}: {first_line(exc)}"
        return line
    line.reachable, line.status = True, response.status_code
    line.ok = response.status_code < 500
    if not line.ok:
        line.error = f"HTTP {response.status_code}"
    return line
