"""Numbered plain-SQL migrations, applied in order and recorded with a checksum.

Each pending file runs in its own transaction together with its row in
`schema_migrations`; a session advisory lock makes concurrent `spine db init`
calls queue up instead of racing. Editing an applied file is an error: add a
new numbered file instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg

__all__ = [
    "Migration",
    "MigrationError",
    "MigrationState",
    "apply_pending",
    "discover",
    "migrations_dir",
    "status",
]

# pg_advisory_lock key: "spine-migrate" folded into a bigint.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"spine-migrate").digest()[:8], "big", signed=True)
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations on disk and in the database disagree."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    name: str
    state: Literal["applied", "pending", "changed", "missing"]  # missing: applied, not on disk
    applied_at: datetime | None


def migrations_dir() -> Path:
    """`app/_migrations` in an installed wheel, else the repository's `migrations/`."""
    packaged = Path(__file__).parent / "_migrations"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not _NAME.match(path.name):
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_snake.sql")
        found.append(Migration(path.name, path.read_text(encoding="utf-8")))
    numbers = [m.name[:3] for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


_APPLIED = "SELECT name, checksum, applied_at FROM schema_migrations"


def _applied(conn: psycopg.Connection[dict[str, object]]) -> dict[str, dict[str, object]]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").fetchone()
    if not exists or not exists["e"]:
        return {}
    return {str(r["name"]): r for r in conn.execute(_APPLIED).fetchall()}


async def applied_async(
    conn: psycopg.AsyncConnection[dict[str, object]],
) -> dict[str, dict[str, object]]:
    """What `schema_migrations` records, by name (empty before the first migration)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e")
    exists = await cur.fetchone()
    if not exists or not exists["e"]:
        return {}
    return {str(r["name"]): r for r in await (await conn.execute(_APPLIED)).fetchall()}


def compare(
    on_disk: list[Migration], applied: dict[str, dict[str, object]]
) -> list[MigrationState]:
    """Each migration's state: applied, pending, changed (since applied) or missing (from disk).

    The one place that judges migrations: `spine db status` and the API's
    readiness both read it.
    """
    applied = dict(applied)
    states = []
    for m in on_disk:
        row = applied.pop(m.name, None)
        if row is None:
            states.append(MigrationState(m.name, "pending", None))
        else:
            state: Literal["applied", "changed"] = (
                "applied" if row["checksum"] == m.checksum else "changed"
            )
            states.append(MigrationState(m.name, state, _when(row)))
    for name, row in sorted(applied.items()):
        states.append(MigrationState(name, "missing", _when(row)))
    return states


def _when(row: dict[str, object]) -> datetime | None:
    at = row.get("applied_at")
    return at if isinstance(at, datetime) else None


def status(
    conn: psycopg.Connection[dict[str, object]], directory: Path | None = None
) -> list[MigrationState]:
    return compare(discover(directory), _applied(conn))


def apply_pending(
    conn: psycopg.Connection[dict[str, object]],
    directory: Path | None = None,
    on_apply: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply every pending migration in order; returns the names applied.

    `conn` must be in autocommit mode (each migration opens its own transaction).
    """
    if not conn.autocommit:
        raise MigrationError("apply_pending needs an autocommit connection")
    migrations = discover(directory)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(_CREATE_TABLE)
        applied = _applied(conn)
        for m in migrations:
            row = applied.get(m.name)
            if row is not None and row["checksum"] != m.checksum:
                raise MigrationError(
                    f"{m.name} changed after it was applied (checksum {str(row['checksum'])[:12]} "
                    f"in the database, {m.checksum[:12]} on disk); add a new migration instead"
                )
        done = []
        for m in migrations:
            if m.name in applied:
                continue
            try:
                with conn.transaction():
                    conn.execute(m.sql.encode())  # bytes: run as one multi-statement script
                    conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                        (m.name, m.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"{m.name} failed: {exc}") from exc
            done.append(m.name)
            if on_apply:
                on_apply(m.name)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
