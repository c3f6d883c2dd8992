"""`spine`: the one command-line entry point (database, pipelines, workers, API).

Procfile lines and compose `command:` entries call these same commands. Each
command group lives in its own module; the root group below turns every error
a user can cause into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

from typing import Any

import click
import psycopg

from app.cli.data import data_group
from app.cli.db import db_group
from app.cli.executions import executions_group
from app.cli.processes import api, shell, up, worker_group
from app.cli.query import query_group
from app.cli.run import list_pipelines, run
from app.config import ConfigError, get_settings
from app.errors import SpineError, first_line
from app.logs import configure_logging
from app.migrations import MigrationError

__all__ = ["main"]


class SpineGroup(click.Group):
    """The root group: a user's mistake is one line on stderr and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except SpineError as exc:
            raise click.ClickException(str(exc)) from None
        except MigrationError as exc:
            raise click.ClickException(f"migrations: {exc}") from None
        except psycopg.OperationalError as exc:
            raise click.ClickException(f"database unavailable: {first_line(exc)}") from None
        except psycopg.ProgrammingError as exc:  # e.g. DATABASE_URL is not a connection string
            raise click.ClickException(f"database: {first_line(exc)}") from None
        except OSError as exc:  # a file or directory that is missing or not writable
            raise click.ClickException(first_line(exc)) from None


@click.group(cls=SpineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="market-spine")
def main() -> None:
    """Market Spine: OTC trade pipelines on a PostgreSQL job queue."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


for command in (
    db_group,
    up,
    list_pipelines,
    run,
    executions_group,
    data_group,
    query_group,
    worker_group,
    api,
    shell,
):
    main.add_command(command)
