"""`spine db`: migrations, status, reset, the URL in use, the embedded server."""

from __future__ import annotations

import click

from app import db, embedded
from app.cli.common import redact
from app.config import get_settings
from app.migrations import apply_pending, status

__all__ = ["db_group"]


@click.group("db")
def db_group() -> None:
    """Database: migrations, status, reset, the URL in use."""


@db_group.command("init")
def db_init() -> None:
    """Apply pending migrations (safe to run again, and concurrently)."""
    with db.connect() as conn:
        applied = apply_pending(conn, on_apply=lambda name: click.echo(f"applied {name}"))
    click.echo(f"{len(applied)} migration(s) applied; database is up to date.")


@db_group.command("status")
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
def db_reset(yes: bool) -> None:
    """Drop every table and data row, then apply all migrations afresh."""
    url = db.database_url()
    if not yes:
        click.confirm(f"Drop ALL data in {redact(url)}?", abort=True)
    with db.connect(url) as conn:
        db.drop_everything(conn)
        applied = apply_pending(conn)
    click.echo(f"database reset; {len(applied)} migration(s) applied.")


@db_group.command("url")
def db_url() -> None:
    """Print the database URL in use (for psql)."""
    click.echo(db.database_url())


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
