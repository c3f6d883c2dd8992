"""`spine`: the one command-line entry point (database, pipelines, workers, API).

Procfile lines and compose `command:` entries call these same commands.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import psycopg

from app import db, embedded
from app.config import ConfigError, get_settings
from app.logs import configure_logging
from app.migrations import MigrationError, apply_pending, status

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into one clear line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except MigrationError as exc:
            raise click.ClickException(f"migrations: {exc}") from None
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"database unavailable: {first}") from None

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
    env = {**os.environ, "DATABASE_URL": url}
    cmd = [sys.executable, "-m", "honcho", "start", "-f", procfile, "-p", str(settings.api_port)]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and arguments
    # honcho gets Ctrl-C from the terminal itself; forward SIGTERM so `kill` works the same.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    code = proc.wait()
    if started_db:
        embedded.stop(settings.state_dir)
        click.echo("embedded PostgreSQL stopped")
    sys.exit(code)


if __name__ == "__main__":
    main()
