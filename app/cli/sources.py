"""`spine sources check`: one probe per configured remote source (app.engine.source_checks).

Exit status: 0 when every source answered below 500 (or none is configured), 1
when one did not answer, answered 5xx, or was refused before asking (a missing
SPINE_HTTP_USER_AGENT, refused credentials). Each line says which and why.
"""

from __future__ import annotations

import click
import msgspec

from app.catalog import DOMAINS
from app.cli.common import run_async
from app.cli.render import FORMAT_OPTION, emit
from app.config import get_settings
from app.engine.source_checks import SourceCheck, check_sources

__all__ = ["sources_group"]


class CheckLine(msgspec.Struct):
    """A row of the table (the JSON and CSV are the whole SourceCheck)."""

    source: str
    url: str
    reachable: str
    status: str
    latency_ms: int | None
    credentials: str
    note: str


def _line(c: SourceCheck) -> CheckLine:
    return CheckLine(
        c.source,
        c.url,
        "yes" if c.reachable else "no",
        str(c.status) if c.status is not None else "-",
        c.latency_ms,
        "used" if c.credentials else "none",
        c.error or ", ".join(c.datasets),
    )


@click.group("sources")
def sources_group() -> None:
    """The datasets' remote sources (publishers)."""


@sources_group.command("check")
@click.option(
    "--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
    help="Seconds each probe may take.",
)  # fmt: skip
@FORMAT_OPTION
def check(timeout: float, fmt: str) -> None:
    """One HEAD per remote source: reachable, status, latency, credentials used.

    Exits 1 when a source is unreachable, answers 5xx or is refused before asking.
    """
    found = run_async(check_sources(get_settings(), DOMAINS.datasets(), probe_seconds=timeout))
    emit(found, fmt, "no remote sources configured", kind=SourceCheck, table=_line)
    if not all(c.ok for c in found):
        click.get_current_context().exit(1)
