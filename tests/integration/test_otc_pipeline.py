"""The OTC pipelines as the engine runs them: submit-time checks of `file`, an ingest run to
completion with progress, and the metrics recompute."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.errors import InvalidParams
from tests.support import run_inline, submit

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """SPINE_DATA_DIR holding the sample, and a secret file next to (outside) it."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "otc_sample.csv", data / "otc_sample.csv")
    (tmp_path / "secret.csv").write_text("trade_id,symbol,executed_at,price,size,side,venue\n")
    monkeypatch.setenv("SPINE_DATA_DIR", str(data))
    get_settings.cache_clear()
    return data


def validate(file: object) -> Any:
    return default_registry().get("otc_ingest").validate({"file": file}, get_settings())


def test_files_inside_the_data_directory_are_accepted(data_dir: Path) -> None:
    (data_dir / "sub" / "day.csv").write_text("x")
    (data_dir / "link.csv").symlink_to(data_dir / "otc_sample.csv")
    (data_dir / "sub" / "up.csv").symlink_to("../otc_sample.csv")
    for name in ("otc_sample.csv", "sub/day.csv", "link.csv", "sub/up.csv",
                 str(data_dir / "otc_sample.csv"), "./otc_sample.csv"):  # fmt: skip
        assert validate(name).file == name
    assert (
        default_registry().get("otc_ingest").validate({}, get_settings()).file == "otc_sample.csv"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../secret.csv", "must not contain '..'"),
        ("sub/../../secret.csv", "must not contain '..'"),
        ("sub/../otc_sample.csv", "must not contain '..'"),
        ("/etc/passwd", "outside the data directory"),
        ("out.csv", "outside the data directory"),  # a symlink leading out
        ("outdir/secret.csv", "outside the data directory"),  # through a symlinked directory
        ("missing.csv", "does not exist"),
        ("sub", "not a regular file"),
        ("", "params.file"),
        ("   ", "non-empty path"),
        ("a\x00b", "non-empty path"),
        (5, "Expected `str`"),
    ],
)
def test_files_outside_or_missing_are_refused_at_submit(
    data_dir: Path, conn: Conn, name: object, message: str
) -> None:
    (data_dir / "out.csv").symlink_to(data_dir.parent / "secret.csv")
    (data_dir / "outdir").symlink_to(data_dir.parent)
    with pytest.raises(InvalidParams, match=message) as caught:
        validate(name)
    assert "invalid params for otc_ingest" in str(caught.value)

    async def try_submit() -> None:
        async with await db.aconnect(db.database_url(get_settings())) as aconn:
            await submit(aconn, "otc_ingest", {"file": name})

    with pytest.raises(InvalidParams, match=message):
        asyncio.run(try_submit())
    assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 0}


def test_unknown_params_are_refused(data_dir: Path) -> None:
    with pytest.raises(InvalidParams, match="path"):
        default_registry().get("otc_ingest").validate(
            {"file": "otc_sample.csv", "path": "x"}, get_settings()
        )
    compute = default_registry().get("otc_compute_metrics")
    with pytest.raises(InvalidParams, match="start_date must not be after end_date"):
        compute.validate({"start_date": "2026-01-09", "end_date": "2026-01-05"}, get_settings())
    with pytest.raises(InvalidParams, match=r"params\.symbol"):
        compute.validate({"symbol": "acme; drop table"}, get_settings())


def completed_result(conn: Conn, execution_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT payload FROM execution_events WHERE execution_id = %s AND event_type = 'completed'",
        (execution_id,),
    ).fetchone()
    assert row is not None
    return row["payload"]["result"]  # type: ignore[no-any-return]


def test_otc_ingest_runs_to_completion(data_dir: Path, database_url: str, conn: Conn) -> None:
    execution = asyncio.run(run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"}))
    assert execution.status == "completed", execution.error
    result = completed_result(conn, execution.id)
    assert result["rows_read"] == 4016
    assert result["inserted"] == 4002
    parts = ("inserted", "duplicates", "corrections", "rejected")
    assert result["rows_read"] == sum(result[p] for p in parts)
    assert result["metrics_rows"] == 40
    progress = conn.execute(
        "SELECT payload FROM execution_events WHERE execution_id = %s"
        " AND event_type = 'progress' ORDER BY id",
        (execution.id,),
    ).fetchall()
    assert progress, "no progress was reported"
    load = conn.execute("SELECT * FROM otc_loads").fetchone()
    assert load is not None
    assert load["execution_id"] == execution.id
    assert load["source_file"] == "otc_sample.csv"
    assert load["summary"] == result

    again = asyncio.run(run_inline(database_url, "otc_ingest", {}))
    assert again.status == "completed"
    second = completed_result(conn, again.id)
    assert (second["inserted"], second["metrics_rows"]) == (0, 0)

    compute = asyncio.run(run_inline(database_url, "otc_compute_metrics", {}))
    assert compute.status == "completed", compute.error
    assert completed_result(conn, compute.id)["metrics_rows"] == 0
    conn.execute("DELETE FROM otc_metrics_daily WHERE symbol = 'ACME'")
    ranged = asyncio.run(
        run_inline(
            database_url,
            "otc_compute_metrics",
            {"start_date": "2026-01-06", "end_date": "2026-01-07", "symbol": "ACME"},
        )
    )
    assert completed_result(conn, ranged.id)["metrics_rows"] == 2
    count = conn.execute("SELECT count(*) AS n FROM otc_metrics_daily WHERE symbol = 'ACME'")
    assert count.fetchone() == {"n": 2}


def test_an_unloadable_file_fails_the_execution_clearly(
    data_dir: Path, database_url: str, conn: Conn
) -> None:
    (data_dir / "bad.csv").write_text("id,sym\n1,2\n")
    execution = asyncio.run(run_inline(database_url, "otc_ingest", {"file": "bad.csv"}))
    assert execution.status == "failed"
    assert execution.error is not None
    assert "wrong header" in execution.error
    assert "Traceback" not in execution.error
    assert conn.execute("SELECT count(*) AS n FROM otc_loads").fetchone() == {"n": 0}
