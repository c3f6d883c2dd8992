"""The engine's SQL: named statements in `app/engine/sql/*.sql`, read once at import.

One file per table or concern (procrastinate's queries.sql, River's sqlc
files). A statement follows its `-- name: <name>` line, up to the next one,
and is sent as written: no statement is built from pieces, so none exists
twice and a reader sees every statement whole. The constants the SQL shares
with the Python side (statuses, channel names) are written out in it;
tests/unit/test_sql_hygiene.py checks them against app.engine.models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = ["SQL_DIR", "load"]

SQL_DIR = Path(__file__).with_name("sql")
_NAME = re.compile(r"^-- name: ([a-z][a-z0-9_]*)[ \t]*$", re.MULTILINE)


def load(concern: str) -> Mapping[str, str]:
    """The statements of `sql/<concern>.sql` by name (a file's text before its first
    name is its description). A name given twice is an error."""
    parts = _NAME.split((SQL_DIR / f"{concern}.sql").read_text(encoding="utf-8"))
    queries: dict[str, str] = {}
    for name, text in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{concern}.sql names {name!r} twice")
        queries[name] = text.strip()
    return MappingProxyType(queries)
