"""Every SQL statement is parameterised: no value is ever formatted into SQL text.

f-strings may splice only module-level constants (column lists, channel
names); %-formatting and str.format on SQL are refused outright. The engine's
named statements (app/engine/sql/*.sql) are sent as written: none is built
from pieces, none exists twice, each is used, and the statuses and channels
they write out are the ones app.engine.models names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.engine import models
from app.engine.queries import SQL_DIR, load
from app.engine.retries import RETRYABLE

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("worker/**/*.py")])
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|LISTEN|NOTIFY|COPY|CREATE|DROP|ALTER|WITH)\b")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return bool(CONSTANT.match(node.id))
    if isinstance(node, ast.Attribute):
        return bool(CONSTANT.match(node.attr))
    return False


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    return ""


def violations(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr) and SQL.search(_text(node)):
            for part in node.values:
                if isinstance(part, ast.FormattedValue) and not _is_constant(part.value):
                    found.append(f"{where}: f-string SQL splices {ast.unparse(part.value)}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if SQL.search(_text(node.left)):
                found.append(f"{where}: %-formatted SQL")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            sides = (node.left, node.right)
            if any(SQL.search(_text(x)) for x in sides) and not all(
                isinstance(x, ast.Constant | ast.JoinedStr) or _is_constant(x) for x in sides
            ):
                found.append(f"{where}: SQL built with + from a non-constant")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and SQL.search(_text(node.func.value))
        ):
            found.append(f"{where}: str.format on SQL")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_is_parameterised(path: Path) -> None:
    assert violations(path) == []


def test_the_check_catches_formatted_sql(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(conn, name):\n"
        "    conn.execute(f\"SELECT * FROM t WHERE name = '{name}'\")\n"
        '    conn.execute("DELETE FROM t WHERE id = %s" % name)\n'
        '    conn.execute("UPDATE t SET a = {}".format(name))\n'
    )
    assert len(violations(bad, tmp_path)) == 3


# ------------------------------------------------------------------ the named statements

SQL_FILES = sorted(SQL_DIR.glob("*.sql"))
# The modules whose SQL is all in the .sql files: no statement of their own.
LOADERS = sorted(p for p in SOURCES if re.search(r"^_SQL = load\(", p.read_text(), re.M))
PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\)s|s|%)")
STATUS_LIST = re.compile(r"\bstatus IN \(([^)]*)\)")
NOTIFY = re.compile(r"pg_notify\('([^']*)'")


def _statements() -> dict[str, str]:
    return {f"{p.stem}.{name}": text for p in SQL_FILES for name, text in load(p.stem).items()}


def _code(text: str) -> str:
    """A statement without its comments, its whitespace folded."""
    return " ".join(re.sub(r"--[^\n]*", "", text).split())


def test_every_sql_file_has_named_statements() -> None:
    assert SQL_FILES and LOADERS
    for path in SQL_FILES:
        assert load(path.stem), f"{path.name} names no statement"


@pytest.mark.parametrize("name", sorted(_statements()))
def test_a_statement_is_sent_as_written(name: str) -> None:
    text = _statements()[name]
    assert _code(text), f"{name} is empty"
    # Every % is a placeholder (psycopg reads them in comments too).
    assert "%" not in PLACEHOLDER.sub("", text), f"{name}: a % that is no placeholder"
    assert not re.search(r"\{[A-Za-z_]\w*\}", text), f"{name}: a template field"


def test_no_statement_exists_twice() -> None:
    seen: dict[str, str] = {}
    for name, text in _statements().items():
        assert _code(text) not in seen, f"{name} repeats {seen.get(_code(text))}"
        seen[_code(text)] = name


def _used() -> set[str]:
    """The statements the loading modules name: `_SQL["name"]`, or a choice of two."""
    used: set[str] = set()
    for path in LOADERS:
        text = path.read_text()
        (concern,) = re.findall(r'^_SQL = load\("(\w+)"\)', text, re.M)
        names = re.findall(r'_SQL\["(\w+)"\]', text)
        for pair in re.findall(r'_SQL\["(\w+)" if [\w.]+ else "(\w+)"\]', text):
            names += pair
        used |= {f"{concern}.{name}" for name in names}
    return used


def test_every_statement_is_used_and_every_use_exists() -> None:
    assert _used() == set(_statements())


def test_the_statuses_and_channels_written_out_are_the_models() -> None:
    known = {frozenset(models.ACTIVE), frozenset(models.HELD), frozenset(models.TERMINAL)}
    known.add(frozenset(RETRYABLE))
    channels = {models.EXECUTIONS_CHANNEL, models.CANCEL_CHANNEL, models.SCHEDULES_CHANNEL}
    for name, text in _statements().items():
        for listed in STATUS_LIST.findall(text):
            statuses = frozenset(v.strip().strip("'") for v in listed.split(","))
            assert statuses in known, f"{name}: status IN ({listed})"
        for channel in NOTIFY.findall(text):
            assert channel in channels, f"{name}: channel {channel!r}"


@pytest.mark.parametrize("path", LOADERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_with_named_statements_has_no_sql_of_its_own(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        text = _text(node) if isinstance(node, ast.Constant | ast.JoinedStr) else ""
        assert not re.search(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", text), (
            f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}: SQL outside sql/"
        )


def test_exactly_one_statement_claims_pending_executions() -> None:
    """The batch's record statement is the one claim (issue 25: one lifecycle)."""

    def claims(text: str) -> bool:
        code = _code(text)
        return "status = 'pending'" in code and "FOR UPDATE SKIP LOCKED" in code

    assert [name for name, text in _statements().items() if claims(text)] == ["batches.record"]
    # Its scan in claim order is migration 170's function, called from nowhere else.
    callers = [n for n, text in _statements().items() if "claimable_executions(" in _code(text)]
    assert callers == ["batches.record"]
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant | ast.JoinedStr):
                assert not claims(_text(node)), f"{path.relative_to(ROOT)}: a claim of its own"
