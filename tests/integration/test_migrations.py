"""The migration runner against a real server: fresh, re-run, changed file, concurrent init."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app import db
from app.migrations import MigrationError, apply_pending, discover, migrations_dir, status


@pytest.fixture
def bare_url(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database (no migrations applied)."""
    name = f"spine_bare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = make_conninfo(server_url, dbname=name)
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_fresh_database_gets_every_migration_in_order(bare_url: str) -> None:
    with db.connect(bare_url) as conn:
        applied = apply_pending(conn)
        assert applied == [m.name for m in discover()]
        assert applied == sorted(applied)
        assert {s.state for s in status(conn)} == {"applied"}
        assert conn.execute("SELECT to_regclass('executions') IS NOT NULL AS ok").fetchone() == {
            "ok": True
        }


def test_second_run_applies_nothing(bare_url: str) -> None:
    with db.connect(bare_url) as conn:
        apply_pending(conn)
        assert apply_pending(conn) == []


def test_changed_applied_file_is_a_clear_error(bare_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy)
    with db.connect(bare_url) as conn:
        apply_pending(conn, copy)
        first = sorted(copy.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match=f"{first.name} changed after it was applied"):
            apply_pending(conn, copy)
        assert any(s.state == "changed" for s in status(conn, copy))


def test_failing_migration_rolls_back_alone(bare_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy)
    (copy / "999_broken.sql").write_text(
        "CREATE TABLE ok_before (id int);\nSELECT nonsense FROM;\n"
    )
    with db.connect(bare_url) as conn:
        with pytest.raises(MigrationError, match=r"999_broken\.sql failed"):
            apply_pending(conn, copy)
        states = {s.name: s.state for s in status(conn, copy)}
        assert states.pop("999_broken.sql") == "pending"
        assert set(states.values()) == {"applied"}
        assert conn.execute("SELECT to_regclass('ok_before') AS t").fetchone() == {"t": None}


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "7-oops.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"NNN_lower_snake\.sql"):
        discover(tmp_path)


def test_concurrent_db_init_is_safe(bare_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": bare_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "db", "init"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    applied = [
        line for out, _ in results for line in out.splitlines() if line.startswith("applied ")
    ]
    assert sorted(applied) == [f"applied {m.name}" for m in discover()]
    with db.connect(bare_url) as conn:
        row = conn.execute("SELECT count(*) AS n, count(DISTINCT name) AS d FROM schema_migrations")
        assert row.fetchone() == {"n": len(discover()), "d": len(discover())}


def test_claim_order_survives_the_upgrade_to_a_sequence(bare_url: str, tmp_path: Path) -> None:
    """004 numbers the rows already queued in the order they were claimed in before it."""
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(migrations_dir().glob("00[1-3]_*.sql")):
        shutil.copy(path, before)
    with db.connect(bare_url) as conn:
        apply_pending(conn, before)
        conn.execute(
            """
            INSERT INTO executions (id, pipeline, trigger_source, lane, created_at) VALUES
                ('b-old', 'noop', 't', 'backfill', now() - interval '3 minutes'),
                ('n-new', 'noop', 't', 'normal', now() - interval '1 minute'),
                ('n-old', 'noop', 't', 'normal', now() - interval '2 minutes')
            """
        )
        apply_pending(conn)
        conn.execute(
            "INSERT INTO executions (id, pipeline, trigger_source) VALUES ('n-later', 'noop', 't')"
        )
        rows = conn.execute("SELECT id FROM executions ORDER BY priority, seq").fetchall()
    assert [r["id"] for r in rows] == ["n-old", "n-new", "n-later", "b-old"]
