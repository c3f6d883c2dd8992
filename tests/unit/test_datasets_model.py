"""Datasets as declared: partition keys by scheme, freshness, landing patterns, the catalog."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.catalog import DOMAINS
from app.engine.datasets import Dataset, DatasetCatalog, Freshness, Partition, Upstream
from app.engine.landing import LandingPattern
from app.finra.datasets import FINRA_OTC_WEEKLY
from app.finra.tiers import tier_id


def _params(p: Partition, path: str | None) -> dict[str, Any]:
    return {"day": p.start.isoformat()}


def _dataset(**kw: Any) -> Dataset:
    base: dict[str, Any] = {
        "name": "t",
        "description": "test",
        "scheme": "day",
        "pipeline": "noop",
        "params": _params,
        "start": date(2026, 1, 5),
    }
    return Dataset(**{**base, **kw})


def test_keys_of_each_scheme() -> None:
    days = _dataset().partitions(date(2026, 1, 8), date(2026, 1, 13))
    assert [p.key for p in days] == ["2026-01-08", "2026-01-09", "2026-01-12", "2026-01-13"]
    weeks = FINRA_OTC_WEEKLY.partitions(date(2025, 12, 15), date(2025, 12, 22))
    assert [p.key for p in weeks] == [
        "2025-12-15/OTC", "2025-12-15/T1", "2025-12-15/T2",
        "2025-12-22/OTC", "2025-12-22/T1", "2025-12-22/T2",
    ]  # fmt: skip
    only_otc = FINRA_OTC_WEEKLY.partitions(date(2025, 12, 15), date(2025, 12, 29), key2="otc")
    assert [p.key for p in only_otc] == ["2025-12-15/OTC", "2025-12-22/OTC", "2025-12-29/OTC"]
    halves = _dataset(scheme="half_month", start=date(2022, 12, 1))
    keys = [p.key for p in halves.partitions(date(2022, 12, 1), date(2023, 2, 1))]
    assert keys == ["2022-12a", "2022-12b", "2023-01a", "2023-01b", "2023-02a"]
    assert halves.partition("2022-12b").last_day == date(2022, 12, 31)
    # The SEC's halves: `a` holds the 1st to the 14th, `b` the 15th to the month's end.
    assert halves.partition("2023-02a").last_day == date(2023, 2, 14)
    assert halves.partition("2022-12b").start == date(2022, 12, 15)
    assert [p.key for p in halves.partitions(date(2022, 12, 14), date(2022, 12, 15))] == [
        "2022-12a",
        "2022-12b",
    ]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("2025-12-16/OTC", "not a Monday"),
        ("2025-12-15", r"needs a second key: '2025-12-15' \(like 2025-12-15/OTC\)"),
        ("2025-12-15/T9", "unknown second key"),
        ("yesterday/OTC", "not a date"),
    ],
)
def test_bad_keys_say_what_is_wrong(key: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FINRA_OTC_WEEKLY.partition(key)


def test_finra_publication_delays_by_tier() -> None:
    otc = FINRA_OTC_WEEKLY.partition("2025-12-15/OTC")
    t1 = FINRA_OTC_WEEKLY.partition("2025-12-15/T1")
    week_end = datetime(2025, 12, 22, tzinfo=UTC)
    assert FINRA_OTC_WEEKLY.freshness.due_at(otc) == week_end + timedelta(weeks=4)
    assert FINRA_OTC_WEEKLY.freshness.due_at(t1) == week_end + timedelta(weeks=2)
    assert FINRA_OTC_WEEKLY.freshness.late_at(otc) == week_end + timedelta(weeks=4, days=1)
    assert FINRA_OTC_WEEKLY.params(otc, None) == {"week": "2025-12-15"}


def test_one_table_of_tier_names() -> None:
    assert [tier_id(n) for n in ("otc", "OTCE", "OTC", "NMS Tier 1", "t2")] == [
        "OTC", "OTC", "OTC", "T1", "T2",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown FINRA tier"):
        tier_id("Tier 3")


def test_the_committed_finra_files_match_the_pattern() -> None:
    pattern = LandingPattern(FINRA_OTC_WEEKLY)
    found = pattern.match("finra/finra_otc_weekly_otc_20251215.csv")
    assert found is not None and found.key == "2025-12-15/OTC"
    upper = pattern.match("finra/finra_otc_weekly_otc_20251222.CSV")
    assert upper is not None and upper.key == "2025-12-22/OTC"  # extensions in any case
    assert pattern.match("finra/finra_otc_weekly_OTC_20251215.csv") is None  # case as written
    assert pattern.match("finra/finra_otc_weekly_otc_20251216.csv") is None  # not a Monday
    assert pattern.match("finra/finra_otc_weekly_otc_20251215.csv.bak") is None
    assert pattern.match("other/finra_otc_weekly_otc_20251215.csv") is None


def test_half_month_pattern() -> None:
    ftd = _dataset(
        scheme="half_month", start=date(2022, 12, 1), landing="ftd/cnsfails{d:%Y%m}{half}.txt"
    )
    pattern = LandingPattern(ftd)
    found = pattern.match("ftd/cnsfails202212b.TXT")
    assert found is not None and found.key == "2022-12b"


def test_freshness_default_is_the_period_end() -> None:
    p = _dataset(freshness=Freshness(grace=timedelta(hours=2))).partition("2026-01-09")
    assert Freshness().due_at(p) == datetime(2026, 1, 10, tzinfo=UTC)


def test_catalog_maps_downstream_partitions() -> None:
    up = _dataset(name="up", key2=("A", "B"))
    same = _dataset(name="same", key2=("A", "B"), upstreams=(Upstream("up"),))
    by_date = _dataset(name="by_date", upstreams=(Upstream("up", "all_keys_of_date"),))
    catalog = DatasetCatalog([up, same, by_date])
    assert [(d.name, k) for d, k in catalog.downstream_keys("up", "2026-01-05/A")] == [
        ("same", "2026-01-05/A"), ("by_date", "2026-01-05"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown upstream"):
        DatasetCatalog([same])
    with pytest.raises(LookupError, match="unknown dataset 'nope'"):
        catalog.get("nope")


def test_the_app_declares_its_datasets_through_the_domains() -> None:
    assert "finra_otc_weekly" in DOMAINS.datasets()


def test_a_landing_pattern_may_name_its_second_key() -> None:
    from app.engine.landing import LandingPattern
    from app.regsho.datasets import REGSHO_DAILY

    pattern = LandingPattern(REGSHO_DAILY)  # regsho/{market}shvol{date:%Y%m%d}.txt
    found = pattern.match("regsho/FNSQshvol20200102.TXT")
    assert found is not None and found.key == "2020-01-02/FNSQ"
    assert pattern.match("regsho/XXXXshvol20200102.txt") is None


def test_the_partitions_document_is_made_once_a_day_and_says_which_days_were_closed() -> None:
    import json
    from zoneinfo import ZoneInfo

    from app.engine.dataset_reads import upto_today_doc

    tz = ZoneInfo("America/New_York")
    trading = _dataset(name="closed_days", start=date(2026, 1, 15), trading_days=True)
    monday = datetime(2026, 1, 19, 20, tzinfo=UTC)  # Martin Luther King Jr. Day
    first = upto_today_doc(trading, monday, tz)
    assert upto_today_doc(trading, monday + timedelta(hours=1), tz) is first  # kept
    rows = json.loads(first)
    assert [(r["key"], r["closed"]) for r in rows] == [
        ("2026-01-15", False),
        ("2026-01-16", False),
        ("2026-01-19", True),
    ]
    assert rows[0]["due_at"] == "2026-01-16T00:00:00-05:00"  # the day's end, market time
    tuesday = upto_today_doc(trading, monday + timedelta(days=1), tz)
    assert [r["key"] for r in json.loads(tuesday)][-1] == "2026-01-20"  # a new day, remade
    # Another dataset object of the same name (here: not on trading days) has its own.
    twin = _dataset(name="closed_days", start=date(2026, 1, 15))
    assert all(not r["closed"] for r in json.loads(upto_today_doc(twin, monday, tz)))


def test_second_keys_are_declared_in_text_order() -> None:
    """A page's cursor compares keys as text, so the declared order must be the text's."""
    with pytest.raises(ValueError, match="second keys must be distinct and in text order"):
        _dataset(key2=("b", "A"))
    with pytest.raises(ValueError, match="second keys must be distinct"):
        _dataset(key2=("A", "A"))
