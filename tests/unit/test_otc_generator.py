"""The synthetic trades generator: deterministic, well-formed, and the committed sample."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from app.otc.connector import HEADER, is_plain_line
from app.otc.generator import SAMPLE_BAD_LINES, generate, trading_days, write_sample

ROOT = Path(__file__).resolve().parents[2]


def _text(**kwargs: object) -> str:
    out = io.StringIO()
    generate(out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert generate(first, 5_000, 6, 4, 42) == 5_000
    generate(second, 5_000, 6, 4, 42)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() == _text(rows=5_000, symbols=6, days=4, seed=42).encode()


def _ids(**kwargs: object) -> set[str]:
    return {line.split(",")[0] for line in _text(**kwargs).splitlines()[1:]}


def test_another_seed_or_start_date_never_reuses_trade_ids() -> None:
    base = {"rows": 500, "symbols": 3, "days": 3}
    one = _ids(**base, seed=1)
    assert not one & _ids(**base, seed=2)
    assert not one & _ids(**base, seed=1, start_date=date(2026, 1, 6))  # overlapping days
    sample_text = (ROOT / "data" / "otc_sample.csv").read_text()
    sample = {line.split(",")[0] for line in sample_text.splitlines()}
    assert not one & sample
    assert len(one) == 500


def test_one_id_prefix_and_another_seed_gives_corrections() -> None:
    one = _text(rows=500, symbols=3, days=2, seed=1, ids="X").splitlines()
    two = _text(rows=500, symbols=3, days=2, seed=2, ids="X").splitlines()
    assert one != two
    assert [line.split(",")[0] for line in one] == [line.split(",")[0] for line in two]


def test_shape_of_a_generated_file() -> None:
    text = _text(rows=3_001, symbols=12, days=3, seed=7, start_date=date(2026, 1, 9))
    lines = text.splitlines()
    assert lines[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3_001
    assert len({row["trade_id"] for row in rows}) == 3_001
    assert {row["symbol"] for row in rows} >= {"ACME"}
    assert len({row["symbol"] for row in rows}) == 12
    # Friday, then the next Monday and Tuesday: weekends are skipped.
    assert {row["trade_id"].startswith("G7.20260109-") for row in rows} == {True}
    days = {row["trade_id"][12:20] for row in rows}
    assert days == {"20260109", "20260112", "20260113"}
    assert {row["side"] for row in rows} == {"B", "S"}
    # Every generated line takes the connector's fast path (plainly valid).
    assert all(is_plain_line(line.encode()) for line in lines[1:])
    # Both UTC and market-offset timestamps, including after-hours trades on the next UTC day.
    assert any(row["executed_at"].endswith("Z") for row in rows)
    assert any(row["executed_at"].endswith("-05:00") for row in rows)
    assert any(row["executed_at"][:10] > "2026-01-09" and row["trade_id"][12:20] == "20260109"
               for row in rows)  # fmt: skip


def test_zero_rows_is_just_the_header() -> None:
    assert _text(rows=0, symbols=1, days=1, seed=1) == HEADER + "\n"


def test_trading_days_skip_weekends() -> None:
    assert trading_days(date(2026, 1, 3), 3) == [
        date(2026, 1, 5),
        date(2026, 1, 6),
        date(2026, 1, 7),
    ]


def test_committed_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    fresh = tmp_path / "otc_sample.csv"
    write_sample(fresh)
    committed = ROOT / "data" / "otc_sample.csv"
    assert committed.read_bytes() == fresh.read_bytes()
    text = committed.read_text()
    for bad in SAMPLE_BAD_LINES:
        assert bad in text
    days = {line.split(",")[0][1:9] for line in text.splitlines()[1:4001]}
    assert days == {"20260105", "20260106", "20260107", "20260108", "20260109"}
