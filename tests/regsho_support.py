"""Reg SHO test helpers: the committed files, and an independent computation straight
from them (Python `csv` and exact Fractions, rounded half up like round(numeric))."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from tests.finra_support import rounded

ROOT = Path(__file__).resolve().parent.parent
REGSHO_DIR = ROOT / "data" / "regsho"
DAYS = (date(2020, 1, 2), date(2020, 1, 3), date(2020, 1, 6), date(2020, 1, 7))
MARKETS = ("CNMS", "FNQC", "FNRA", "FNSQ", "FNYX", "FORF")
FACILITIES = ("FNQC", "FNRA", "FNSQ", "FNYX", "FORF")
NMS = ("FNQC", "FNRA", "FNSQ", "FNYX")
HEADER = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"

Volumes = tuple[int, int, int]  # short, short-exempt, total


def path_of(day: date, market: str) -> Path:
    return REGSHO_DIR / f"{market}shvol{day:%Y%m%d}.txt"


def read_file(day: date, market: str) -> dict[str, Volumes]:
    """The file's rows by symbol (the trailer dropped), as published."""
    with path_of(day, market).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="|"))
    header, data, trailer = rows[0], rows[1:-1], rows[-1]
    assert "|".join(header) == HEADER and trailer == [str(len(data))]
    return {r[1]: (int(r[2]), int(r[3]), int(r[4])) for r in data}


def summed(day: date, markets: tuple[str, ...]) -> dict[str, Volumes]:
    """Per symbol, the volumes of `markets`' files summed."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for market in markets:
        for symbol, volumes in read_file(day, market).items():
            for i, v in enumerate(volumes):
                out[symbol][i] += v
    return {s: (v[0], v[1], v[2]) for s, v in out.items()}


def ratio(short: int, total: int) -> Decimal | None:
    return rounded(Fraction(100 * short, total), 4) if total else None


def history(symbol: str, markets: tuple[str, ...] = FACILITIES) -> list[dict[str, object]]:
    """The symbol's rows on the four days with the 5-day volume-weighted ratio and the change
    in points, computed here (every day is loaded, so the loaded days are DAYS)."""
    by_day = [summed(day, markets).get(symbol) for day in DAYS]
    out: list[dict[str, object]] = []
    for i, (day, row) in enumerate(zip(DAYS, by_day, strict=True)):
        if row is None:
            continue
        window = [r for r in by_day[max(0, i - 4) : i + 1] if r is not None]
        short_5d, total_5d = sum(r[0] for r in window), sum(r[2] for r in window)
        prev = by_day[i - 1] if i else None
        change = None
        if prev is not None and prev[2] and row[2]:
            exact = Fraction(100 * row[0], row[2]) - Fraction(100 * prev[0], prev[2])
            change = rounded(abs(exact), 4) * (1 if exact >= 0 else -1)
        out.append(
            {
                "date": day.isoformat(),
                "short_volume": row[0],
                "short_exempt_volume": row[1],
                "total_volume": row[2],
                "short_ratio_pct": ratio(row[0], row[2]),
                "short_ratio_avg_5d_pct": ratio(short_5d, total_5d),
                "ratio_change_pp": change,
            }
        )
    return out
