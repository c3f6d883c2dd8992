"""How the CLI prints: progress per phase (bar or plain lines), tables, CSV, exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import click
import msgspec
import pytest

from app.cli import main
from app.cli.render import LimitOption, ProgressPrinter, emit


def test_plain_progress_is_one_line_per_step_and_no_carriage_returns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = ProgressPrinter(tty=False, every=3600)
    for done in range(0, 101, 10):
        printer.show({"phase": "copy", "done": done, "total": 100, "message": "copying f.csv"})
    printer.show({"phase": "normalize", "done": 1, "total": 4, "message": "checking lines"})
    printer.show({"phase": "normalize", "done": 2, "total": 4, "message": "inserting trades"})
    printer.show({"phase": "metrics", "done": 0, "total": 1, "message": "recomputing"})
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "copy",
        "copy",
        "normalize",
        "normalize",
        "normalize",
        "metrics",
    ]
    assert "s copying f.csv" in lines[0] and "25.0%" in lines[2]
    assert lines[1].startswith("copy: done in ") and lines[4].startswith("normalize: done in ")
    printer.end(ok=True)  # the run completed: its last phase too
    assert capsys.readouterr().err.startswith("metrics: done in ")
    printer.end(ok=True)  # said once
    assert capsys.readouterr().err == ""


def test_terminal_progress_is_a_bar_redrawn_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(tty=True)
    printer.show({"phase": "copy", "done": 50, "total": 100, "message": "copying"})
    printer.show({"phase": "copy", "done": 100, "total": 100, "message": "copying"})
    printer.end()
    err = capsys.readouterr().err
    assert err.count("\r") == 2 and err.endswith("\n")
    assert "[###############...............]  50.0%" in err


class Row(msgspec.Struct):
    symbol: str
    trade_count: int
    total_notional: Decimal


def test_tables_right_align_numbers_and_keep_every_digit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [Row("ACME", 7, Decimal("44408")), Row("B", 1234, Decimal("12826574092641.901999"))]
    emit(rows, "table", "none", kind=Row)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "symbol  trade_count         total_notional"
    assert lines[1] == "ACME              7                  44408"
    assert lines[2] == "B              1234  12826574092641.901999"


def test_csv_has_its_header_even_when_empty_and_json_is_exact(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit([], "csv", "none", kind=Row)
    assert capsys.readouterr().out == "symbol,trade_count,total_notional\n"
    rows = [Row("A", 1, Decimal("1.1")), Row("B", 2, Decimal("2"))]  # a `limit + 1` query's
    emit(rows, "json", "none", kind=Row, limit=1)
    captured = capsys.readouterr()
    assert '"total_notional": 1.1' in captured.out and '"B"' not in captured.out
    assert captured.err == "(more rows: showing the first 1; use --limit to see more)\n"
    emit(rows, "json", "none", kind=Row, limit=2)
    assert capsys.readouterr().err == ""


def test_csv_writes_params_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    class WithParams(msgspec.Struct):
        name: str
        params: dict[str, object]

    emit([WithParams("a", {"seconds": 1, "tags": ["x"]})], "csv", "none", kind=WithParams)
    assert capsys.readouterr().out.splitlines()[1] == 'a,"{""seconds"":1,""tags"":[""x""]}"'


def test_every_limit_in_the_cli_is_the_shared_one_that_says_when_rows_were_cut() -> None:
    """New domains' list commands get the stderr hint by using `limit_option` and `emit`."""

    def commands(group: click.Command, path: str) -> list[tuple[str, click.Command]]:
        found = [(path, group)]
        for name, sub in getattr(group, "commands", {}).items():
            found += commands(sub, f"{path} {name}")
        return found

    limited = [
        (path, type(p).__name__)
        for path, command in commands(main, "spine")
        for p in command.params
        if p.name == "limit"
    ]
    assert len(limited) >= 7, limited  # executions list, OTC's four, FINRA venues and symbols
    assert all(kind == LimitOption.__name__ for _, kind in limited), limited


def test_every_executions_and_schedules_command_speaks_json() -> None:
    assert isinstance(main, click.Group)
    for group in ("executions", "schedules"):
        commands = main.commands[group]
        assert isinstance(commands, click.Group)
        for name, command in commands.commands.items():
            formats = [p for p in command.params if p.name == "fmt"]
            assert formats, f"spine {group} {name} has no --format"
            assert isinstance(formats[0].type, click.Choice)
            assert "json" in formats[0].type.choices, f"spine {group} {name}"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_elapsed_column_counts_between_events_and_bars_end_full(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    printer = ProgressPrinter(tty=True, clock=clock)
    printer.show({"phase": "copy", "done": 50, "total": 100, "message": "copying"})
    clock.now += 4.0
    printer.tick()  # no event for 4 s: the bar is redrawn with the time
    assert "  4.0s copying" in capsys.readouterr().err
    printer.show({"phase": "normalize", "done": 1, "total": 4, "message": "inserting trades"})
    lines = capsys.readouterr().err.split("\n")
    assert "[##############################] 100.0%   4.0s copying" in lines[0]  # ended full
    assert "normalize: [#######" in lines[1]
    clock.now += 2.5
    printer.end(ok=True)  # the run completed
    err = capsys.readouterr().err
    assert "100.0%   2.5s inserting trades" in err and err.endswith("\n")


def test_a_failed_run_clears_its_bar(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(tty=True, clock=Clock())
    printer.show({"phase": "copy", "done": 50, "total": 100, "message": "copying"})
    capsys.readouterr()
    printer.end(ok=False)
    err = capsys.readouterr().err
    assert err.startswith("\r") and err.endswith("\r") and err.strip() == ""
    printer.end(ok=True)  # nothing left to finish
    assert capsys.readouterr().err == ""
