"""`spine`: the one command-line entry point (database, pipelines, workers, API).

Procfile lines and compose `command:` entries call these same commands. Each
command group lives in its own module; a data domain's commands come from its
own package (`app/<domain>/cli.py`) through `app.catalog`, into the existing
`query` and `data` groups. The root group turns every error a user can cause
into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click
import psycopg

from app.catalog import DOMAINS
from app.cli.data import data_group
from app.cli.datasets import backfill_command, backfills_group, datasets_group
from app.cli.db import db_group
from app.cli.executions import executions_group
from app.cli.processes import api, shell, up, worker_group
from app.cli.query import query_group
from app.cli.run import list_pipelines, run
from app.cli.schedules import schedules_group
from app.cli.sources import sources_group
from app.config import ConfigError, get_settings
from app.domains import Catalog
from app.errors import SpineError, first_line
from app.logs import configure_logging
from app.migrations import MigrationError

__all__ = ["build_cli", "main"]


class SpineGroup(click.Group):
    """The root group: a user's mistake is one line on stderr and a non-zero exit.

    Errors the commands raise become click's one-line `Error: ...` (exit 1); a
    usage mistake (unknown option, bad value) is one line too, naming the
    command's --help, instead of click's three-line usage block (exit 2). A
    reader that stops early (`spine executions list | head -1`) ends the
    command quietly with exit 0, for every command.
    """

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        if extra.get("standalone_mode", True) is False:
            return super().main(args, prog_name, **extra)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the reader left (`| head -1`): not an error
            _quiet_stdout()
            sys.exit(0)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except SpineError as exc:
            raise click.ClickException(str(exc)) from None
        except MigrationError as exc:
            raise click.ClickException(f"migrations: {exc}") from None
        except psycopg.OperationalError as exc:
            raise click.ClickException(f"database unavailable: {first_line(exc)}") from None
        except psycopg.errors.UndefinedTable as exc:  # an external database nobody migrated
            raise click.ClickException(
                f"database is not migrated ({first_line(exc)}): run `spine db init`"
            ) from None
        except psycopg.ProgrammingError as exc:  # e.g. DATABASE_URL is not a connection string
            raise click.ClickException(f"database: {first_line(exc)}") from None
        except OSError as exc:  # a file or directory that is missing or not writable
            raise click.ClickException(first_line(exc)) from None
        except UnicodeEncodeError as exc:  # the shell passed bytes that are not UTF-8
            raise click.ClickException(_not_text(exc)) from None


def _not_text(exc: UnicodeEncodeError) -> str:
    """An argument with bytes that are not UTF-8 reaches Python as lone surrogates
    (PEP 383), which neither PostgreSQL nor a JSON document can hold."""
    if "surrogate" in exc.reason:
        return f"an argument is not UTF-8 text: {exc.object.encode('utf-8', 'surrogateescape')!r}"
    return f"text that cannot be written: {first_line(exc)}"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def build_cli(catalog: Catalog) -> click.Group:
    """The `spine` group: the core commands, and each domain's in the group it names."""

    @click.group(cls=SpineGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="market-spine")
    def main() -> None:
        """Market Spine: OTC trade pipelines on a PostgreSQL job queue."""
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)

    groups = {"query": query_group(), "data": data_group()}
    for domain in catalog:
        for group, commands in domain.commands().items():
            for command in commands:
                (main if group == "spine" else groups[group]).add_command(command)
    for command in (
        db_group,
        up,
        list_pipelines,
        run,
        executions_group,
        schedules_group,
        datasets_group,
        backfill_command,
        backfills_group,
        sources_group,
        groups["data"],
        groups["query"],
        worker_group,
        api,
        shell,
    ):
        main.add_command(command)
    return main


main = build_cli(DOMAINS)
