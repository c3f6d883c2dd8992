"""`spine db`: migrations, status, reset, the URL in use, the embedded server (start/stop)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import msgspec

from app import db, embedded
from app.catalog import sync_datasets
from app.cli.common import redact, with_conn
from app.cli.render import emit
from app.config import Settings, get_settings
from app.migrations import apply_pending, status

__all__ = ["db_group"]


@click.group("db")
def db_group() -> None:
    """Database: migrations, status, reset, the URL in use."""


@db_group.command("init")
def db_init() -> None:
    """Apply pending migrations (safe to run again, and concurrently)."""
    settings = get_settings()
    with db.connect(db.database_url(settings)) as conn:
        applied = list(db.migrated_on_start(settings))
        for name in applied:
            click.echo(f"applied {name}")
        applied += apply_pending(conn, on_apply=lambda name: click.echo(f"applied {name}"))
    click.echo(f"{len(applied)} migration(s) applied; database is up to date.")
    for name in with_conn(lambda conn: sync_datasets(conn, settings)):
        click.echo(f"created schedule {name} (paused)")


class MigrationLine(msgspec.Struct):
    """A row of `spine db status`' table."""

    state: str
    migration: str
    applied_at: str


@db_group.command("status")
def db_status() -> None:
    """The embedded server (running? started by whom?) and the migrations: applied and pending."""
    settings = get_settings()
    if not settings.database_url:
        click.echo(_embedded_state(settings.state_dir))
    with db.connect(db.database_url(settings)) as conn:
        states = status(conn)
    lines = [
        MigrationLine(
            s.state, s.name, s.applied_at.isoformat(timespec="seconds") if s.applied_at else ""
        )
        for s in states
    ]
    emit(lines, "table", "no migrations", kind=MigrationLine)
    pending = sum(s.state == "pending" for s in states)
    click.echo(f"{len(states) - pending} applied, {pending} pending")
    click.echo(_backend_line(settings))


def _backend_line(settings: Settings) -> str:
    """The backend in use; for Celery, whether its broker answers (an outage is reported,
    not an error: submits still succeed through the outbox)."""
    if settings.backend != "celery":
        return "backend: local (the worker pool)"
    try:
        from app.engine.backends.celery_app import broker_reachable, make_app
    except ImportError:
        return "backend: celery, but the celery extra is not installed"
    problem = broker_reachable(make_app(settings))
    state = "reachable" if problem is None else f"unreachable ({problem})"
    return f"backend: celery, broker {_without_password(settings.celery_broker_url)} {state}"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@db_group.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_reset(yes: bool) -> None:
    """Drop every table and data row, then apply all migrations afresh."""
    url = db.database_url(get_settings())
    if not yes:
        click.confirm(f"Drop ALL data in {redact(url)}?", abort=True)
    with db.connect(url) as conn:
        db.drop_everything(conn)
        applied = apply_pending(conn)
    click.echo(f"database reset; {len(applied)} migration(s) applied.")


@db_group.command("url")
def db_url() -> None:
    """Print the database URL in use (for psql; `spine db start` keeps the embedded one up)."""
    settings = get_settings()
    click.echo(db.database_url(settings))
    if not settings.database_url and not (embedded.owner(settings.state_dir) or {}).get("keep"):
        click.echo(
            "note: the embedded server stops when this command ends; "
            "run `spine db start` first to use this URL",
            err=True,
        )


@db_group.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL and keep it running until `spine db stop`."""
    settings = get_settings()
    if settings.database_url:
        click.echo("DATABASE_URL is set: there is no embedded server to start.")
        return
    was_running = embedded.is_running(settings.state_dir)
    url = embedded.embedded_url(settings.state_dir, announce=True)
    with db.connect(url) as conn:
        applied = apply_pending(conn)
    state = "was already running; kept" if was_running else "started"
    click.echo(
        f"embedded PostgreSQL {state} until `spine db stop` "
        f"({len(applied)} migration(s) applied): {url}"
    )


def _embedded_state(state_dir: Path) -> str:
    where = f"embedded PostgreSQL in {embedded.pgdata_dir(state_dir)}"
    if not embedded.is_running(state_dir):
        return f"{where}: not running (this command starts it and stops it when done)"
    info = embedded.owner(state_dir) or {}
    who = (
        f"started by `{info.get('command', '?')}` (pid {info.get('pid', '?')}) "
        f"at {info.get('started_at', '?')}"
        if info
        else "started outside spine"
    )
    lasts = (
        "kept until `spine db stop`"
        if info.get("keep")
        else f"stops when its last user exits (users: pids {embedded.clients(state_dir)})"
    )
    return f"{where}: running, {who}; {lasts}"


@db_group.command("stop")
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
