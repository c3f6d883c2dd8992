"""The shared rules of the data domains: migration ranges, symbols, dates and weeks."""

from __future__ import annotations

import re
from datetime import date

import pytest

from app.catalog import DOMAINS
from app.dates import is_week_start, monday, parse_date, range_problem
from app.domains import Catalog, Domain
from app.finra import keys
from app.migrations import discover
from app.otc.symbols import normalize_symbol
from app.symbols import InvalidSymbol, SymbolRule


def test_every_migration_is_in_its_owners_range() -> None:
    """Core 001-009 and 100 up; each domain its ten, and its name in the file's."""
    for migration in discover():
        number = int(migration.name[:3])
        owner = DOMAINS.owner_of_migration(number)
        assert owner is not None, f"{migration.name}: {number:03d} is in no range"
        assert migration.name[4:].startswith(f"{owner}_"), migration.name


def test_the_domains_ranges() -> None:
    assert [(d.name, d.migrations) for d in DOMAINS] == [
        ("otc", range(10, 20)),
        ("finra", range(20, 30)),
        ("regsho", range(30, 40)),
        ("ftd", range(40, 50)),
    ]
    assert DOMAINS.next_migration_range() == range(50, 60)
    assert DOMAINS.owner_of_migration(100) == "core"
    assert DOMAINS.owner_of_migration(30) == "regsho"
    assert DOMAINS.owner_of_migration(40) == "ftd"
    assert DOMAINS.owner_of_migration(50) is None


def _domain(name: str, first: int) -> Domain:
    return Domain(
        name=name, package=f"x.{name}", description="", migrations=range(first, first + 10)
    )


def test_a_catalog_refuses_shared_ranges_and_names() -> None:
    with pytest.raises(ValueError, match="share migrations"):
        Catalog(_domain("a", 30), _domain("b", 30))
    with pytest.raises(ValueError, match="listed twice"):
        Catalog(_domain("a", 30), _domain("a", 40))
    with pytest.raises(ValueError, match="range of ten"):
        _domain("c", 100)
    with pytest.raises(ValueError, match="range of ten"):
        Domain(name="d", package="x.d", description="", migrations=range(35, 45))


def test_symbols_follow_one_mechanism_with_each_domains_rule() -> None:
    assert normalize_symbol("acme") == "ACME"
    assert keys.symbol_key("fnma") == "FNMA"
    assert keys.symbol_key("A" * 16) == "A" * 16
    with pytest.raises(InvalidSymbol, match=re.escape("is not a symbol: 1-12 of A-Z 0-9 . -")):
        normalize_symbol("A" * 13)
    with pytest.raises(ValueError, match="'A_B' is not a symbol"):
        keys.symbol_key("A_B")
    exact = SymbolRule(
        alphabet="A-Za-z0-9./-", max_length=16, described="A-Z a-z 0-9 . / -", case_sensitive=True
    )
    assert exact.key("CpK") != exact.key("CPK")
    assert exact.key("BRK/A") == "BRK/A"
    assert "case-sensitive" in exact.help
    with pytest.raises(InvalidSymbol):
        exact.key("C K")


def test_dates_and_weeks() -> None:
    assert parse_date("2025-12-15") == date(2025, 12, 15)
    with pytest.raises(ValueError, match="'x' is not a date"):
        parse_date("x")
    assert monday("2025-12-15") == date(2025, 12, 15)
    assert is_week_start(date(2025, 12, 15))
    with pytest.raises(ValueError, match="2025-12-16 is not a Monday"):
        monday("2025-12-16")
    with pytest.raises(ValueError, match="week '2025-13-01' is not a date"):
        monday("2025-13-01")
    assert range_problem(date(2026, 1, 2), date(2026, 1, 1)) is not None
    assert range_problem(date(2026, 1, 1), date(2026, 1, 1)) is None
    assert range_problem(None, date(2026, 1, 1)) is None
