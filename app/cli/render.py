"""How the CLI shows results: tables, JSON (the API's objects), CSV, and progress.

JSON is encoded exactly as the API encodes it (`schemas.to_json`: Decimals as
exact numbers). Tables right-align numbers and print Decimals with their own
digits, never through a float. Progress is a `\\r` bar on a terminal and plain
lines otherwise (logs, pipes, CI).
"""

from __future__ import annotations

import csv
import io
import sys
import time
from decimal import Decimal
from typing import Any

import click
import msgspec

from app.web.fields import to_json

__all__ = ["FORMAT_OPTION", "ProgressPrinter", "emit"]

# `--format` of every command that prints rows with `emit`.
FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="json: the API's objects, money exact.",
)


def emit(
    rows: list[Any],
    fmt: str,
    empty: str,
    *,
    kind: type[msgspec.Struct],
    more: str | None = None,
) -> None:
    """Print API-shaped rows (`kind` Structs) as a table, JSON or CSV.

    `more`, when given, is the hint for a cut-off result (on stderr, so the
    data on stdout stays parseable).
    """
    columns = [f.encode_name for f in msgspec.structs.fields(kind)]
    if fmt == "json":
        click.echo(msgspec.json.format(to_json(rows)).decode())
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)  # even for no rows: a CSV consumer needs the header
        for row in rows:
            writer.writerow([_text(v) for v in msgspec.structs.astuple(row)])
        click.echo(out.getvalue(), nl=False)
    elif not rows:
        click.echo(empty, err=True)
    else:
        _table(columns, [msgspec.structs.astuple(r) for r in rows])
    if more:
        click.echo(more, err=True)


def _table(columns: list[str], records: list[tuple[Any, ...]]) -> None:
    texts = [[_text(v) for v in r] for r in records]
    numeric = [
        all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in records)
        and not all(r[i] is None for r in records)
        for i in range(len(columns))
    ]
    widths = [max(len(c), *(len(t[i]) for t in texts)) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    click.echo(line(columns))
    for t in texts:
        click.echo(line(t))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return format(value, "f")  # every digit, no exponent, no float
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


class ProgressPrinter:
    """Progress events of one execution: a bar on a terminal, plain lines elsewhere.

    Each phase (its `phase` field, else its message) shows its own progress and
    elapsed time. Plain lines are written when the step (message) changes and
    otherwise at most every `every` seconds.
    """

    def __init__(self, tty: bool | None = None, every: float = 5.0) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every
        self.phase: str | None = None
        self.message: str | None = None
        self.phase_started = 0.0
        self.last_line = 0.0
        self.bar_shown = False

    def show(self, payload: dict[str, Any]) -> None:
        phase = str(payload.get("phase") or payload.get("message") or "working")
        message = str(payload.get("message") or "")
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.phase_started = phase, now
            if self.bar_shown:
                click.echo(err=True)
                self.bar_shown = False
        text = f"{phase}: {self._text(payload, now - self.phase_started)}"
        if self.tty:
            click.echo(f"\r{text[:100]:<100}", nl=False, err=True)
            self.bar_shown = True
        elif message != self.message or now - self.last_line >= self.every:
            click.echo(text, err=True)  # a new step, or a while since the last line
            self.last_line = now
        self.message = message

    def end(self) -> None:
        """Before any other line: finish the bar's line."""
        if self.bar_shown:
            click.echo(err=True)
            self.bar_shown = False

    @staticmethod
    def _text(payload: dict[str, Any], elapsed: float) -> str:
        done, total = payload.get("done") or 0, payload.get("total")
        message = payload.get("message") or ""
        clock = f"{elapsed:5.1f}s"
        if total:
            share = min(done / total, 1.0)
            bar = f"[{'#' * int(30 * share)}{'.' * (30 - int(30 * share))}] {100 * share:5.1f}%"
            return f"{bar} {clock} {message}"
        return f"{clock} {message}".rstrip()
