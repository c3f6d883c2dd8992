"""FTD's declarations without a server: the landing pattern, periods, CUSIPs, the due date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.catalog import DOMAINS
from app.config import Settings, get_settings
from app.engine.landing import LandingPattern
from app.ftd import keys
from app.ftd.datasets import sec_ftd
from app.ftd.pipelines import IngestParams, period_of_name


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("ftd/cnsfails202212a.TXT", "2022-12a"),
        ("ftd/cnsfails202212b.txt", "2022-12b"),
        ("ftd/cnsfails202302a.Txt", "2023-02a"),
        ("ftd/cnsfails202212c.txt", None),
        ("ftd/cnsfails202212a.zip", None),
        ("ftd/cnsfails202211b.txt", None),  # before the dataset's start
    ],
)
def test_the_landing_pattern_takes_either_extension_case(path: str, key: str | None) -> None:
    found = LandingPattern(sec_ftd(14)).match(path)
    assert (found.key if found else None) == key


def test_a_partitions_params_name_its_period_and_file() -> None:
    dataset = sec_ftd(14)
    part = dataset.partition("2022-12b")
    assert dataset.params(part, "ftd/cnsfails202212b.TXT") == {
        "period": "2022-12b",
        "file": "ftd/cnsfails202212b.TXT",
    }
    assert part.start == date(2022, 12, 15) and part.last_day == date(2022, 12, 31)


def test_a_half_month_is_due_the_settings_days_after_it_ends() -> None:
    assert Settings().ftd_due_days == 14
    part = sec_ftd(14).partition("2022-12a")  # ends on the 14th
    assert sec_ftd(14).freshness.due_at(part) == datetime(2022, 12, 29, tzinfo=UTC)
    assert sec_ftd(3).freshness.due_at(part) == datetime(2022, 12, 18, tzinfo=UTC)


def test_the_period_comes_from_the_sec_name_or_the_params() -> None:
    assert period_of_name("ftd/cnsfails202301B.TXT") == "2023-01b"
    assert period_of_name("ftd/fails.txt") is None
    assert IngestParams(file="x.txt", period="2023-01a").period == "2023-01a"
    with pytest.raises(ValueError, match="pass the period"):
        IngestParams(file="x.txt")
    with pytest.raises(ValueError, match="month 13"):
        IngestParams(file="x.txt", period="2023-13a")


def test_cusips_and_symbols() -> None:
    assert keys.cusip_key("b38564108") == "B38564108"
    with pytest.raises(ValueError, match="not a CUSIP"):
        keys.cusip_key("B3856410")
    assert keys.SYMBOLS.key("CpK") == "CpK"  # as published: case-sensitive
    assert keys.period_dates("2023-02a") == (date(2023, 2, 1), date(2023, 2, 14))


def test_the_catalogs_dataset_takes_spine_ftd_due_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINE_FTD_DUE_DAYS", "3")
    get_settings.cache_clear()
    try:
        assert DOMAINS.datasets().get("sec_ftd").freshness.due_after == timedelta(days=3)
    finally:
        get_settings.cache_clear()
