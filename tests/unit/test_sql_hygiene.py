"""Every SQL statement is parameterised: no value is ever formatted into SQL text.

f-strings may splice only module-level constants (column lists, channel
names); %-formatting and str.format on SQL are refused outright.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("worker/**/*.py")])
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|LISTEN|NOTIFY|COPY|CREATE|DROP|ALTER|WITH)\b")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return bool(CONSTANT.match(node.id))
    if isinstance(node, ast.Attribute):
        return bool(CONSTANT.match(node.attr))
    # `_COLUMNS.replace(", ", ", e.")`: a constant transformed by constant arguments.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _is_constant(node.func.value) and all(isinstance(a, ast.Constant) for a in node.args)
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
