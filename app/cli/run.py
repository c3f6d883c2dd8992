"""`spine list` and `spine run`: what can be submitted, and submitting it."""

from __future__ import annotations

import contextlib
import sys

import click

from app import db
from app.catalog import default_registry
from app.cli.common import (
    parse_age,
    parse_params,
    parse_seconds,
    parse_time,
    run_async,
    with_conn,
)
from app.cli.render import draw_progress
from app.config import get_settings
from app.engine import executions
from app.engine.models import EXECUTIONS_CHANNEL, LANES, TERMINAL, Execution
from app.engine.retry import MAX_ATTEMPTS_LIMIT
from app.engine.submit import submit

__all__ = ["list_pipelines", "run"]


@click.command("list")
def list_pipelines() -> None:
    """List registered pipelines with their params (type, default, description)."""
    for item in default_registry():
        click.echo(f"{click.style(item.name, bold=True)}  {item.description}")
        docs = item.param_docs()
        width = max((len(f"{d.name}: {d.type} = {d.default}") for d in docs), default=0)
        for d in docs:
            text = f"{d.name}: {d.type} = {d.default}"
            click.echo(f"    {text:<{width}}  {d.description or ''}".rstrip())


@click.command("run")
@click.argument("pipeline")
@click.option("-p", "--param", "params", multiple=True, help="key=value (repeatable).")
@click.option("--lane", type=click.Choice(LANES), default="normal", show_default=True)
@click.option("--logical-key", default=None, help="Deduplicate against active executions.")
@click.option(
    "--max-attempts",
    type=click.IntRange(1, MAX_ATTEMPTS_LIMIT),
    default=None,
    help="Attempts before a failure is final (default: the pipeline's policy).",
)
@click.option(
    "--retry-backoff",
    default=None,
    help="Wait before the first retry, like 30s or 2m (then doubling).",
)
@click.option("--timeout", default=None, help="Stop an attempt running longer, like 90s or 1h.")
@click.option("--at", "at", default=None, help="Not before this time (ISO 8601).")
@click.option("--in", "delay", default=None, help="Not before this long from now, like 10m.")
@click.option("--wait", is_flag=True, help="Follow the execution until it ends.")
def run(
    pipeline: str,
    *,
    params: tuple[str, ...],
    lane: str,
    logical_key: str | None,
    max_attempts: int | None,
    retry_backoff: str | None,
    timeout: str | None,
    at: str | None,
    delay: str | None,
    wait: bool,
) -> None:
    """Submit an execution of PIPELINE (trigger_source `cli`)."""
    settings = get_settings()
    if at is not None and delay is not None:
        raise click.UsageError("give --at or --in, not both")
    backoff = parse_seconds(retry_backoff) if retry_backoff else None
    limit = parse_seconds(timeout) if timeout else None
    run_at = parse_time(at) if at else None
    delay_seconds = parse_age(delay) if delay else 0.0

    async def go(conn: db.AsyncConn) -> tuple[Execution, bool]:
        return await submit(
            conn,
            default_registry(),
            settings,
            pipeline,
            parse_params(params),
            lane=lane,
            logical_key=logical_key,
            trigger_source="cli",
            max_attempts=max_attempts,
            retry_backoff_seconds=backoff,
            timeout_seconds=limit,
            run_at=run_at,
            delay_seconds=delay_seconds,
        )

    execution, created = with_conn(go)
    verb = "submitted" if created else "already active"
    when = f", not before {execution.available_at:%Y-%m-%d %H:%M:%S %Z}" if at or delay else ""
    click.echo(f"{verb}: {execution.id} ({execution.pipeline}, {execution.status}{when})")
    if wait:
        final = run_async(_follow(execution.id))
        sys.exit(0 if final == "completed" else 1)


async def _follow(execution_id: str) -> str:
    """Print events as they happen (progress as a bar) until the execution ends."""
    last_id = 0
    bar_shown = False
    async with await db.aconnect() as conn:
        await conn.execute(f"LISTEN {EXECUTIONS_CHANNEL}")
        while True:
            # Status first: the end and its event commit together, so once the status is
            # terminal the events read next include the last one.
            current = await executions.get(conn, execution_id)
            for event in await executions.list_events(conn, execution_id, after_id=last_id):
                last_id = event.id
                if event.event_type == "progress":
                    draw_progress(event.payload)
                    bar_shown = True
                    continue
                if bar_shown:
                    click.echo(err=True)
                    bar_shown = False
                detail = event.payload.get("error") or event.payload.get("result") or ""
                click.echo(f"{event.timestamp:%H:%M:%S} {event.event_type} {detail}".rstrip())
            if current is None or current.status in TERMINAL:
                if current and current.error:
                    click.echo(f"error: {current.error}", err=True)
                return current.status if current else "missing"
            # Events carry no NOTIFY of their own; wake on queue activity or every 0.5 s.
            with contextlib.suppress(TimeoutError):
                async for _ in conn.notifies(timeout=0.5, stop_after=1):
                    pass
