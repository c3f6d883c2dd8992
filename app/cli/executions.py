"""`spine executions`: list, show, events, cancel, retry, prune."""

from __future__ import annotations

import click
import msgspec

from app import db
from app.catalog import default_registry
from app.cli.backend import cli_backend
from app.cli.common import parse_age, parse_since, with_conn
from app.cli.render import FORMAT_OPTION, emit, emit_one, limit_option, one_format_option
from app.config import get_settings
from app.engine import archive, history, retries, workers
from app.engine.models import LANES, STATUSES, Event, Execution
from app.engine.retries import RETRYABLE
from app.errors import Conflict, NotFound
from app.web.schemas import EventResponse, ExecutionResponse

__all__ = ["executions_group"]


@click.group("executions")
def executions_group() -> None:
    """Inspect, cancel, retry and prune executions."""


SINCE_HELP = "Created at or after: an age back from now (1d, 12h) or an ISO 8601 time."
UNTIL_HELP = "Created before: an age back from now (1d, 12h) or an ISO 8601 time."


class ExecutionLine(msgspec.Struct):
    """A row of `spine executions list`'s table (`--format json`: the API's objects)."""

    id: str
    status: str
    pipeline: str
    created_at: str
    attempt: str
    next_run: str
    timeout: str
    last_error: str


def _line(e: ExecutionResponse) -> ExecutionLine:
    waiting = e.status == "pending" and e.available_at > e.created_at
    return ExecutionLine(
        id=e.id,
        status=e.status,
        pipeline=e.pipeline,
        created_at=f"{e.created_at:%Y-%m-%d %H:%M:%S}",
        attempt=f"{e.attempt}/{e.max_attempts}",
        next_run=f"{e.available_at:%Y-%m-%d %H:%M:%S}" if waiting else "",
        timeout=f"{e.timeout_seconds:g}s" if e.timeout_seconds is not None else "",
        last_error=e.last_error or "",
    )


class EventLine(msgspec.Struct):
    """A row of `spine executions events`' table."""

    timestamp: str
    event_type: str
    payload: dict[str, object]


def _event_line(e: EventResponse) -> EventLine:
    return EventLine(e.timestamp.isoformat(timespec="milliseconds"), e.event_type, e.payload)


@executions_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--pipeline", default=None, help="Only this pipeline (`spine list`).")
@click.option("--lane", type=click.Choice(LANES), default=None, help="Only this lane.")
@click.option("--since", default=None, help=SINCE_HELP)
@click.option("--until", default=None, help=UNTIL_HELP)
@click.option("--attempt-gte", type=click.IntRange(0), default=None, help="At least N attempts.")
@limit_option(20, 500)
@FORMAT_OPTION
def executions_list(
    *,
    status: str | None,
    pipeline: str | None,
    lane: str | None,
    since: str | None,
    until: str | None,
    attempt_gte: int | None,
    limit: int,
    fmt: str,
) -> None:
    """Newest executions first: attempts, next run (a delayed run or a retry), last error."""
    first = parse_since(since, option="--since")
    last = parse_since(until, option="--until")
    rows = with_conn(
        lambda c: history.list_page(
            c,
            limit=limit + 1,
            status=status,
            pipeline=pipeline,
            lane=lane,
            since=first,
            until=last,
            attempt_gte=attempt_gte,
        )
    )
    emit(
        [ExecutionResponse.from_row(e) for e in rows],
        fmt,
        "no executions",
        kind=ExecutionResponse,
        limit=limit,
        table=_line,
    )


async def _existing(conn: db.AsyncConn, execution_id: str) -> Execution:
    execution = await history.get(conn, execution_id)
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    return execution


@executions_group.command("show")
@click.argument("execution_id")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
def executions_show(execution_id: str, fmt: str) -> None:
    """One execution, as the API's JSON object."""
    execution = with_conn(lambda c: _existing(c, execution_id))
    emit_one(ExecutionResponse.from_row(execution), fmt, "")


@executions_group.command("events")
@click.argument("execution_id")
@FORMAT_OPTION
def executions_events(execution_id: str, fmt: str) -> None:
    """The execution's events in order."""

    async def go(conn: db.AsyncConn) -> list[Event]:
        execution = await _existing(conn, execution_id)
        return await history.list_events(conn, execution_id, execution=execution)

    emit(
        [EventResponse.from_row(e) for e in with_conn(go)],
        fmt,
        "no events",
        kind=EventResponse,
        table=_event_line,
    )


@executions_group.command("cancel")
@click.argument("execution_id")
@one_format_option()
def executions_cancel(execution_id: str, fmt: str) -> None:
    """Cancel: a pending execution at once, a running one at its next check."""
    backend = cli_backend()
    execution, outcome = with_conn(lambda c: backend.cancel(c, execution_id))
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    if outcome == "finished":
        raise Conflict(f"execution {execution_id} already ended ({execution.status})")
    emit_one(
        ExecutionResponse.from_row(execution),
        fmt,
        f"{execution_id}: {outcome.replace('_', ' ')} (status {execution.status})",
    )


@executions_group.command("retry")
@click.argument("execution_id", required=False)
@click.option("--status", type=click.Choice(RETRYABLE), default=None, help="Only this status.")
@click.option("--pipeline", default=None, help="Only this pipeline.")
@click.option("--since", default=None, help=SINCE_HELP)
@click.option("--until", default=None, help=UNTIL_HELP)
@click.option("--yes", "-y", is_flag=True, help="Retry without asking (the bulk form).")
@one_format_option()
def executions_retry(
    execution_id: str | None,
    *,
    status: str | None,
    pipeline: str | None,
    since: str | None,
    until: str | None,
    yes: bool,
    fmt: str,
) -> None:
    """Back to pending with a fresh attempt budget: one execution, or every match.

    With EXECUTION_ID, that failed or cancelled execution. Without it, every
    failed or cancelled execution the filters match, after confirmation, e.g.
    `spine executions retry --status failed --pipeline otc_ingest --since 1d`.
    """
    if execution_id is not None:
        if status or pipeline or since or until:
            raise click.UsageError("give an EXECUTION_ID or filters, not both")
        execution, outcome = with_conn(
            lambda c: retries.retry_one(
                c,
                default_registry(),
                get_settings(),
                execution_id,
                source="cli",
                backend=cli_backend(),
            )
        )
        if execution is None:
            raise NotFound(f"no execution {execution_id}")
        if outcome != "retried":
            why = {
                "completed": "it completed",
                "not_ended": f"it is still {execution.status}",
                "key_active": "another active execution holds its logical_key",
            }.get(outcome, outcome)
            raise Conflict(f"execution {execution_id} cannot be retried: {why}")
        text = f"{execution_id}: retried (status {execution.status})"
        emit_one(ExecutionResponse.from_row(execution), fmt, text)
        return
    first = parse_since(since, option="--since")
    last = parse_since(until, option="--until")
    count = with_conn(
        lambda c: retries.count_retryable(
            c, status=status, pipeline=pipeline, since=first, until=last
        )
    )
    if count == 0:
        emit_one(RetriedMany(retried=[]), fmt, "no failed or cancelled executions match")
        return
    if not yes:
        click.confirm(f"retry {count} execution(s)?", abort=True, err=True)
    retried = with_conn(
        lambda c: retries.retry_many(
            c,
            default_registry(),
            get_settings(),
            source="cli",
            backend=cli_backend(),
            status=status,
            pipeline=pipeline,
            since=first,
            until=last,
        )
    )
    emit_one(RetriedMany(retried=list(retried)), fmt, f"retried {len(retried)} execution(s)")


@executions_group.command("prune")
@click.option("--older-than", "older_than", required=True, help="Age, like 30d, 12h or 90m.")
@one_format_option()
def executions_prune(older_than: str, fmt: str) -> None:
    """Delete finished executions (and their events) and gone workers older than the given age.

    History segments (days) wholly older are dropped whole; the rest is deleted in batches.
    """
    seconds = parse_age(older_than)
    lease = get_settings().lease_timeout
    deleted = with_conn(lambda c: archive.prune(c, older_than_seconds=seconds))
    gone = with_conn(
        lambda c: workers.prune_workers(c, older_than_seconds=seconds, lease_timeout=lease)
    )
    emit_one(
        Pruned(executions=deleted, workers=gone),
        fmt,
        f"pruned {deleted} finished execution(s) and {gone} gone worker(s) older than {older_than}",
    )


class RetriedMany(msgspec.Struct, kw_only=True):
    """`executions retry --format json` with filters: the ids retried."""

    retried: list[str]


class Pruned(msgspec.Struct, kw_only=True):
    """`executions prune --format json`: how many rows went."""

    executions: int
    workers: int
