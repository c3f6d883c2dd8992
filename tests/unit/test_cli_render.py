"""How the CLI prints: progress per phase (bar or plain lines), tables, CSV, exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from app.cli.render import ProgressPrinter, emit


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
    assert [line.split(":")[0] for line in lines] == ["copy", "normalize", "normalize", "metrics"]
    assert "s copying f.csv" in lines[0] and "25.0%" in lines[1]


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
    emit([Row("A", 1, Decimal("1.1"))], "json", "none", kind=Row, more="(more rows)")
    captured = capsys.readouterr()
    assert '"total_notional": 1.1' in captured.out
    assert captured.err == "(more rows)\n"
