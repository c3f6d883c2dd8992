"""The FTD ingest on small files: trailers refuse a file whole, each bad line is rejected with
its reason, `.` prices stay unknown, a republished half-month replaces its rows."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.config import get_settings
from app.files import InvalidInputFile
from app.ftd.pipelines import ingest_file
from tests.finra_support import Loader, open_loader
from tests.ftd_support import ftd_file
from tests.support import run_inline

Conn = psycopg.Connection[dict[str, Any]]
GOOD = [
    "20230103|B38564108|EURN|41466|EURONAV NV ANTWERPEN (BELGIUM)|17.04",
    "20230103|C00948106|AGRI|120|AGRIFORCE GROWING SYS LTD COM |1.13",
    "20230104|037833100|AAPL|300|APPLE INC|.",
    "20230113|98987D110|ZVSAW|19|ZYVERSA THERAPEUTICS INC WT EX|0.07",
]


class FtdLoader:
    """ingest_file on the test's pool, for files written under the test's directory."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def ingest(self, path: Path, period: str | None = None, execution: str = "") -> dict[str, Any]:
        return self.loader.runner.run(
            ingest_file(
                self.loader.pool,
                execution_id=execution or f"exec-{path.name}-{id(path)}",
                path=path,
                source_file=path.name,
                period=period,
            )
        )


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[FtdLoader]:
    for inner in open_loader(database_url, tmp_path):
        yield FtdLoader(inner)


def stored(conn: Conn) -> list[tuple[Any, ...]]:
    return [
        tuple(r.values())
        for r in conn.execute(
            "SELECT settlement_date::text, cusip, symbol, quantity, description, price "
            "FROM ftd_fails ORDER BY settlement_date, cusip"
        ).fetchall()
    ]


def nothing_written(conn: Conn) -> bool:
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM ftd_fails) + (SELECT count(*) FROM ftd_loads) "
        "+ (SELECT count(*) FROM ftd_periods) + (SELECT count(*) FROM ftd_rejects) AS n"
    ).fetchone()
    return counts is not None and counts["n"] == 0


def test_a_clean_file_loads_as_published(loader: FtdLoader, conn: Conn, tmp_path: Path) -> None:
    path = ftd_file(
        tmp_path / "cnsfails202301a.txt", [*GOOD, "20230105|12345X106|CpK|7|X  Y  |12."]
    )
    summary = loader.ingest(path)
    assert summary["period"] == "2023-01a"
    assert (summary["rows_read"], summary["inserted"], summary["rejected"]) == (5, 5, 0)
    assert summary["rejects_by_reason"] == {}
    assert summary["trailer_record_count"] == summary["loaded_rows"] == 5
    assert summary["trailer_total_quantity"] == summary["loaded_quantity"] == 41912
    assert summary["db_seconds"] > 0
    rows = stored(conn)
    assert rows[1][2:] == ("AGRI", 120, "AGRIFORCE GROWING SYS LTD COM", Decimal("1.13"))
    assert rows[2][5] is None  # `.`: unknown, never zero
    assert str(rows[0][5]) == "17.04"  # the price as published, scale kept
    assert rows[3][2:] == ("CpK", 7, "X  Y", 12)


def test_the_symbol_keeps_its_case_and_the_description_only_loses_trailing_spaces(
    loader: FtdLoader, conn: Conn, tmp_path: Path
) -> None:
    lines = [
        "20230103|037833100|CpK| 5| A  B  |1.50",
        "20230103|B38564108|CPK|6|  LEAD|2",
    ]
    summary = loader.ingest(ftd_file(tmp_path / "x.txt", lines), period="2023-01a")
    assert summary["rejects_by_reason"] == {"bad_quantity": 1}  # ' 5' is not a number
    lines[0] = "20230103|037833100|CpK|5| A  B  |1.50"
    loader.ingest(ftd_file(tmp_path / "y.txt", lines), period="2023-01a", execution="again")
    assert [(r[2], r[4]) for r in stored(conn)] == [("CpK", " A  B"), ("CPK", "  LEAD")]


def test_each_bad_line_is_rejected_with_its_reason_and_the_counts_add_up(
    loader: FtdLoader, conn: Conn, tmp_path: Path
) -> None:
    bad = {
        "wrong_column_count": "20230103|B38564108|EURN|5|EURONAV",
        "bad_date": "20230132|B38564108|EURN|5|EURONAV|1.00",
        "date_outside_period": "20230115|B38564108|EURN|5|EURONAV|1.00",
        "bad_cusip": "20230105|B3856410|EURN|5|EURONAV|1.00",
        "cusip_check_digit": "20230105|B38564109|EURN|5|EURONAV|1.00",
        "negative_quantity": "20230106|B38564108|EURN|-5|EURONAV|1.00",
        "bad_quantity": "20230109|B38564108|EURN|5x|EURONAV|1.00",
        "bad_price": "20230110|B38564108|EURN|5|EURONAV|1.0.0",
        "duplicate_key": "20230103|B38564108|EURN|9|EURONAV AGAIN|2.00",
        "empty_line": "",
    }
    lines = [*GOOD, *bad.values()]
    summary = loader.ingest(ftd_file(tmp_path / "cnsfails202301a.txt", lines))
    assert summary["rejects_by_reason"] == dict.fromkeys(bad, 1)
    assert summary["rows_read"] == len(lines) == summary["trailer_record_count"]
    assert summary["inserted"] + summary["changed"] + summary["unchanged"] == len(GOOD)
    assert summary["rows_read"] == summary["inserted"] + summary["rejected"]
    rejects = conn.execute("SELECT line_no, reason, line FROM ftd_rejects ORDER BY line_no")
    assert [(r["reason"], r["line"]) for r in rejects.fetchall()] == [
        (reason, line or None) for reason, line in bad.items()
    ]
    assert stored(conn)[0][3] == 41466  # the first line of a duplicate key is kept


@pytest.mark.parametrize(("count", "total"), [(1, 0), (-1, 0), (0, 1), (0, -1)])
def test_a_trailer_off_by_one_refuses_the_file_whole(
    loader: FtdLoader, conn: Conn, tmp_path: Path, count: int, total: int
) -> None:
    right = sum(int(line.split("|")[3]) for line in GOOD)
    path = ftd_file(
        tmp_path / "cnsfails202301a.txt", GOOD, count=len(GOOD) + count, total=right + total
    )
    with pytest.raises(InvalidInputFile, match="refused whole"):
        loader.ingest(path)
    assert nothing_written(conn)


@pytest.mark.parametrize(
    "tail",
    [
        [],
        ["Trailer record count 4"],
        ["Trailer total quantity of shares 41905", "Trailer record count 4"],
        ["Trailer record count 4", "Trailer total quantity of shares 41905", "20230103|X"],
    ],
)
def test_missing_or_misplaced_trailers_refuse_the_file(
    loader: FtdLoader, conn: Conn, tmp_path: Path, tail: list[str]
) -> None:
    path = tmp_path / "cnsfails202301a.txt"
    header = "SETTLEMENT DATE|CUSIP|SYMBOL|QUANTITY (FAILS)|DESCRIPTION|PRICE"
    path.write_text("\n".join([header, *GOOD, *tail]) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputFile, match="does not end with its two trailers"):
        loader.ingest(path)
    assert nothing_written(conn)


def test_blank_lines_after_the_trailers_and_crlf_are_accepted(
    loader: FtdLoader, conn: Conn, tmp_path: Path
) -> None:
    path = ftd_file(tmp_path / "cnsfails202301a.TXT", GOOD)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n\r\n")
    assert loader.ingest(path)["inserted"] == len(GOOD)


def test_a_republished_half_month_replaces_its_rows_with_counts(
    loader: FtdLoader, conn: Conn, tmp_path: Path
) -> None:
    first = loader.ingest(ftd_file(tmp_path / "cnsfails202301a.txt", GOOD), execution="first")
    assert first["inserted"] == len(GOOD)
    again = [
        GOOD[0].replace("|41466|", "|41467|"),
        GOOD[1],
        GOOD[3],
        "20230112|78462F103|SPY|5|SPDR|398.50",
    ]
    second = loader.ingest(ftd_file(tmp_path / "cnsfails202301a.txt", again), execution="second")
    assert {k: second[k] for k in ("inserted", "changed", "removed", "unchanged", "rejected")} == {
        "inserted": 1,
        "changed": 1,
        "removed": 1,
        "unchanged": 2,
        "rejected": 0,
    }
    assert [r[1] for r in stored(conn)] == ["B38564108", "C00948106", "78462F103", "98987D110"]
    periods = conn.execute("SELECT period, load_id FROM ftd_periods").fetchall()
    assert periods == [{"period": "2023-01a", "load_id": second["load_id"]}]
    history = conn.execute(
        "SELECT partition_key, inserted, changed, removed, unchanged FROM dataset_materializations "
        "WHERE dataset = 'sec_ftd' ORDER BY id"
    ).fetchall()
    assert [tuple(h.values()) for h in history] == [
        ("2023-01a", 4, 0, 0, 0),
        ("2023-01a", 1, 1, 1, 2),
    ]


def test_two_cusips_under_one_symbol_count_as_the_symbol_on_the_list(
    loader: FtdLoader, tmp_path: Path
) -> None:
    from app.ftd import reads

    lines = [
        "20230103|B38564108|TWO|10|A|1.00",
        "20230104|C00948106|TWO|20|B|.",
        "20230104|B38564108|TWO|5|A|2.00",
        "20230105|037833100|OTHER|1|C|1.00",
        "20230106|C00948106|TWO|1|B|3.00",
    ]
    loader.ingest(ftd_file(tmp_path / "cnsfails202301a.txt", lines))
    history = loader.loader.read(lambda c: reads.symbol_history(c, "TWO"))
    assert [
        (str(h.settlement_date), h.cusips, h.quantity, h.fail_value, h.consecutive_days)
        for h in history
    ] == [
        ("2023-01-03", ["B38564108"], 10, 10, 1),
        ("2023-01-04", ["B38564108", "C00948106"], 25, None, 2),  # a price unknown: no value
        ("2023-01-06", ["C00948106"], 1, 3, 1),  # 01-05 is a loaded date without TWO
    ]
    runs = loader.loader.read(lambda c: reads.cusip_history(c, "B38564108"))
    assert [(r.symbol, r.settlement_dates) for r in runs] == [("TWO", 2)]


async def test_a_refused_file_is_a_permanent_failure(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SPINE_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()
    (tmp_path / "ftd").mkdir()
    ftd_file(tmp_path / "ftd" / "cnsfails202301a.txt", GOOD, count=len(GOOD) + 1)
    done = await run_inline(database_url, "sec_ftd_ingest", {"file": "ftd/cnsfails202301a.txt"})
    assert done.status == "failed" and done.attempt == 1
    assert done.error is not None and "trailers state 5 records" in done.error
