"""Partition state in PostgreSQL: materializations recorded by real loads, states computed.

FINRA's real weekly files are loaded through finra_weekly_ingest's own code;
each load records its (week, tier) with the file's sha256, and a restatement
supersedes it with its inserted, changed and removed counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.engine import dataset_reads, executions, partitions
from app.engine.datasets import Dataset, DatasetCatalog, Partition, Upstream
from app.engine.executions import NewExecution
from app.engine.partitions import NewMaterialization, Source
from app.finra.datasets import FINRA_OTC_WEEKLY
from tests.finra_support import WEEK_FILES, Loader, open_loader

Conn = psycopg.Connection[dict[str, Any]]
AFTER_DEADLINES = datetime(2026, 2, 10, tzinfo=UTC)  # every tier of the three weeks is due


@pytest.fixture
def loader(database_url: str, tmp_path: Path) -> Iterator[Loader]:
    yield from open_loader(database_url, tmp_path)


def _states(loader: Loader, dataset: Dataset, keys: list[str], now: datetime) -> dict[str, str]:
    parts = [dataset.partition(k) for k in keys]

    async def read(conn: db.AsyncConn) -> list[partitions.PartitionRow]:
        return await partitions.states(conn, dataset, parts, now=now)

    return {r.key: r.state for r in loader.read(read)}


def test_finra_loads_record_their_weeks_and_restatements(loader: Loader, tmp_path: Path) -> None:
    weeks = sorted(WEEK_FILES)
    for week in weeks[:2]:
        loader.ingest(WEEK_FILES[week])
    keys = [f"{w}/OTC" for w in weeks] + [f"{weeks[2]}/T1"]
    assert _states(loader, FINRA_OTC_WEEKLY, keys, AFTER_DEADLINES) == {
        f"{weeks[0]}/OTC": "loaded",
        f"{weeks[1]}/OTC": "loaded",
        f"{weeks[2]}/OTC": "late",
        f"{weeks[2]}/T1": "late",
    }
    # Before FINRA's publication delay (4 weeks for OTC) the third week is not due yet.
    before = datetime(2026, 1, 20, tzinfo=UTC)
    assert _states(loader, FINRA_OTC_WEEKLY, keys[2:3], before) == {keys[2]: "not_due"}
    first = WEEK_FILES[weeks[0]]

    def lineage() -> list[partitions.Materialization]:
        async def read(conn: db.AsyncConn) -> list[partitions.Materialization]:
            return await partitions.materializations(conn, FINRA_OTC_WEEKLY.name, keys[0])

        return loader.read(read)

    (only,) = lineage()
    assert only.source_sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert (only.source_bytes, only.superseded_id) == (first.stat().st_size, None)
    assert only.inserted > 0 and only.content_changed

    # A doctored restatement: a later lastUpdateDate, one row changed, one dropped, one new.
    lines = first.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [r.replace("|2025-12-15", "|2025-12-19") for r in lines[1:]]
    fields = rows[0].split("|")
    fields[5] = str(int(fields[5]) + 1)
    new_row = "OTC|ZZZZ|Made Up Inc|NEW VENUE|ZZZZ|10|1|2025-12-19"
    restated = loader.write("restated.csv", ["|".join(fields), *rows[2:], new_row], header)
    loader.ingest(restated, week=weeks[0])
    newest, older = lineage()
    assert (newest.inserted, newest.changed, newest.removed) == (1, 1, 1)
    assert newest.superseded_id == older.id == only.id
    assert newest.source_sha256 == hashlib.sha256(restated.read_bytes()).hexdigest()


def _dataset(name: str, *upstreams: Upstream, key2: tuple[str, ...] = ()) -> Dataset:
    return Dataset(
        name=name,
        description=name,
        scheme="day",
        pipeline="noop",
        params=lambda p, path: {},
        start=date(2026, 1, 5),
        key2=key2,
        upstreams=upstreams,
    )


UP = _dataset("up", key2=("A", "B"))
SAME = _dataset("same", Upstream("up"), key2=("A", "B"))
BY_DATE = _dataset("by_date", Upstream("up", "all_keys_of_date"))
TRADING = dataclasses.replace(_dataset("trading"), trading_days=True)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _pending(loader: Loader, dataset: str, keys: list[str]) -> list[Any]:
    """A pending execution holding each partition's logical key, in order."""

    async def insert(conn: db.AsyncConn) -> list[Any]:
        new = [
            NewExecution(
                id=executions.new_id(),
                pipeline="noop",
                params={},
                lane="backfill",
                trigger_source="test",
                logical_key=f"dataset:{dataset}:{key}",
                max_attempts=1,
                retry_backoff_seconds=0,
            )
            for key in keys
        ]
        return await executions.insert_many(conn, new)

    return loader.read(insert)


def _record(loader: Loader, dataset: str, key: str, **kw: Any) -> partitions.Recorded:
    async def write(conn: db.AsyncConn) -> list[partitions.Recorded]:
        return await partitions.record(
            conn, [NewMaterialization(dataset=dataset, key=key, execution_id=None, **kw)]
        )

    (done,) = loader.read(write)
    return done


def test_a_changed_upstream_makes_exactly_its_mapped_partitions_stale(loader: Loader) -> None:
    for key in ("2026-01-05/A", "2026-01-05/B", "2026-01-06/A"):
        _record(loader, "up", key, inserted=3, source=Source(sha256="one"))
    for key in ("2026-01-05/A", "2026-01-05/B", "2026-01-06/A"):
        _record(loader, "same", key, inserted=3)
    for key in ("2026-01-05", "2026-01-06"):
        _record(loader, "by_date", key, inserted=3)
    same_keys = ["2026-01-05/A", "2026-01-05/B", "2026-01-06/A"]
    assert set(_states(loader, SAME, same_keys, NOW).values()) == {"loaded"}

    # The same file again, nothing changed: nothing turns stale.
    again = _record(loader, "up", "2026-01-05/B", unchanged=3, source=Source(sha256="one"))
    assert not again.content_changed
    assert set(_states(loader, SAME, same_keys, NOW).values()) == {"loaded"}

    changed = _record(loader, "up", "2026-01-05/A", changed=1, source=Source(sha256="two"))
    assert changed.content_changed and changed.superseded_id is not None
    assert _states(loader, SAME, same_keys, NOW) == {
        "2026-01-05/A": "stale", "2026-01-05/B": "loaded", "2026-01-06/A": "loaded",
    }  # fmt: skip
    assert _states(loader, BY_DATE, ["2026-01-05", "2026-01-06"], NOW) == {
        "2026-01-05": "stale", "2026-01-06": "loaded",
    }  # fmt: skip
    # Re-materialized after the change: loaded again.
    _record(loader, "same", "2026-01-05/A", unchanged=3)
    assert _states(loader, SAME, same_keys[:1], NOW) == {"2026-01-05/A": "loaded"}


def test_executions_by_logical_key_make_pending_running_failed(loader: Loader, conn: Conn) -> None:
    keys = ["2026-01-05/A", "2026-01-06/A", "2026-01-07/A", "2026-01-08/A"]

    made = _pending(loader, "up", keys[:3])
    # The engine's own transitions are tested elsewhere; here only the statuses matter.
    conn.execute(
        "UPDATE executions SET status = 'running', worker_id = 'w' WHERE id = %s", (made[1].id,)
    )
    conn.execute("UPDATE executions SET status = 'failed' WHERE id = %s", (made[2].id,))
    _record(loader, "up", keys[3], inserted=1)
    assert _states(loader, UP, keys, NOW) == {
        keys[0]: "pending", keys[1]: "running", keys[2]: "failed", keys[3]: "loaded",
    }  # fmt: skip
    # A materialization after the failure wins; no_data is the publisher's "none".
    _record(loader, "up", keys[2], inserted=1)
    _record(loader, "up", keys[3], outcome="no_data")
    assert _states(loader, UP, keys[2:], NOW) == {keys[2]: "loaded", keys[3]: "no_data"}


def test_missing_and_late_follow_the_clock(loader: Loader) -> None:
    key = "2026-01-09/A"  # a Friday: due when it ends, late a day later (the default grace)
    assert _states(loader, UP, [key], datetime(2026, 1, 9, 23, tzinfo=UTC)) == {key: "not_due"}
    assert _states(loader, UP, [key], datetime(2026, 1, 10, 1, tzinfo=UTC)) == {key: "missing"}
    assert _states(loader, UP, [key], datetime(2026, 1, 11, 1, tzinfo=UTC)) == {key: "late"}


def test_the_partitions_of_a_range_come_in_key_order(loader: Loader) -> None:
    parts = UP.partitions(date(2026, 1, 5), date(2026, 1, 6))
    assert [p.key for p in parts] == [
        "2026-01-05/A",
        "2026-01-05/B",
        "2026-01-06/A",
        "2026-01-06/B",
    ]
    assert Partition("day", date(2026, 1, 5), "A").key == parts[0].key


def test_the_counted_summaries_are_the_summaries_of_the_rows(loader: Loader, conn: Conn) -> None:
    """`summaries` (the metrics scrape, the datasets list) counts the states statement's
    answer from a document made once a day; `summarize` (a dataset's page) reads every
    partition's row. Both say the same, holidays (`no_data` by the market calendar), a
    failed execution, stale and loaded partitions included."""
    catalog = DatasetCatalog([UP, SAME, BY_DATE, TRADING])
    _record(loader, "up", "2026-01-05/A", inserted=1, source=Source(sha256="one"))
    _record(loader, "same", "2026-01-05/A", inserted=1)
    _record(loader, "up", "2026-01-05/A", changed=1, source=Source(sha256="two"))  # stale
    _record(loader, "up", "2026-01-06/B", inserted=1)
    _record(loader, "trading", "2026-01-20", outcome="no_data")
    _record(loader, "trading", "2026-02-16", inserted=1)  # Presidents' Day, loaded anyway

    failed, _ = _pending(loader, "trading", ["2026-01-21", "2026-01-19"])  # the 19th: MLK day
    conn.execute("UPDATE executions SET status = 'failed' WHERE id = %s", (failed.id,))
    tz = "America/New_York"

    async def both(conn: db.AsyncConn) -> tuple[list[Any], list[Any]]:
        counted = await dataset_reads.summaries(conn, catalog, market_tz=tz, now=NOW)
        counted_again = await dataset_reads.summaries(conn, catalog, market_tz=tz, now=NOW)
        assert counted_again == counted  # the second from the kept documents
        from_rows = [
            (await dataset_reads.summarize(conn, d, catalog, market_tz=tz, now=NOW))[0]
            for d in catalog
        ]
        return counted, sorted(from_rows, key=lambda s: s.name)

    counted, from_rows = loader.read(both)
    assert counted == from_rows
    by_name = {s.name: s.partitions for s in counted}
    # A holiday has no data only when nothing is recorded or runs for it: MLK day (the
    # 19th) is pending, Presidents' Day loaded; the 20th was recorded as having none.
    trading = {k: by_name["trading"][k] for k in ("no_data", "pending", "failed", "loaded")}
    assert trading == {"no_data": 1, "pending": 1, "failed": 1, "loaded": 1}
    assert by_name["same"]["stale"] == 1 and by_name["up"]["loaded"] == 2


def test_the_states_come_in_the_documents_order(loader: Loader) -> None:
    """`state_rows` answers in the order of the document it is given (a dataset page's
    is its partitions' key order), not in the order the database's collation gives the
    keys' text: here the document lists them backwards."""
    backwards = UP.partitions(date(2026, 1, 5), date(2026, 1, 7))[::-1]
    doc = partitions.partitions_doc(UP, backwards)

    async def read(conn: db.AsyncConn) -> list[str]:
        return [r.key for r in await partitions.state_rows(conn, UP, doc, now=NOW)]

    assert loader.read(read) == [p.key for p in backwards]
    page = dataset_reads.upto_today(UP, NOW, UTC)
    assert [p.key for p in page] == sorted(p.key for p in page)  # a page's order is the text's
