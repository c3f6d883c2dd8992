"""Prometheus: spine_dataset_partitions{dataset,state}, spine_dataset_freshness_lag_seconds,
spine_backfill_partitions{state} and spine_schedule_slots_skipped_total{schedule}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import db
from app.config import get_settings
from app.finra.pipelines import ingest_file
from tests.api_support import api_client
from tests.finra_support import WEEK_FILES

Conn = psycopg.Connection[dict[str, Any]]


def _samples(text: str, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(s.labels[k] for k in labels)] = s.value
    return found


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("SPINE_DATA_DIR", str(root))
    get_settings.cache_clear()
    return root


async def test_the_datasets_numbers_are_scraped(
    landing: Path, database_url: str, conn: Conn
) -> None:
    week = sorted(WEEK_FILES)[0]
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        await ingest_file(pool, execution_id="x", path=WEEK_FILES[week], source_file="w.csv")
    finally:
        await pool.close()
    async with api_client() as client:
        made = await client.post(
            "/api/v1/datasets/otc_metrics_daily/backfills",
            json={"from": "2026-01-05", "to": "2026-01-07", "only": "all"},
        )
        assert made.status_code == 201, made.text
        schedule = await client.post(
            "/api/v1/schedules", json={"name": "nightly", "pipeline": "noop", "cron": "0 2 * * *"}
        )
        assert schedule.status_code == 201, schedule.text
        conn.execute(
            "INSERT INTO schedule_skips (schedule_id, first_slot, last_slot, slots, reason)"
            " SELECT id, now() - interval '2 days', now() - interval '1 day', 2, 'pools down'"
            " FROM schedules WHERE name = 'nightly'"
        )
        text = (await client.get("/metrics")).text
    parts = _samples(text, "spine_dataset_partitions", "dataset", "state")
    assert parts[("finra_otc_weekly", "loaded")] == 1
    assert parts[("finra_otc_weekly", "late")] > 0  # every later week and tier is past due
    assert parts[("otc_metrics_daily", "pending")] == 3
    lag = _samples(text, "spine_dataset_freshness_lag_seconds", "dataset")
    assert lag[("finra_otc_weekly",)] > 0
    assert _samples(text, "spine_backfill_partitions", "state") == {("pending",): 3}
    skipped = _samples(text, "spine_schedule_slots_skipped_total", "schedule")
    assert skipped == {("nightly",): 2}
