"""`spine executions`: list, show, events, cancel, prune."""

from __future__ import annotations

import click
import msgspec

from app import db
from app.cli.common import parse_age, with_conn
from app.config import get_settings
from app.engine import executions, workers
from app.engine.models import LANES, STATUSES, Event, Execution
from app.errors import Conflict, NotFound

__all__ = ["executions_group"]


@click.group("executions")
def executions_group() -> None:
    """Inspect, cancel and prune executions."""


@executions_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--pipeline", default=None, help="Only this pipeline (`spine list`).")
@click.option("--lane", type=click.Choice(LANES), default=None, help="Only this lane.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def executions_list(status: str | None, pipeline: str | None, lane: str | None, limit: int) -> None:
    """Newest executions first."""
    rows = with_conn(
        lambda c: executions.list_page(c, limit=limit, status=status, pipeline=pipeline, lane=lane)
    )
    for e in rows:
        click.echo(f"{e.id}  {e.status:<9}  {e.pipeline:<20} {e.created_at:%Y-%m-%d %H:%M:%S}")
    if not rows:
        click.echo("no executions")


async def _existing(conn: db.AsyncConn, execution_id: str) -> Execution:
    execution = await executions.get(conn, execution_id)
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    return execution


@executions_group.command("show")
@click.argument("execution_id")
def executions_show(execution_id: str) -> None:
    """One execution, as JSON."""
    execution = with_conn(lambda c: _existing(c, execution_id))
    click.echo(msgspec.json.format(msgspec.json.encode(execution)).decode())


@executions_group.command("events")
@click.argument("execution_id")
def executions_events(execution_id: str) -> None:
    """The execution's events in order."""

    async def go(conn: db.AsyncConn) -> list[Event]:
        await _existing(conn, execution_id)
        return await executions.list_events(conn, execution_id)

    for event in with_conn(go):
        payload = msgspec.json.encode(event.payload).decode()
        click.echo(
            f"{event.timestamp.isoformat(timespec='milliseconds')} {event.event_type:<16} {payload}"
        )


@executions_group.command("cancel")
@click.argument("execution_id")
def executions_cancel(execution_id: str) -> None:
    """Cancel: a pending execution at once, a running one at its next check."""
    execution, outcome = with_conn(lambda c: executions.request_cancel(c, execution_id))
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    if outcome == "finished":
        raise Conflict(f"execution {execution_id} already ended ({execution.status})")
    click.echo(f"{execution_id}: {outcome.replace('_', ' ')} (status {execution.status})")


@executions_group.command("prune")
@click.option("--older-than", "older_than", required=True, help="Age, like 30d, 12h or 90m.")
def executions_prune(older_than: str) -> None:
    """Delete finished executions (and their events) and gone workers older than the given age."""
    seconds = parse_age(older_than)
    lease = get_settings().lease_timeout
    deleted = with_conn(lambda c: executions.prune_finished(c, older_than_seconds=seconds))
    gone = with_conn(
        lambda c: workers.prune_workers(c, older_than_seconds=seconds, lease_timeout=lease)
    )
    click.echo(
        f"pruned {deleted} finished execution(s) and {gone} gone worker(s) older than {older_than}"
    )
