"""`spine`: the one command-line entry point (database, pipelines, workers, API).

Procfile lines and compose `command:` entries call these same commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
import psycopg

from app import db, embedded
from app.config import ConfigError, get_settings
from app.errors import SpineError, first_line
from app.logs import configure_logging
from app.migrations import MigrationError, apply_pending, status
from app.registry import get_registry
from app.repositories import executions as repo
from app.repositories.executions import Execution

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into one clear line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except SpineError as exc:
            raise click.ClickException(str(exc)) from None
        except MigrationError as exc:
            raise click.ClickException(f"migrations: {exc}") from None
        except psycopg.OperationalError as exc:
            raise click.ClickException(f"database unavailable: {first_line(exc)}") from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="market-spine")
def main() -> None:
    """Market Spine: OTC trade pipelines on a PostgreSQL job queue."""
    try:
        configure_logging(get_settings().log_level)
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


# --------------------------------------------------------------------------- db


@main.group("db")
def db_group() -> None:
    """Database: migrations, status, reset, the URL in use."""


@db_group.command("init")
@friendly_errors
def db_init() -> None:
    """Apply pending migrations (safe to run again, and concurrently)."""
    with db.connect() as conn:
        applied = apply_pending(conn, on_apply=lambda name: click.echo(f"applied {name}"))
    click.echo(f"{len(applied)} migration(s) applied; database is up to date.")


@db_group.command("status")
@friendly_errors
def db_status() -> None:
    """List migrations: applied (with when) and pending."""
    with db.connect() as conn:
        states = status(conn)
    for s in states:
        when = s.applied_at.isoformat(timespec="seconds") if s.applied_at else ""
        click.echo(f"{s.state:<8} {s.name:<40} {when}".rstrip())
    pending = sum(s.state == "pending" for s in states)
    click.echo(f"{len(states) - pending} applied, {pending} pending")


@db_group.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def db_reset(yes: bool) -> None:
    """Drop every table and data row, then apply all migrations afresh."""
    url = db.database_url()
    if not yes:
        click.confirm(f"Drop ALL data in {_redact(url)}?", abort=True)
    with db.connect(url) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        applied = apply_pending(conn)
    click.echo(f"database reset; {len(applied)} migration(s) applied.")


@db_group.command("url")
@friendly_errors
def db_url() -> None:
    """Print the database URL in use (for psql)."""
    click.echo(db.database_url())


@db_group.command("stop")
@friendly_errors
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (no effect with DATABASE_URL)."""
    settings = get_settings()
    if settings.database_url:
        click.echo("DATABASE_URL is set: there is no embedded server to stop.")
        return
    stopped = embedded.stop(settings.state_dir)
    click.echo(
        "embedded PostgreSQL stopped." if stopped else "embedded PostgreSQL was not running."
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    return (
        psycopg.conninfo.make_conninfo(url, password="***")  # noqa: S106 - a mask, not a secret
        if "password" in (psycopg.conninfo.conninfo_to_dict(url))
        else url
    )


# --------------------------------------------------------------------------- up


@main.command("up")
@click.option("--procfile", default="Procfile", show_default=True, type=click.Path(dir_okay=False))
@friendly_errors
def up(procfile: str) -> None:
    """Start everything: database (embedded unless DATABASE_URL), migrations, API and workers.

    Runs `honcho start` on the Procfile; Ctrl-C stops every process, and the
    embedded database too when this command started it.
    """
    settings = get_settings()
    if not Path(procfile).is_file():
        raise click.ClickException(f"{procfile} not found: run `spine up` from the project root")
    started_db = not settings.database_url and not embedded.is_running(settings.state_dir)
    url = db.database_url(settings)
    with db.connect(url) as conn:
        applied = apply_pending(conn)
    click.echo(f"database ready ({len(applied)} migration(s) applied)")
    base = f"http://{settings.api_host}:{settings.api_port}"
    click.echo(f"API:  {base}/api/v1   docs: {base}/schema   (Ctrl-C stops everything)")
    # Procfile lines run through sh: put this interpreter's `spine` first on PATH. Each
    # process reads `.env` itself (environment first), so honcho is given an empty one.
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SPINE_API_HOST": settings.api_host,  # the Procfile's web line reads it
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = [sys.executable, "-m", "honcho", "start", "-f", procfile, "-e", os.devnull]
    cmd += ["-p", str(settings.api_port)]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and arguments
    stop_requested = False

    def forward(signum: int, _frame: object) -> None:
        # honcho may have had Ctrl-C from the terminal already; a repeat is harmless to it.
        nonlocal stop_requested
        stop_requested = True
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = proc.wait()
    if started_db:
        embedded.stop(settings.state_dir)
        click.echo("embedded PostgreSQL stopped")
    # honcho answers a signal with 128+signal; a stop we were asked for is a clean exit.
    sys.exit(0 if stop_requested and code in _HONCHO_SIGNAL_CODES else code)


_HONCHO_SIGNAL_CODES = {0, 128 + signal.SIGINT, 128 + signal.SIGTERM}


# --------------------------------------------------------------------------- pipelines


def _run_async(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_conn(func: Callable[[db.AsyncConn], Awaitable[T]]) -> T:
    async with await db.aconnect() as conn:
        return await func(conn)


@main.command("list")
def list_pipelines() -> None:
    """List registered pipelines with their params (type, default)."""
    for item in get_registry():
        click.echo(f"{click.style(item.name, bold=True)}  {item.description}")
        for name, kind, default in item.param_docs():
            click.echo(f"    {name}: {kind} = {default}")


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`-p key=value`: values are JSON when they parse as JSON, else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@main.command("run")
@click.argument("pipeline")
@click.option("-p", "--param", "params", multiple=True, help="key=value (repeatable).")
@click.option(
    "--lane", type=click.Choice(["normal", "backfill"]), default="normal", show_default=True
)
@click.option("--logical-key", default=None, help="Deduplicate against active executions.")
@click.option("--wait", is_flag=True, help="Follow the execution until it ends.")
@friendly_errors
def run(
    pipeline: str, params: tuple[str, ...], lane: str, logical_key: str | None, wait: bool
) -> None:
    """Submit an execution of PIPELINE (trigger_source `cli`)."""
    from app.dispatcher import submit

    async def go(conn: db.AsyncConn) -> tuple[Execution, bool]:
        return await submit(
            conn,
            pipeline,
            _parse_params(params),
            lane=lane,
            logical_key=logical_key,
            trigger_source="cli",
        )

    execution, created = _run_async(_with_conn(go))
    verb = "submitted" if created else "already active"
    click.echo(f"{verb}: {execution.id} ({execution.pipeline}, {execution.status})")
    if wait:
        final = _run_async(_follow(execution.id))
        sys.exit(0 if final == "completed" else 1)


async def _follow(execution_id: str) -> str:
    """Print events as they happen (progress as a bar) until the execution ends."""
    last_id = 0
    bar_shown = False
    async with await db.aconnect() as conn:
        await conn.execute(f"LISTEN {repo.EXECUTIONS_CHANNEL}")
        while True:
            # Status first: the end and its event commit together, so once the status is
            # terminal the events read next include the last one.
            current = await repo.get(conn, execution_id)
            for event in await repo.list_events(conn, execution_id, after_id=last_id):
                last_id = event.id
                if event.event_type == "progress":
                    _draw_progress(event.payload)
                    bar_shown = True
                    continue
                if bar_shown:
                    click.echo(err=True)
                    bar_shown = False
                detail = event.payload.get("error") or event.payload.get("result") or ""
                click.echo(f"{event.timestamp:%H:%M:%S} {event.event_type} {detail}".rstrip())
            if current is None or current.status in repo.TERMINAL:
                if current and current.error:
                    click.echo(f"error: {current.error}", err=True)
                return current.status if current else "missing"
            # Events carry no NOTIFY of their own; wake on queue activity or every 0.5 s.
            with contextlib.suppress(TimeoutError):
                async for _ in conn.notifies(timeout=0.5, stop_after=1):
                    pass


def _draw_progress(payload: dict[str, Any]) -> None:
    done, total = payload.get("done") or 0, payload.get("total")
    message = payload.get("message") or ""
    if total:
        width = 30
        filled = int(width * min(done / total, 1.0))
        text = f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}% {message}"
    else:
        text = f"{done} {message}"
    click.echo(f"\r{text[:100]:<100}", nl=False, err=True)


@main.group("executions")
def executions_group() -> None:
    """Inspect and cancel executions."""


@executions_group.command("list")
@click.option("--status", default=None)
@click.option("--pipeline", default=None)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@friendly_errors
def executions_list(status: str | None, pipeline: str | None, limit: int) -> None:
    """Newest executions first."""
    rows = _run_async(
        _with_conn(lambda c: repo.list_page(c, limit=limit, status=status, pipeline=pipeline))
    )
    for e in rows:
        click.echo(f"{e.id}  {e.status:<9}  {e.pipeline:<20} {e.created_at:%Y-%m-%d %H:%M:%S}")
    if not rows:
        click.echo("no executions")


async def _get_or_fail(conn: db.AsyncConn, execution_id: str) -> Execution:
    execution = await repo.get(conn, execution_id)
    if execution is None:
        raise click.ClickException(f"no execution {execution_id}")
    return execution


@executions_group.command("show")
@click.argument("execution_id")
@friendly_errors
def executions_show(execution_id: str) -> None:
    """One execution, as JSON."""
    execution = _run_async(_with_conn(lambda c: _get_or_fail(c, execution_id)))
    click.echo(msgspec.json.format(msgspec.json.encode(execution)).decode())


@executions_group.command("events")
@click.argument("execution_id")
@friendly_errors
def executions_events(execution_id: str) -> None:
    """The execution's events in order."""

    async def go(conn: db.AsyncConn) -> list[repo.Event]:
        await _get_or_fail(conn, execution_id)
        return await repo.list_events(conn, execution_id)

    for event in _run_async(_with_conn(go)):
        payload = msgspec.json.encode(event.payload).decode()
        click.echo(
            f"{event.timestamp.isoformat(timespec='milliseconds')} {event.event_type:<16} {payload}"
        )


@executions_group.command("cancel")
@click.argument("execution_id")
@friendly_errors
def executions_cancel(execution_id: str) -> None:
    """Cancel: a pending execution at once, a running one at its next check."""
    execution, outcome = _run_async(_with_conn(lambda c: repo.request_cancel(c, execution_id)))
    if outcome == "missing":
        raise click.ClickException(f"no execution {execution_id}")
    if outcome == "finished":
        raise click.ClickException(f"execution {execution_id} already ended ({execution.status})")
    click.echo(f"{execution_id}: {outcome.replace('_', ' ')} (status {execution.status})")


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_age(value: str) -> float:
    match = _AGE.match(value)
    if not match:
        raise click.BadParameter(f"{value!r}: use a number and a unit, like 30d, 12h or 90m")
    return float(match.group(1)) * _AGE_SECONDS[match.group(2)]


@executions_group.command("prune")
@click.option("--older-than", "older_than", required=True, help="Age, like 30d, 12h or 90m.")
@friendly_errors
def executions_prune(older_than: str) -> None:
    """Delete finished executions (and their events) and gone workers older than the given age."""
    seconds = _parse_age(older_than)
    deleted = _run_async(_with_conn(lambda c: repo.prune_finished(c, older_than_seconds=seconds)))
    lease = get_settings().lease_timeout
    workers = _run_async(
        _with_conn(lambda c: repo.prune_workers(c, older_than_seconds=seconds, lease_timeout=lease))
    )
    click.echo(
        f"pruned {deleted} finished execution(s) and {workers} gone worker(s)"
        f" older than {older_than}"
    )


# --------------------------------------------------------------------------- OTC data


@main.group("data")
def data_group() -> None:
    """Input files."""


@data_group.command("generate")
@click.option("--rows", type=click.IntRange(0), default=1_000_000, show_default=True)
@click.option("--symbols", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same file.")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def data_generate(rows: int, symbols: int, days: int, seed: int, out: Path) -> None:
    """Write a synthetic trades CSV (random-walk prices) to OUT, for benchmarks."""
    import time

    from app.services.otc_generator import generate

    started = time.perf_counter()
    written = generate(out, rows, symbols, days, seed, market_tz=get_settings().market_tz)
    took = time.perf_counter() - started
    size_mb = out.stat().st_size / 1e6
    click.echo(f"wrote {written:,} trades ({size_mb:.1f} MB) to {out} in {took:.1f}s")


@main.group("query")
def query_group() -> None:
    """Read OTC results."""


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


# Options the query commands share.
_START_OPTION = click.option(
    "--start", "--start-date", "start", default=None, help="YYYY-MM-DD (inclusive)."
)
_END_OPTION = click.option(
    "--end", "--end-date", "end", default=None, help="YYYY-MM-DD (inclusive)."
)
_FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)


def _emit(rows: list[msgspec.Struct], fmt: str, empty: str) -> None:
    """Print API-shaped rows as a table, JSON (the API's objects) or CSV."""
    if fmt == "json":
        click.echo(msgspec.json.format(msgspec.json.encode(rows)).decode())
        return
    if not rows:
        click.echo(empty, err=True)
        return
    records = [msgspec.to_builtins(r) for r in rows]
    columns = list(records[0])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        click.echo(out.getvalue(), nl=False)
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in records)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in records:
        click.echo("  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip())


@query_group.command("metrics")
@click.option("--symbol", default=None)
@_START_OPTION
@_END_OPTION
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@_FORMAT_OPTION
@friendly_errors
def query_metrics(
    symbol: str | None, start: str | None, end: str | None, limit: int, fmt: str
) -> None:
    """Daily metrics per symbol and trade date (json: the API's objects)."""
    from app.api.schemas import DailyMetricResponse
    from app.repositories import otc

    rows = _run_async(
        _with_conn(
            lambda c: otc.daily_metrics(
                c,
                symbol=symbol.upper() if symbol else None,
                start_date=_date(start),
                end_date=_date(end),
                limit=limit,
            )
        )
    )
    _emit([DailyMetricResponse.from_row(r) for r in rows], fmt, "no metrics (has otc_ingest run?)")


@query_group.command("trades")
@click.option("--symbol", required=True)
@_START_OPTION
@_END_OPTION
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@_FORMAT_OPTION
@friendly_errors
def query_trades(symbol: str, start: str | None, end: str | None, limit: int, fmt: str) -> None:
    """One symbol's normalized trades, oldest first (json: the API's objects)."""
    from app.api.schemas import TradeResponse
    from app.repositories import otc

    rows = _run_async(
        _with_conn(
            lambda c: otc.trades(
                c, symbol.upper(), start_date=_date(start), end_date=_date(end), limit=limit
            )
        )
    )
    _emit([TradeResponse.from_row(r) for r in rows], fmt, f"no trades for {symbol.upper()}")


# --------------------------------------------------------------------------- processes


@main.group("worker")
def worker_group() -> None:
    """The worker pool."""


@worker_group.command("start")
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default SPINE_MAX_CONCURRENT).",
)
@friendly_errors
def worker_start(max_concurrent: int | None) -> None:
    """Run the worker pool until SIGTERM/SIGINT (twice: at once)."""
    from worker.pool import Supervisor

    settings = get_settings()
    url = db.database_url(settings)  # resolves (or starts) the embedded server; opens no connection
    sys.exit(Supervisor(settings, url, max_concurrent).run())


@main.command("api")
@click.option("--host", default=None, help="Default SPINE_API_HOST.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default SPINE_API_PORT.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Default SPINE_API_WORKERS."
)
@friendly_errors
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the REST API with uvicorn."""
    import uvicorn

    settings = get_settings()
    db.database_url(settings)  # fail fast (and start the embedded server) before serving
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        proxy_headers=True,
    )


@main.command("shell")
def shell() -> None:
    """An interactive Python shell with settings, db, registry, dispatcher and repositories."""
    import code

    from app import dispatcher
    from app.repositories import executions

    namespace: dict[str, Any] = {
        "settings": get_settings(),
        "db": db,
        "registry": get_registry(),
        "dispatcher": dispatcher,
        "submit": dispatcher.submit,
        "executions": executions,
        "asyncio": asyncio,
    }
    try:
        from app.repositories import otc

        namespace["otc"] = otc
    except ImportError:  # pragma: no cover - the OTC domain is always installed
        pass
    banner = (
        "Market Spine shell. Preloaded: " + ", ".join(sorted(namespace)) + "\n"
        "e.g. (IPython) conn = await db.aconnect(); await submit(conn, 'noop')"
    )
    try:
        from IPython import start_ipython

        click.echo(banner)
        start_ipython(argv=["--no-banner", "--autoawait=asyncio"], user_ns=namespace)
    except ImportError:
        namespace["__name__"] = "__console__"
        code.interact(banner=banner + "\n(use asyncio.run(...) for coroutines)", local=namespace)


if __name__ == "__main__":
    main()
