"""`spine list` and `spine run`: what can be submitted, and submitting it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import BinaryIO

import click
import msgspec

from app import db
from app.catalog import default_registry
from app.cli.backend import cli_backend
from app.cli.common import (
    parse_age,
    parse_params,
    parse_seconds,
    parse_time,
    run_async,
    with_conn,
)
from app.cli.render import ProgressPrinter
from app.config import get_settings
from app.engine import history, workers
from app.engine.listen import Listener
from app.engine.models import EXECUTIONS_CHANNEL, LANES, TERMINAL, Execution
from app.engine.registry import Registry
from app.engine.retry import MAX_ATTEMPTS_LIMIT
from app.engine.submit import Submission, submit, submit_batch
from app.errors import InvalidRequest
from app.web.fields import to_json
from app.web.schemas import BATCH_LIMIT, ExecutionResponse
from app.web.submissions import submission

__all__ = ["list_pipelines", "run"]


@click.command("list")
def list_pipelines() -> None:
    """List registered pipelines with their params (type, default, description)."""
    pipelines = [(item, item.param_docs()) for item in default_registry()]
    texts = [f"{d.name}: {d.type} = {d.default}" for _, docs in pipelines for d in docs]
    width = max((len(t) for t in texts), default=0)  # one column for every pipeline's params
    for item, docs in pipelines:
        click.echo(f"{click.style(item.name, bold=True)}  {item.description}")
        for d in docs:
            text = f"{d.name}: {d.type} = {d.default}"
            click.echo(f"    {text:<{width}}  {d.description or ''}".rstrip())


@click.command("run")
@click.argument("pipeline", required=False)
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
@click.option(
    "--from-file",
    "from_file",
    type=click.File("rb"),
    default=None,
    help="Submit each line of a JSONL file (`-`: stdin), shaped like POST /api/v1/executions' "
    "body, a thousand lines per insert; instead of PIPELINE and its options.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the submitted execution as the API returns it (e.g. `| jq -r .id`).",
)
def run(
    *,
    pipeline: str,
    params: tuple[str, ...],
    lane: str,
    logical_key: str | None,
    max_attempts: int | None,
    retry_backoff: str | None,
    timeout: str | None,
    at: str | None,
    delay: str | None,
    wait: bool,
    from_file: BinaryIO | None,
    fmt: str,
) -> None:
    """Submit an execution of PIPELINE, or the lines of --from-file (trigger_source `cli`)."""
    if from_file is not None:
        given = pipeline or params or logical_key or max_attempts or retry_backoff
        if given or timeout or at or delay or wait or lane != "normal":
            raise click.UsageError("--from-file takes every option from its lines: drop the others")
        sys.exit(0 if _from_file(from_file, fmt) else 1)
    if pipeline is None:
        raise click.UsageError("give PIPELINE, or --from-file")
    if fmt == "json" and wait:
        raise click.UsageError("--format json prints the submitted execution: drop --wait")
    if at is not None and delay is not None:
        raise click.UsageError("give --at or --in, not both")
    backoff = parse_seconds(retry_backoff) if retry_backoff else None
    limit = parse_seconds(timeout) if timeout else None
    run_at = parse_time(at, option="--at") if at else None
    delay_seconds = parse_age(delay) if delay else 0.0
    settings, backend = get_settings(), cli_backend()

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
            backend=backend,
            max_attempts=max_attempts,
            retry_backoff_seconds=backoff,
            timeout_seconds=limit,
            run_at=run_at,
            delay_seconds=delay_seconds,
        )

    execution, created = with_conn(go)
    if fmt == "json":
        response = ExecutionResponse.from_row(execution)
        click.echo(msgspec.json.format(to_json(response)).decode())
        return
    verb = "submitted" if created else "already active"
    when = f", not before {execution.available_at:%Y-%m-%d %H:%M:%S %Z}" if at or delay else ""
    click.echo(f"{verb}: {execution.id} ({execution.pipeline}, {execution.status}{when})")
    if not wait:
        return
    try:
        final = run_async(_follow(db.database_url(settings), execution.id, settings.lease_timeout))
    except KeyboardInterrupt:
        current = with_conn(lambda c: history.get(c, execution.id))
        status = current.status if current else "gone"
        click.echo(
            f"\nstopped waiting: execution {execution.id} is still {status} "
            f"(`spine executions show {execution.id}`; `spine executions cancel {execution.id}`)",
            err=True,
        )
        sys.exit(130)
    sys.exit(0 if final == "completed" else 1)


def _from_file(lines: BinaryIO, fmt: str) -> bool:
    """Submit a JSONL file a thousand lines at a time (bounded memory), each line as one
    item of POST /api/v1/executions/batch; print the invalid lines (every line's outcome
    with --format json) and the counts. False when a line was invalid."""
    settings, backend, registry = get_settings(), cli_backend(), default_registry()
    counts = {"created": 0, "deduplicated": 0, "invalid": 0}

    async def go(conn: db.AsyncConn) -> None:
        number = 0
        for chunk in _chunks(lines, BATCH_LIMIT):
            items = [_line_item(registry, raw) for raw in chunk]
            outcomes = await submit_batch(
                conn, registry, settings, items, trigger_source="cli", backend=backend
            )
            for outcome in outcomes:
                number += 1
                counts[outcome.outcome] += 1
                if fmt == "json":
                    execution = outcome.execution
                    click.echo(
                        msgspec.json.encode(
                            {
                                "line": number,
                                "outcome": outcome.outcome,
                                "execution_id": execution.id if execution else None,
                                "error": outcome.error,
                            }
                        ).decode()
                    )
                elif outcome.error is not None:
                    click.echo(f"line {number}: invalid: {outcome.error}", err=True)

    with_conn(go)
    if fmt == "text":
        click.echo(", ".join(f"{n} {word}" for word, n in counts.items()))
    return counts["invalid"] == 0


def _chunks(lines: BinaryIO, size: int) -> Iterator[list[bytes]]:
    """The file's non-blank lines, `size` at a time."""
    chunk: list[bytes] = []
    for line in lines:
        if line.strip():
            chunk.append(line)
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _line_item(registry: Registry, raw: bytes) -> Submission | InvalidRequest:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return InvalidRequest(f"not a JSON line: {exc}")
    return submission(registry, value)


NO_WORKER_AFTER = 3.0  # seconds pending before saying that no worker runs


async def _follow(url: str, execution_id: str, lease_timeout: float) -> str:
    """Print events as they happen (progress per phase) until the execution ends.

    The result is printed as JSON and an error once; an execution still pending
    after a few seconds with no live worker gets a hint on how to start one.
    """
    last_id = 0
    progress = ProgressPrinter()
    started = time.monotonic()
    hinted = False
    result: object = None
    async with Listener(url, (EXECUTIONS_CHANNEL,), name="spine run --wait") as listener:
        while True:
            conn = await listener.connect()
            # Status first: the end and its event commit together, so once the status is
            # terminal the events read next include the last one.
            current = await history.get(conn, execution_id)
            events = (
                await history.list_events(conn, execution_id, last_id, execution=current)
                if current is not None
                else []
            )
            for event in events:
                last_id = event.id
                if event.event_type == "progress":
                    progress.show(event.payload)
                    continue
                ended = event.event_type in TERMINAL
                progress.end(ok=event.event_type == "completed" if ended else None)
                click.echo(f"{event.timestamp:%H:%M:%S} {event.event_type}")
                if event.payload.get("result") is not None:
                    result = event.payload["result"]
            if current is None or current.status in TERMINAL:
                progress.end(ok=current is not None and current.status == "completed")
                if result is not None:
                    click.echo(msgspec.json.format(to_json(result)).decode())
                if current is not None and current.error:
                    click.echo(f"error: {current.error}", err=True)
                return current.status if current else "missing"
            if (
                not hinted
                and current.status == "pending"
                and time.monotonic() - started >= NO_WORKER_AFTER
                and not await workers.live_workers(conn, lease_timeout)
            ):
                hinted = True
                click.echo(
                    "no worker is running: start one with `spine worker start` (or `spine up`) "
                    "in another terminal; still waiting (Ctrl-C stops waiting, the execution "
                    "stays pending)",
                    err=True,
                )
            # Events carry no NOTIFY of their own; wake on queue activity or every 0.5 s.
            await listener.wait(0.5)
            progress.tick()  # a slow step sends no event: its elapsed time still counts
