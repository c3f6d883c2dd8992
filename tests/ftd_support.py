"""FTD test helpers: the real files, a module's own loaded database, and an independent
computation of the analytics straight from the files (Python `csv` and `Decimal`)."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from app.config import get_settings
from tests.conftest import SERVER_ENV, TEMPLATE_ENV

ROOT = Path(__file__).resolve().parent.parent
FTD_DIR = ROOT / "data" / "ftd"
FILES = {
    "2022-12a": FTD_DIR / "cnsfails202212a.TXT",
    "2022-12b": FTD_DIR / "cnsfails202212b.TXT",
    "2023-01a": FTD_DIR / "cnsfails202301a.txt",
    "2023-01b": FTD_DIR / "cnsfails202301b.txt",
    "2023-02a": FTD_DIR / "cnsfails202302a.txt",
}
HEADER = "SETTLEMENT DATE|CUSIP|SYMBOL|QUANTITY (FAILS)|DESCRIPTION|PRICE"


@dataclass(frozen=True)
class Row:
    settlement_date: date
    cusip: str
    symbol: str
    quantity: int
    description: str
    price: Decimal | None

    @property
    def value(self) -> Decimal | None:
        return None if self.price is None else self.quantity * self.price


@dataclass(frozen=True)
class File:
    rows: list[Row]
    trailer_count: int
    trailer_total: int


def read_file(path: Path) -> File:
    """The file's data rows and its trailers, read with `csv` (every real line is valid)."""
    with path.open(newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f, delimiter="|"))
    assert "|".join(lines[0]) == HEADER
    count_line, total_line = lines[-2][0], lines[-1][0]
    rows = [
        Row(
            settlement_date=datetime.strptime(r[0], "%Y%m%d").date(),
            cusip=r[1],
            symbol=r[2],
            quantity=int(r[3]),
            description=r[4].rstrip(" "),
            price=None if r[5] == "." else Decimal(r[5]),
        )
        for r in lines[1:-2]
    ]
    return File(
        rows=rows,
        trailer_count=int(count_line.removeprefix("Trailer record count ")),
        trailer_total=int(total_line.removeprefix("Trailer total quantity of shares ")),
    )


def top_by_value(rows: list[Row], day: date, n: int) -> list[Row]:
    """A date's rows by value descending (an unknown value last), then CUSIP."""
    mine = [r for r in rows if r.settlement_date == day]
    return sorted(mine, key=lambda r: (-(r.value if r.value is not None else -1), r.cusip))[:n]


def consecutive_days(rows: list[Row], symbol: str, day: date) -> int:
    """The settlement dates present anywhere, in order; count back from `day` while the
    symbol (any CUSIP of it) is on the list."""
    dates = sorted({r.settlement_date for r in rows})
    on = {r.settlement_date for r in rows if r.symbol == symbol}
    count = 0
    for d in reversed(dates[: dates.index(day) + 1]):
        if d not in on:
            break
        count += 1
    return count


@dataclass(frozen=True)
class Persistent:
    cusip: str
    days: int
    total_quantity: int
    max_quantity: int
    max_value: Decimal | None


def persistent(rows: list[Row], min_days: int) -> list[Persistent]:
    """A period's CUSIPs on at least `min_days` dates: most days, most shares, then CUSIP."""
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by[r.cusip].append(r)
    found = [
        Persistent(
            cusip=c,
            days=len(rs),
            total_quantity=sum(r.quantity for r in rs),
            max_quantity=max(r.quantity for r in rs),
            max_value=max((r.value for r in rs if r.value is not None), default=None),
        )
        for c, rs in by.items()
        if len(rs) >= min_days
    ]
    return sorted(found, key=lambda p: (-p.days, -p.total_quantity, p.cusip))


@contextmanager
def module_database() -> Iterator[str]:
    """A database of the module's own, cloned from the migrated template; DATABASE_URL and
    SPINE_DATA_DIR point at it and at data/ while it lives (the `database_url` fixture's
    work, for a module that loads once and reads many times)."""
    server, template = os.environ[SERVER_ENV], os.environ[TEMPLATE_ENV]
    run = template.removeprefix("spine_tpl_")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    name = f"spine_t_{run}_{worker}_{os.getpid()}_ftd"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_conninfo(server, dbname=name)
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "SPINE_DATA_DIR")}
    os.environ["DATABASE_URL"] = url
    os.environ["SPINE_DATA_DIR"] = str(ROOT / "data")
    get_settings.cache_clear()
    try:
        yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ftd_file(
    path: Path, lines: list[str], *, count: int | None = None, total: int | None = None
) -> Path:
    """A file in the SEC's format with `lines` as its data lines and trailers that match
    them (or the `count` and `total` given)."""
    quantities = []
    for line in lines:
        fields = line.split("|")
        text = fields[3] if len(fields) > 3 else ""
        if text.lstrip("-").isdigit():
            quantities.append(int(text))
    body = [HEADER, *lines]
    body.append(f"Trailer record count {len(lines) if count is None else count}")
    body.append(f"Trailer total quantity of shares {sum(quantities) if total is None else total}")
    path.write_text("".join(f"{line}\n" for line in body), encoding="utf-8")
    return path
