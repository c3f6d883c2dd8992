"""How the CLI shows results: tables, JSON (the API's objects), CSV, and progress."""

from __future__ import annotations

import csv
import io
from typing import Any

import click
import msgspec

__all__ = ["FORMAT_OPTION", "draw_progress", "emit"]

# `--format` of every command that prints rows with `emit`.
FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)


def emit(rows: list[msgspec.Struct], fmt: str, empty: str) -> None:
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


def draw_progress(payload: dict[str, Any]) -> None:
    done, total = payload.get("done") or 0, payload.get("total")
    message = payload.get("message") or ""
    if total:
        width = 30
        filled = int(width * min(done / total, 1.0))
        text = f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}% {message}"
    else:
        text = f"{done} {message}"
    click.echo(f"\r{text[:100]:<100}", nl=False, err=True)
