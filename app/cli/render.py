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
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import click
import msgspec

from app.web.fields import to_json

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FORMAT_OPTION",
    "LimitOption",
    "ProgressPrinter",
    "emit",
    "emit_one",
    "limit_option",
    "one_format_option",
]

# `--format` of every command that prints rows with `emit`.
FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="json: the API's objects, money exact.",
)


class LimitOption(click.Option):
    """`--limit` of a list command: the command fetches `limit + 1` rows and
    hands them to `emit(..., limit=limit)`, which says on stderr when there were more.

    Every `--limit` in the CLI is one of these (a unit test walks the commands),
    so a new domain's list command gets the same cut-off hint.
    """


def limit_option(default: int, most: int = 100_000) -> Callable[[F], F]:
    """The shared `--limit` option (see `LimitOption`)."""
    return click.option(
        "--limit",
        cls=LimitOption,
        type=click.IntRange(1, most),
        default=default,
        show_default=True,
        help="At most this many rows; stderr says when more matched.",
    )


def one_format_option(default: str = "text") -> Callable[[F], F]:
    """`--format` of a command that prints one object: json is the API's object."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice([default, "json"]),
        default=default,
        show_default=True,
        help="json: the API's object.",
    )


def cut_hint(limit: int) -> str:
    return f"(more rows: showing the first {limit}; use --limit to see more)"


def emit(
    rows: list[Any],
    fmt: str,
    empty: str,
    *,
    kind: type[msgspec.Struct],
    limit: int | None = None,
    table: Callable[[Any], msgspec.Struct] | None = None,
) -> None:
    """Print API-shaped rows (`kind` Structs) as a table (with a header row), JSON or CSV.

    With `limit`, `rows` is what a `limit + 1` query returned: only `limit` are
    printed, and when there were more a hint goes to stderr (so the data on
    stdout stays parseable). `table`, when given, turns each row into the
    (shorter) Struct the table shows; JSON and CSV stay the API's objects.
    """
    more = None
    if limit is not None and len(rows) > limit:
        rows, more = rows[:limit], cut_hint(limit)
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
        shown = [table(r) for r in rows] if table else rows
        names = [f.encode_name for f in msgspec.structs.fields(type(shown[0]))]
        _table(names, [msgspec.structs.astuple(r) for r in shown])
    if more:
        click.echo(more, err=True)


def emit_one(row: msgspec.Struct | dict[str, Any], fmt: str, text: str) -> None:
    """One object: `text` for people, or (`--format json`) the API's object."""
    if fmt == "json":
        click.echo(msgspec.json.format(to_json(row)).decode())
    else:
        click.echo(text)


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
    if isinstance(value, dict | list):
        return to_json(value).decode()  # params and payloads as JSON, not Python's repr
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


class ProgressPrinter:
    """Progress events of one execution: a bar on a terminal, plain lines elsewhere.

    Each phase (its `phase` field, else its message) shows its own progress and
    elapsed time. On a terminal the bar is redrawn by `tick()` between events
    too, so the elapsed time counts while a step reports nothing; a phase's bar
    ends full when the next phase starts or the run completes, and is cleared
    when the run ends otherwise. Plain lines are written when the step
    (message) changes and otherwise at most every `every` seconds, and each
    phase that completes ends with a `done in N.Ns` line.
    """

    WIDTH = 100

    def __init__(
        self,
        tty: bool | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self.phase: str | None = None
        self.message: str | None = None
        self.payload: dict[str, Any] = {}
        self.phase_started = 0.0
        self.last_line = 0.0
        self.bar_shown = False
        self.phase_open = False  # plain lines: a line of this phase was written

    def show(self, payload: dict[str, Any]) -> None:
        phase = str(payload.get("phase") or payload.get("message") or "working")
        message = str(payload.get("message") or "")
        now = self.clock()
        if phase != self.phase:
            self.end(ok=True)  # the phase before is over: its bar ends full
            self.phase, self.phase_started = phase, now
        self.payload = payload
        if self.tty:
            self._draw(now)
        elif message != self.message or now - self.last_line >= self.every:
            click.echo(self._line(now), err=True)  # a new step, or a while since the last
            self.last_line = now
            self.phase_open = True
        self.message = message

    def tick(self) -> None:
        """Redraw the bar with the time now (between events: the elapsed column counts)."""
        if self.tty and self.bar_shown:
            self._draw(self.clock())

    def end(self, ok: bool | None = None) -> None:
        """Before any other line: finish the bar's line.

        `ok=True` (the phase or the run completed) draws it full first; `ok=False`
        (the run failed or was cancelled) clears it; None leaves it as it is.
        """
        if not self.tty:
            if ok and self.phase_open:  # a log says where the time went, phase by phase
                elapsed = self.clock() - self.phase_started
                click.echo(f"{self.phase}: done in {elapsed:.1f}s", err=True)
            self.phase_open = self.phase_open and ok is None
            return
        if not self.bar_shown:
            return
        if ok is False:
            click.echo(f"\r{'':<{self.WIDTH}}\r", nl=False, err=True)
        else:
            if ok:
                total = self.payload.get("total")
                self.payload = {**self.payload, "done": total} if total else self.payload
                self._draw(self.clock())
            click.echo(err=True)
        self.bar_shown = False

    def _draw(self, now: float) -> None:
        click.echo(f"\r{self._line(now)[: self.WIDTH]:<{self.WIDTH}}", nl=False, err=True)
        self.bar_shown = True

    def _line(self, now: float) -> str:
        return f"{self.phase}: {self._text(self.payload, now - self.phase_started)}"

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
