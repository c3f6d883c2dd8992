"""ATS beside non-ATS: one table, two venue kinds, each file replacing only its own kind.

The non-ATS weeks are FINRA's real files; the ATS weeks are written here in the
same format (`tests.finra_support.ats_lines`): no real ATS file is committed.
`ats_share_pct` is checked against a Decimal computation over the files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from app import db
from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.engine import backfills, partitions, scans
from app.engine.backends import make_backend
from app.engine.datasets import Dataset
from app.files import InvalidInputFile
from app.finra import reads
from app.finra.datasets import FINRA_ATS_WEEKLY, FINRA_OTC_WEEKLY
from app.migrations import apply_pending, migrations_dir
from tests.api_support import api_client
from tests.finra_support import (
    ATS_ONLY_SYMBOL,
    WEEK_FILES,
    Loader,
    ats_lines,
    ats_share_pct,
    open_loader,
    read_file,
    symbol_of,
)
from tests.support import run_inline, run_sync, status_counts, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, Any]]
WEEKS = sorted(WEEK_FILES)
EVERYTHING = 100_000

LANDED_ONLY = dataclasses.replace(FINRA_ATS_WEEKLY, remote=None)


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    yield from open_loader(database_url, tmp_path)


def _rows(conn: Conn, week: date, kind: str) -> dict[tuple[str, str], tuple[int, int, str]]:
    """A week's stored rows of one kind: (symbol, mpid) -> (shares, trades, row version)."""
    rows = conn.execute(
        "SELECT symbol, mpid, shares, trades, xmin::text AS version FROM finra_weekly_volume"
        " WHERE week_start = %s AND venue_kind = %s",
        (week, kind),
    ).fetchall()
    return {(r["symbol"], r["mpid"]): (r["shares"], r["trades"], r["version"]) for r in rows}


def _file_rows(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (r["issueSymbolIdentifier"], r["MPID"]): (
            int(r["totalWeeklyShareQuantity"]),
            int(r["totalWeeklyTradeCount"]),
        )
        for r in read_file(path)
    }


def _values(rows: dict[tuple[str, str], tuple[int, int, str]]) -> dict[tuple[str, str], Any]:
    return {k: v[:2] for k, v in rows.items()}


def test_each_kind_replaces_only_its_own_rows(loader: Loader, conn: Conn) -> None:
    first, second = WEEKS[:2]
    # Week 1: non-ATS, then ATS. Week 2: ATS, then non-ATS.
    ats1 = loader.write("ats1.csv", ats_lines(WEEK_FILES[first]))
    ats2 = loader.write("ats2.csv", ats_lines(WEEK_FILES[second], every=5))
    loader.ingest(WEEK_FILES[first])
    non_ats_before = _rows(conn, first, "non_ats")
    summary = loader.ingest(ats1, venue_kind="ats")
    assert summary["venue_kind"] == "ats"
    assert (summary["inserted"], summary["removed"]) == (len(read_file(ats1)), 0)
    assert _rows(conn, first, "non_ats") == non_ats_before  # not even rewritten
    assert _values(_rows(conn, first, "ats")) == _file_rows(ats1)

    loader.ingest(ats2, venue_kind="ats")
    ats_before = _rows(conn, second, "ats")
    summary = loader.ingest(WEEK_FILES[second])
    assert (summary["venue_kind"], summary["removed"]) == ("non_ats", 0)
    assert _rows(conn, second, "ats") == ats_before
    assert _values(_rows(conn, second, "non_ats")) == _file_rows(WEEK_FILES[second])

    # FINRA republishes week 1's ATS file: one row changed, one gone, one new.
    lines = [line.replace(f"|{first}", "|2025-12-19") for line in ats_lines(WEEK_FILES[first])]
    fields = lines[0].split("|")
    fields[5] = str(int(fields[5]) + 11)
    restated = ["|".join(fields), *lines[2:], "OTC|NEWATS|New Inc|ATS GAMMA|ATSG|5|1|2025-12-19"]
    republished = loader.write("ats1b.csv", restated)
    summary = loader.ingest(republished, week=first, venue_kind="ats")
    assert (summary["inserted"], summary["changed"], summary["removed"]) == (1, 1, 1)
    assert _values(_rows(conn, first, "ats")) == _file_rows(republished)
    assert _rows(conn, first, "non_ats") == non_ats_before

    # ... and its non-ATS file, with a row gone: the ATS rows stay as they are.
    ats_now = _rows(conn, first, "ats")
    non_ats = WEEK_FILES[first].read_text(encoding="utf-8").splitlines()[2:]
    summary = loader.ingest(loader.write("otc1b.csv", non_ats), week=first)
    assert (summary["removed"], summary["inserted"]) == (1, 0)
    assert _rows(conn, first, "ats") == ats_now

    # The refusal of an older restatement is per kind: the ATS file's 2025-12-19 is newer
    # than the non-ATS 2025-12-15, and the original ATS publication is older than its own.
    with pytest.raises(InvalidInputFile, match=r"\(ats\) is loaded from lastUpdateDate 2025-12-19"):
        loader.ingest(ats1, venue_kind="ats")
    kinds = conn.execute(
        "SELECT venue_kind, count(*) AS n FROM finra_loads GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert kinds == [{"venue_kind": "ats", "n": 3}, {"venue_kind": "non_ats", "n": 3}]


def test_ats_share_pct_equals_a_decimal_computation_over_the_files(loader: Loader) -> None:
    first, second = WEEKS[:2]
    ats = loader.write("ats.csv", ats_lines(WEEK_FILES[first]))
    loader.ingest(WEEK_FILES[first])
    loader.ingest(WEEK_FILES[second])
    loader.ingest(ats, venue_kind="ats")

    non_ats_rows, ats_rows = read_file(WEEK_FILES[first]), read_file(ats)
    want = ats_share_pct(non_ats_rows, ats_rows)
    got = loader.read(lambda c: reads.symbols(c, first, limit=EVERYTHING))
    assert {s.symbol: s.ats_share_pct for s in got} == want
    assert want[ATS_ONLY_SYMBOL] == 100
    assert sum(1 for v in want.values() if v == 0) > 1000  # most symbols had no ATS venue
    assert len({v for v in want.values() if v not in (0, 100)}) > 100

    # The venue share and HHI keep their meaning: over every venue, ATS and non-ATS.
    both = non_ats_rows + ats_rows
    for s in got[:200]:
        expected = symbol_of(both, s.symbol)
        assert (s.shares, s.venues, s.top_mpid) == (
            expected.shares,
            expected.venues,
            expected.top_mpid,
        )
        assert (s.hhi, s.top_mpid_share_pct) == (expected.hhi, expected.top_mpid_share_pct)

    # Week 2 has no ATS file loaded: no symbol has an ATS share there.
    assert {s.ats_share_pct for s in loader.read(lambda c: reads.symbols(c, second))} == {None}
    symbol = next(s.symbol for s in got if s.ats_share_pct not in (None, 0, 100))
    history = loader.read(lambda c: reads.symbol_history(c, symbol))
    assert [(h.week, h.ats_share_pct) for h in history] == [
        (first, want[symbol]),
        (second, None),
    ]


def test_ats_share_is_null_unless_both_kinds_of_its_tier_are_in(loader: Loader) -> None:
    week = WEEKS[0]
    day = week.isoformat()
    loader.ingest(
        loader.write(
            "non_ats.csv",
            [
                f"NMS Tier 1|ZERO|Zero Inc|FIRM A|FIRMA|0|0|{day}",
                f"NMS Tier 1|ONE|One Inc|FIRM A|FIRMA|3|1|{day}",
                f"NMS Tier 2|TWO|Two Inc|FIRM A|FIRMA|10|1|{day}",
            ],
        )
    )
    loader.ingest(
        loader.write(
            "ats.csv",
            [
                f"NMS Tier 1|ZERO|Zero Inc|ATS|ATSA|0|0|{day}",
                f"NMS Tier 1|ONE|One Inc|ATS|ATSA|1|1|{day}",
            ],
        ),
        venue_kind="ats",
    )
    got = {s.symbol: s.ats_share_pct for s in loader.read(lambda c: reads.symbols(c, week))}
    # ONE: 1 / 4 shares. ZERO: 0 / 0. TWO: tier 2 has no ATS file loaded.
    assert got == {"ONE": 25, "ZERO": None, "TWO": None}


def _land(data_dir: Path, week: date = WEEKS[0]) -> tuple[Path, Path]:
    """Land week's real non-ATS file and a made-up ATS file, each under its dataset's pattern."""
    (data_dir / "finra").mkdir(parents=True, exist_ok=True)
    non_ats = data_dir / "finra" / WEEK_FILES[week].name
    shutil.copy(WEEK_FILES[week], non_ats)
    ats = data_dir / "finra" / f"finra_ats_weekly_otc_{week:%Y%m%d}.csv"
    header = WEEK_FILES[week].read_text(encoding="utf-8").splitlines()[0]
    body = (header, *ats_lines(WEEK_FILES[week]))
    ats.write_text("".join(f"{line}\n" for line in body), encoding="utf-8")
    return non_ats, ats


def test_api_cli_and_page_show_ats_share_pct(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    non_ats, ats = _land(tmp_path)
    for params in (
        {"file": "finra/" + non_ats.name},
        {"file": "finra/" + ats.name, "venue_kind": "ats"},
    ):
        execution = run_sync(run_inline(database_url, "finra_weekly_ingest", params))
        assert execution.status == "completed", execution.error
    want = ats_share_pct(read_file(non_ats), read_file(ats))
    symbol = sorted(s for s, v in want.items() if v not in (None, 0, 100))[0]
    base = f"/api/v1/finra/weeks/{WEEKS[0]}/symbols"

    async def http() -> tuple[str, list[dict[str, Any]], str]:
        async with api_client() as client:
            one = await client.get(f"{base}?symbol={symbol}")
            only = await client.get(f"{base}?symbol={ATS_ONLY_SYMBOL}")
            weeks = await client.get("/api/v1/finra/weeks")
            assert [(w["tier"], w["venue_kinds"]) for w in weeks.json()] == [
                ("OTC", ["ats", "non_ats"])
            ]
            top = await client.get(f"{base}?limit=50")  # what the page shows
            page = await client.get("/ui/finra")
            assert (one.status_code, only.status_code, page.status_code) == (200, 200, 200)
            for row in top.json():
                cell = re.search(
                    rf'data-symbol="{re.escape(row["symbol"])}">.*?class="num ats">([^<]*)<',
                    page.text,
                )
                assert cell is not None, row["symbol"]
                shown = Decimal(cell[1]) if cell[1] else None
                wanted = want[row["symbol"]]
                assert shown == wanted, row["symbol"]
            return one.text, only.json(), page.text

    text, only, page = run_sync(http())
    body = json.loads(text, parse_float=Decimal)
    assert [(s["symbol"], Decimal(str(s["ats_share_pct"]))) for s in body] == [
        (symbol, want[symbol])
    ]
    assert f'"ats_share_pct":{want[symbol]}' in text  # an exact JSON number
    assert [(s["ats_share_pct"], s["venues"]) for s in only] == [(100, 1)]
    assert "ATS share %" in page and "OTC (ats, non_ats):" in page

    cli = CliRunner().invoke(
        main,
        ["query", "finra", "symbols", "--week", str(WEEKS[0]), "--limit", "100000", "--format",
         "json"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    from_cli = {s["symbol"]: s for s in json.loads(cli.stdout, parse_float=Decimal)}
    assert from_cli[symbol] == body[0]

    # A file named as ATS data but submitted without venue_kind is refused at submit.
    refused = CliRunner().invoke(
        main, ["run", "finra_weekly_ingest", "-p", f"file=finra/{ats.name}"]
    )
    assert refused.exit_code != 0
    assert "pass venue_kind=ats" in refused.output


@pytest.fixture
def bare_url(server_url: str) -> Iterator[str]:
    """An empty database (no migrations applied)."""
    name = f"spine_bare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_021_makes_existing_rows_non_ats(bare_url: str, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(migrations_dir().glob("0[0-2]*.sql")):
        if int(path.name[:3]) < 21:
            shutil.copy(path, before)
    with db.connect(bare_url) as conn:
        apply_pending(conn, before)
        conn.execute(
            "INSERT INTO finra_loads (execution_id, source_file, file_bytes) VALUES ('e', 'f', 1)"
        )
        conn.execute(
            """
            INSERT INTO finra_weekly_volume (week_start, tier, symbol, issue_name, mpid,
                participant_name, shares, trades, last_update_date, load_id)
            VALUES ('2025-12-15', 'OTC', 'AABB', 'Asia', 'OTCN', 'OTC Link', 7, 1,
                    '2025-12-15', 1)
            """
        )
        applied = apply_pending(conn)
        assert applied[0].startswith("021_")
        kinds = conn.execute(
            "SELECT (SELECT venue_kind FROM finra_loads) AS load,"
            " (SELECT venue_kind FROM finra_weekly_volume) AS row"
        ).fetchone()
        assert kinds == {"load": "non_ats", "row": "non_ats"}
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint"
            " WHERE conrelid = 'finra_weekly_volume'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == {"d": "PRIMARY KEY (week_start, tier, venue_kind, symbol, mpid)"}
        # The same (week, tier, symbol, MPID) as ATS is another row; a write must name its kind.
        conn.execute(
            """
            INSERT INTO finra_weekly_volume (week_start, tier, venue_kind, symbol, issue_name,
                mpid, participant_name, shares, trades, last_update_date, load_id)
            VALUES ('2025-12-15', 'OTC', 'ats', 'AABB', 'Asia', 'OTCN', 'OTC Link', 3, 1,
                    '2025-12-15', 1)
            """
        )
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(
                "INSERT INTO finra_loads (execution_id, source_file, file_bytes)"
                " VALUES ('e2', 'f', 1)"
            )


def _scan(runner: asyncio.Runner, url: str, dataset: Dataset) -> scans.ScanResult:
    async def go() -> scans.ScanResult:
        settings = get_settings()
        async with await db.aconnect(url) as c:
            return await scans.scan(
                c, default_registry(), settings, make_backend(settings), dataset
            )

    return runner.run(go())


def _states(runner: asyncio.Runner, url: str, dataset: Dataset, keys: list[str]) -> list[str]:
    async def go() -> list[partitions.PartitionRow]:
        async with await db.aconnect(url) as c:
            parts = [dataset.partition(k) for k in keys]
            now = datetime(2026, 2, 10, tzinfo=UTC)  # past every deadline
            return await partitions.states(c, dataset, parts, now=now)

    return [r.state for r in runner.run(go())]


def _completed(conn: Conn, n: int) -> bool:
    counts = status_counts(conn)
    return counts.get("completed", 0) == n and sum(counts.values()) == n


def test_scan_and_backfill_of_finra_ats_weekly_through_the_landing_area(
    database_url: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    monkeypatch.setenv("SPINE_DATA_DIR", str(landing))
    get_settings.cache_clear()
    first, second, third = WEEKS
    _land(landing, first)
    keys = [f"{w}/OTC" for w in WEEKS]
    with asyncio.Runner() as runner:
        ats_scan = _scan(runner, database_url, FINRA_ATS_WEEKLY)
        otc_scan = _scan(runner, database_url, FINRA_OTC_WEEKLY)
        # Each dataset sees only its own files under finra/.
        assert (ats_scan.files, ats_scan.submitted) == (1, [keys[0]])
        assert (otc_scan.files, otc_scan.submitted) == (1, [keys[0]])
        with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log",
                         SPINE_DATA_DIR=str(landing)):  # fmt: skip
            wait_until(lambda: _completed(conn, 2))
            _, ats_second = _land(landing, second)
            (landing / "finra" / WEEK_FILES[second].name).unlink()  # only its ATS file lands

            async def backfill() -> backfills.Backfill:
                settings = get_settings()
                async with await db.aconnect(database_url) as c:
                    return await backfills.create(
                        c, default_registry(), settings, make_backend(settings),
                        LANDED_ONLY, from_key=str(first), to_key=str(third), key2="OTC",
                        sources=scans.landed(settings.data_dir, FINRA_ATS_WEEKLY),
                    )  # fmt: skip

            # The landing area alone (no remote source): a week with no file is no_source.
            made = runner.run(backfill())
            assert [(i.key, i.outcome) for i in made.items] == [
                (keys[1], "submitted"),
                (keys[2], "no_source"),
            ]
            wait_until(lambda: _completed(conn, 3))
        assert _states(runner, database_url, FINRA_ATS_WEEKLY, keys) == ["loaded", "loaded", "late"]
        assert _states(runner, database_url, FINRA_OTC_WEEKLY, keys[:2]) == ["loaded", "late"]
        again = _scan(runner, database_url, FINRA_ATS_WEEKLY)
        assert (again.files, again.submitted) == (2, [])
    lineage = conn.execute(
        "SELECT dataset, partition_key, source_path FROM dataset_materializations ORDER BY 1, 2"
    ).fetchall()
    assert [(r["dataset"], r["partition_key"], r["source_path"]) for r in lineage] == [
        ("finra_ats_weekly", keys[0], f"finra/finra_ats_weekly_otc_{first:%Y%m%d}.csv"),
        ("finra_ats_weekly", keys[1], f"finra/{ats_second.name}"),
        ("finra_otc_weekly", keys[0], f"finra/{WEEK_FILES[first].name}"),
    ]
    stored = conn.execute(
        "SELECT week_start, venue_kind, count(*) AS n FROM finra_weekly_volume GROUP BY 1, 2"
        " ORDER BY 1, 2"
    ).fetchall()
    assert [(r["week_start"], r["venue_kind"], r["n"]) for r in stored] == [
        (first, "ats", len(ats_lines(WEEK_FILES[first]))),
        (first, "non_ats", len(read_file(WEEK_FILES[first]))),
        (second, "ats", len(ats_lines(WEEK_FILES[second]))),
    ]
