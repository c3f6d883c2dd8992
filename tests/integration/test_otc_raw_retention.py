"""Raw-line retention: `spine data prune-raw` drops old loads' lines and returns their space;
the loads (summaries), their rejects and their trades stay; migration 013 moves old rows."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from app import db
from app.config import get_settings
from app.migrations import apply_pending, migrations_dir
from app.otc.pipelines import ingest_file
from tests.support import ROOT, spine_env

Conn = psycopg.Connection[dict[str, Any]]
_TABLES_SIZE = """
    SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
"""
"""Every table's files with their indexes and TOAST, the system catalogs left out."""
HEADER = b"trade_id,symbol,executed_at,price,size,side,venue\n"


def _file(tmp: Path, name: str, first: int, n: int) -> Path:
    lines = [
        b"T%d,ACME,2026-01-05T15:%02d:00Z,10.5,%d,B,OTCN" % (i, i % 60, 100 + i)
        for i in range(first, first + n)
    ]
    lines += [b"BAD1,acme,2026-01-05T15:00:00Z,1,1,B,OTCN", b"BAD2,ACME,yesterday,1,1,B,OTCN"]
    path = tmp / name
    path.write_bytes(HEADER + b"\n".join(lines) + b"\n")
    return path


def _ingest(database_url: str, paths: list[Path]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            return [
                await ingest_file(
                    pool,
                    execution_id=f"load-{path.stem}",
                    path=path,
                    source_file=path.name,
                    market_tz="America/New_York",
                )
                for path in paths
            ]
        finally:
            await pool.close()

    return asyncio.run(go())


def _prune(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "data", "prune-raw", *args],
        env=spine_env(database_url, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one(conn: Conn, query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def test_prune_drops_old_lines_returns_space_and_keeps_loads_and_rejects(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    old, new = _ingest(
        database_url, [_file(tmp_path, "old.csv", 0, 5_000), _file(tmp_path, "new.csv", 5_000, 50)]
    )
    assert (old["rejected"], new["rejected"]) == (2, 2)
    conn.execute(
        "UPDATE otc_loads SET started_at = now() - interval '41 days', "
        "finished_at = now() - interval '40 days' WHERE id = %s",
        (old["load_id"],),
    )
    old_part = f"otc_trades_raw_{old['load_id']}"
    raw_before = _one(conn, "SELECT pg_total_relation_size(%s::regclass)", old_part)
    db_before = _one(conn, _TABLES_SIZE)
    assert raw_before > 40_000  # 5,002 lines, compressed: the space the prune must give back

    done = _prune(database_url, "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert "dropped the raw lines of 1 load(s) older than 30d" in done.stdout

    # The old load's lines and their files are gone; the tables' files shrank by at least as
    # much (the catalogs' own pages, which any DDL may grow, are not the prune's to give).
    assert _one(conn, "SELECT to_regclass(%s) IS NULL", old_part)
    assert _one(conn, "SELECT count(*) FROM otc_trades_raw WHERE load_id = %s", old["load_id"]) == 0
    db_after = _one(conn, _TABLES_SIZE)
    assert db_before - db_after >= raw_before
    # The new load keeps every line.
    assert (
        _one(conn, "SELECT count(*) FROM otc_trades_raw WHERE load_id = %s", new["load_id"]) == 52
    )
    # Both loads, with their summaries, rejects and trades, stay; only the old one is marked.
    loads = conn.execute(
        "SELECT id, summary, raw_pruned_at IS NOT NULL AS pruned FROM otc_loads ORDER BY id"
    ).fetchall()
    assert [(r["id"], r["summary"]["rows_read"], r["pruned"]) for r in loads] == [
        (old["load_id"], 5_002, True),
        (new["load_id"], 52, False),
    ]
    rejects = conn.execute(
        "SELECT load_id, reason FROM otc_trades_rejects ORDER BY load_id, line_no"
    ).fetchall()
    assert [(r["load_id"], r["reason"]) for r in rejects] == [
        (old["load_id"], "bad_symbol"),
        (old["load_id"], "bad_executed_at"),
        (new["load_id"], "bad_symbol"),
        (new["load_id"], "bad_executed_at"),
    ]
    assert _one(conn, "SELECT count(*) FROM otc_trades") == 5_050

    # Nothing left to prune: a second run drops nothing; a later load still works.
    again = _prune(database_url, "--older-than", "30d")
    assert "of 0 load(s)" in again.stdout, again.stderr
    (later,) = _ingest(database_url, [_file(tmp_path, "later.csv", 9_000, 10)])
    assert later["inserted"] == 10


def test_prune_takes_its_default_age_from_the_setting(database_url: str, conn: Conn) -> None:
    unset = _prune(database_url, SPINE_RAW_RETENTION_DAYS="0")
    assert unset.returncode != 0
    assert "SPINE_RAW_RETENTION_DAYS" in unset.stderr
    assert "Traceback" not in unset.stderr
    done = _prune(database_url, SPINE_RAW_RETENTION_DAYS="30")
    assert done.returncode == 0, done.stderr
    assert "older than 30d" in done.stdout


def _migrate_until(conn: Conn, tmp: Path, first_excluded: str) -> list[str]:
    """Apply the migrations before `first_excluded` (a file name prefix such as "013")."""
    before = tmp / f"before_{first_excluded}"
    before.mkdir()
    for path in sorted(migrations_dir().glob("*.sql")):
        if path.name < first_excluded:
            shutil.copy(path, before / path.name)
    return apply_pending(conn, before)


def _old_raw_lines(conn: Conn) -> None:
    """Two loads with raw lines (in the pre-014 one-row-per-line table), and a reject."""
    for load in (1, 2):
        conn.execute(
            "INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz, summary) "
            "OVERRIDING SYSTEM VALUE VALUES (%s, 'f.csv', 1, 'UTC', '{\"rows_read\": 3}')",
            (f"e{load}",),
        )
    conn.execute(
        "INSERT INTO otc_trades_raw (load_id, line_no, line) VALUES "
        "(1, 3, 'c'), (2, 2, 'x'), (1, 2, 'a,b'), (1, 4, NULL)"
    )
    conn.execute(
        "INSERT INTO otc_trades_rejects (load_id, line_no, reason, line) "
        "VALUES (1, 4, 'blank_line', NULL)"
    )


def _raw_lines_view(conn: Conn) -> None:
    view = conn.execute(
        "SELECT execution_id, fields, reject_reason FROM otc_trades_raw_lines "
        "WHERE load_id = 1 ORDER BY line_no"
    ).fetchall()
    assert [tuple(r.values()) for r in view] == [
        ("e1", ["a", "b"], None),
        ("e1", ["c"], None),
        ("e1", None, "blank_line"),
    ]


def test_migration_013_moves_existing_raw_lines_into_a_partition_per_load(
    bare_url: str, tmp_path: Path
) -> None:
    with db.connect(bare_url) as conn:
        _migrate_until(conn, tmp_path, "013")
        _old_raw_lines(conn)

        applied = _migrate_until(conn, tmp_path, "014")  # 013 alone
        assert applied == ["013_otc_raw_by_load.sql"]
        rows = conn.execute(
            "SELECT tableoid::regclass::text AS part, load_id, line_no, line "
            "FROM otc_trades_raw ORDER BY load_id, line_no"
        ).fetchall()
        assert [tuple(r.values()) for r in rows] == [
            ("otc_trades_raw_1", 1, 2, "a,b"),
            ("otc_trades_raw_1", 1, 3, "c"),
            ("otc_trades_raw_1", 1, 4, None),
            ("otc_trades_raw_2", 2, 2, "x"),
        ]
        assert _one(conn, "SELECT to_regclass('otc_trades_raw_before_013') IS NULL")
        _raw_lines_view(conn)


def test_migration_014_moves_raw_lines_into_compressed_chunks_and_keeps_the_view(
    bare_url: str, tmp_path: Path
) -> None:
    with db.connect(bare_url) as conn:
        _migrate_until(conn, tmp_path, "013")
        _old_raw_lines(conn)

        applied = apply_pending(conn)
        assert applied[:2] == ["013_otc_raw_by_load.sql", "014_otc_raw_chunks.sql"]
        # Each load is one partition of chunks, still named after the load ...
        chunks = conn.execute(
            "SELECT tableoid::regclass::text AS part, load_id, first_line, line_count, lines "
            "FROM otc_raw_chunks ORDER BY load_id, first_line"
        ).fetchall()
        assert [tuple(r.values()) for r in chunks] == [
            ("otc_trades_raw_1", 1, 2, 3, "a,b\nc\n\n"),
            ("otc_trades_raw_2", 2, 2, 1, "x\n"),
        ]
        # ... and otc_trades_raw still reads line by line, an empty line as NULL.
        rows = conn.execute(
            "SELECT load_id, line_no, line FROM otc_trades_raw ORDER BY load_id, line_no"
        ).fetchall()
        assert [tuple(r.values()) for r in rows] == [
            (1, 2, "a,b"),
            (1, 3, "c"),
            (1, 4, None),
            (2, 2, "x"),
        ]
        assert _one(conn, "SELECT to_regclass('otc_trades_raw_before_014') IS NULL")
        assert _one(conn, "SELECT to_regclass('otc_trades_raw_1_before_014') IS NULL")
        _raw_lines_view(conn)
