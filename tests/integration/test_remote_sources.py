"""Remote sources against a real HTTP publisher in the test process (tests/publishers.py).

- FINRA's weeks through the Query API stand-in (page size 1,000, a token), by a
  backfill through a real pool: the landed files are the committed files byte for
  byte, and the analytics the same value for value; the same backfill again
  ingests nothing.
- The CDN layout (a URL template) run attempt by attempt in this process: a body
  cut halfway then 503 twice ends `loaded`, with no partial file ever where an
  ingest looks; the same fetch again is a 304; a republished file (a new ETag) is
  reloaded and the lineage shows both; Retry-After defers without using an
  attempt; a future week is not published (`not_due`), one inside its window
  asks to be tried again at a time.
- The same bytes under a new ETag: found unchanged, the stored validators refreshed,
  so the next request is a 304.
- A zipped source (the SEC's way): unzipped as it lands; a corrupt zip fails at once
  (permanent) in one line, and lands nothing. The requests and the bytes per fetch
  are counted in the process's metrics.
- A NYSE holiday of a daily source is `no_data`, recorded without a request.
- The dataset's scan fetches its recent due partitions that are not loaded, joins the
  ones being fetched, lets a partition asked recently rest (SPINE_SOURCE_RECHECK), and
  `spine db init` makes a remote dataset's scan schedule.
- Two pools and a limit of one request per host: the server never sees two at once.
- An SEC source without SPINE_HTTP_USER_AGENT is refused in one line naming it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from prometheus_client import REGISTRY, generate_latest

from app import db
from app.catalog import DOMAINS, default_registry
from app.config import get_settings
from app.engine import backfills, history, partitions, remote_scans, sensors, workers
from app.engine.backends import make_backend
from app.engine.datasets import Dataset, DatasetCatalog, Freshness, Partition
from app.engine.fetch import ContactRequired, require_contact
from app.engine.models import Execution
from app.engine.partitions import NewMaterialization
from app.engine.recording import record_batch
from app.engine.registry import Registry
from app.engine.sources import RemoteSource
from app.finra import reads
from app.finra.pipelines import PIPELINES as FINRA_PIPELINES
from app.finra.pipelines import ingest_file
from tests.finra_support import WEEK_FILES
from tests.publishers import API_PATH, TOKEN_PATH, Fault, FinraQueryApi, Publisher, serving
from tests.support import run_held, status_counts, submit, wait_until, worker_pool

Conn = psycopg.Connection[dict[str, Any]]
FINRA = DOMAINS.datasets().get("finra_otc_weekly")
WEEKS = sorted(WEEK_FILES)
CDN_LAYOUT = "/equity/otcmarket/weekly/{key2}/finra_otc_weekly_{key2}_{week:%Y%m%d}.csv"


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("SPINE_DATA_DIR", str(root))
    monkeypatch.setenv("SPINE_HTTP_USER_AGENT", "Market Spine tests ops@example.com")
    monkeypatch.setenv("SPINE_RETRY_MAX_BACKOFF", "0")
    get_settings.cache_clear()
    return root


@pytest.fixture
def runner(database_url: str) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


def _backfill(runner: asyncio.Runner, url: str, only: Any = "missing") -> backfills.Backfill:
    async def go() -> backfills.Backfill:
        settings = get_settings()
        async with await db.aconnect(url) as conn:
            return await backfills.create(
                conn,
                default_registry(),
                settings,
                make_backend(settings),
                FINRA,
                from_key=str(WEEKS[0]),
                to_key=str(WEEKS[-1]),
                only=only,
                key2="OTC",
                sources={},
            )

    return runner.run(go())


def _analytics(runner: asyncio.Runner, url: str) -> list[Any]:
    async def go() -> list[Any]:
        async with await db.aconnect(url) as conn:
            found: list[Any] = []
            for week in WEEKS:
                found.append(await reads.venues(conn, week, limit=10_000))
                found.append(await reads.symbols(conn, week, limit=100_000))
            return found

    return runner.run(go())


def _lines(path: Path) -> bytes:
    """A committed file as the fetcher writes it: each line ends with a newline (one of
    the three committed files lacks the last one)."""
    data = path.read_bytes()
    return data if data.endswith(b"\n") else data + b"\n"


def _completed(conn: Conn, n: int) -> bool:
    counts = status_counts(conn)
    return counts.get("completed", 0) == n and sum(counts.values()) == n


@pytest.mark.slow
def test_finra_weeks_through_the_query_api_equal_the_files(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FinraQueryApi({"OTC_W_SMBL_FIRM": list(WEEK_FILES.values())}, ("client", "s3cret"))
    with serving(Publisher(api=api)) as publisher:
        env = _use(
            monkeypatch,
            SPINE_SOURCE_FINRA_API=publisher.url,
            SPINE_FINRA_TOKEN_URL=publisher.url + TOKEN_PATH,
            SPINE_FINRA_API_CLIENT_ID="client",
            SPINE_FINRA_API_CLIENT_SECRET="s3cret",
            SPINE_SOURCE_PAGE_SIZE="1000",
        )
        env.update(SPINE_DATA_DIR=str(landing), SPINE_RETRY_MAX_BACKOFF="0")
        env["SPINE_HTTP_USER_AGENT"] = "Market Spine tests ops@example.com"
        first = _backfill(runner, database_url)
        assert [i.outcome for i in first.items] == ["submitted"] * 3
        with worker_pool(database_url, processes=2, log_path=tmp_path / "pool.log", **env):
            wait_until(lambda: _completed(conn, 3), timeout=120)
            # Every page asked: 1,000 rows each until a short one.
            pages = sum(
                -(-(len(WEEK_FILES[w].read_text().splitlines()) - 1) // 1000) for w in WEEKS
            )
            assert publisher.count(API_PATH, 200) == pages
            assert publisher.count(TOKEN_PATH) >= 1 and api.tokens_issued <= 2  # cached
            for week in WEEKS:
                landed = landing / f"remote/finra/finra_otc_weekly_otc_{week:%Y%m%d}.csv"
                assert landed.read_bytes() == _lines(WEEK_FILES[week])
            assert not list(landing.rglob("*.part"))
            fetched = _analytics(runner, database_url)

            again = _backfill(runner, database_url, only="all")
            assert [i.outcome for i in again.items] == ["submitted"] * 3
            wait_until(lambda: _completed(conn, 6), timeout=120)
        results = conn.execute(
            "SELECT payload->'result'->>'outcome' AS outcome FROM execution_events"
            " WHERE event_type = 'completed' ORDER BY id"
        ).fetchall()
        assert [r["outcome"] for r in results] == ["fetched"] * 3 + ["not_modified"] * 3
        rows = conn.execute(
            "SELECT partition_key, source_url, source_sha256 FROM dataset_materializations"
            " ORDER BY partition_key"
        ).fetchall()
        assert [r["source_sha256"] for r in rows] == [
            hashlib.sha256(_lines(WEEK_FILES[w])).hexdigest() for w in WEEKS
        ]
        assert {r["source_url"] for r in rows} == {publisher.url + API_PATH}
        assert conn.execute("SELECT count(*) AS n FROM finra_loads").fetchone() == {"n": 3}

    # The committed files ingested straight over them change nothing: value for value.
    async def ingest_committed() -> list[dict[str, Any]]:
        pool = await db.open_async_pool(database_url, get_settings())
        try:
            return [
                await ingest_file(pool, execution_id=f"file-{w}", path=WEEK_FILES[w],
                                  source_file=WEEK_FILES[w].name, week=w)
                for w in WEEKS
            ]  # fmt: skip
        finally:
            await pool.close()

    for summary in runner.run(ingest_committed()):
        assert (summary["inserted"], summary["changed"], summary["removed"]) == (0, 0, 0)
    assert _analytics(runner, database_url) == fetched


def _cdn_registry(dataset: Dataset) -> Registry:
    built: list[Registry] = []
    sensing = sensors.pipelines(
        DatasetCatalog([dataset]), lambda: built[0], get_settings, make_backend
    )
    built.append(Registry([*sensing, *FINRA_PIPELINES]))
    return built[0]


def _cdn_dataset(**changes: Any) -> Dataset:
    source = RemoteSource(
        name="finra_cdn",
        base_setting="source_finra_cdn",
        url=CDN_LAYOUT,
        landing="remote/cdn/finra_otc_weekly_{key2}_{week:%Y%m%d}.csv",
    )
    return dataclasses.replace(FINRA, remote=dataclasses.replace(source, **changes))


class Inline:
    """Runs a dataset's fetch executions attempt by attempt, in this process."""

    def __init__(
        self, runner: asyncio.Runner, url: str, registry: Registry, dataset: str = FINRA.name
    ) -> None:
        self.runner, self.url, self.registry, self.dataset = runner, url, registry, dataset

    def submit(self, key: str) -> str:
        async def go() -> str:
            async with await db.aconnect(self.url) as conn:
                made, _ = await submit(
                    conn, "dataset_fetch", {"dataset": self.dataset, "key": key},
                    registry=self.registry, logical_key=f"dataset:{self.dataset}:{key}",
                )  # fmt: skip
                await workers.heartbeat(conn, "inline", "test", os.getpid())
                return made.id

        return self.runner.run(go())

    def attempt(self, execution_id: str) -> Execution:
        async def go() -> Execution:
            pool = await db.open_async_pool(self.url, get_settings())
            try:
                _, claimed, _ = await record_batch(pool, "inline", [], claim=1)
                assert [e.id for e in claimed] == [execution_id]
                await run_held(pool, claimed[0], "inline", registry=self.registry)
            finally:
                await pool.close()
            async with await db.aconnect(self.url) as conn:
                found = await history.get(conn, execution_id)
            assert found is not None
            return found

        return self.runner.run(go())


def _served(tmp_path: Path) -> Path:
    root = tmp_path / "cdn"
    for week, path in WEEK_FILES.items():
        target = root / "equity/otcmarket/weekly/otc" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        assert week
    return root


def _result(conn: Conn, execution_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT payload->'result' AS r FROM execution_events"
        " WHERE execution_id = %s AND event_type = 'completed'",
        (execution_id,),
    ).fetchone()
    assert row is not None
    result: dict[str, Any] = row["r"]
    return result


def test_a_cut_body_then_503s_then_304_then_a_republished_file(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _served(tmp_path)
    week = WEEKS[0]
    key = f"{week}/OTC"
    path = f"/equity/otcmarket/weekly/otc/finra_otc_weekly_otc_{week:%Y%m%d}.csv"
    landed = landing / f"remote/cdn/finra_otc_weekly_otc_{week:%Y%m%d}.csv"
    inline = Inline(runner, database_url, _cdn_registry(_cdn_dataset()))
    with serving(Publisher({"/": served})) as publisher:
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        publisher.fault(path, Fault(cut=True), Fault(503), Fault(503))
        made = inline.submit(key)
        for expected in (1, 2, 3):
            ran = inline.attempt(made)
            assert (ran.status, ran.attempt) == ("pending", expected), ran.error
            assert not landed.exists() and not list(landing.rglob("*.part"))
        ran = inline.attempt(made)
        assert ran.status == "completed", ran.error
        assert landed.read_bytes() == WEEK_FILES[week].read_bytes()
        assert publisher.count(path) == 4 and publisher.count(path, 503) == 2
        assert "Market Spine tests" in " ".join(publisher.user_agents)

        # The same fetch again: a 304, nothing new.
        ran = inline.attempt(inline.submit(key))
        assert ran.status == "completed" and _result(conn, ran.id)["outcome"] == "not_modified"
        assert publisher.count(path, 304) == 1

        # FINRA republishes the week under the same URL: a new ETag, reloaded.
        changed = served / path.lstrip("/")
        lines = changed.read_text(encoding="utf-8").splitlines()
        fields = lines[1].split("|")
        fields[5] = str(int(fields[5]) + 7)
        changed.write_text("\n".join([lines[0], "|".join(fields), *lines[2:]]) + "\n")
        os.utime(changed, (time.time() + 5, time.time() + 5))
        ran = inline.attempt(inline.submit(key))
        assert ran.status == "completed" and _result(conn, ran.id)["outcome"] == "fetched"
    lineage = runner.run(_lineage(database_url, key))
    assert len(lineage) == 2
    newest, older = lineage
    assert newest.superseded_id == older.id and (newest.changed, newest.inserted) == (1, 0)
    assert newest.source_sha256 == hashlib.sha256(changed.read_bytes()).hexdigest()
    assert newest.source_url == older.source_url == publisher.url + path
    assert newest.source_validators and older.source_validators
    assert newest.source_validators["etag"] != older.source_validators["etag"]


async def _lineage(url: str, key: str) -> list[partitions.Materialization]:
    async with await db.aconnect(url) as conn:
        return await partitions.materializations(conn, FINRA.name, key)


def test_retry_after_and_not_yet_published_ask_to_be_tried_again_at_a_time(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _served(tmp_path)
    week = WEEKS[0]
    path = f"/equity/otcmarket/weekly/otc/finra_otc_weekly_otc_{week:%Y%m%d}.csv"
    today = datetime.now(UTC).date()
    in_window = today - timedelta(days=today.weekday() + 14)  # ended 8-14 days ago
    wide = _cdn_dataset()
    wide = dataclasses.replace(wide, freshness=Freshness(grace=timedelta(days=30)))
    inline = Inline(runner, database_url, _cdn_registry(wide))
    with serving(Publisher({"/": served})) as publisher:
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        publisher.fault(path, Fault(503, {"Retry-After": "120"}, b"busy\n"))
        made = inline.submit(f"{week}/OTC")
        ran = inline.attempt(made)
        assert (ran.status, ran.attempt) == ("pending", 0)  # no attempt used
        assert ran.available_at > datetime.now(UTC) + timedelta(seconds=100)
        event = conn.execute(
            "SELECT payload FROM execution_events WHERE execution_id = %s"
            " AND event_type = 'deferred'",
            (made,),
        ).fetchone()
        assert event is not None and "Retry-After 120" in event["payload"]["reason"]

        # Not published (404) inside the freshness window: tried again at a time.
        waiting = inline.submit(f"{in_window}/OTC")
        ran = inline.attempt(waiting)
        assert (ran.status, ran.attempt) == ("pending", 0)
        deferred = conn.execute(
            "SELECT payload->>'reason' AS r FROM execution_events WHERE execution_id = %s"
            " AND event_type = 'deferred'",
            (waiting,),
        ).fetchone()
        assert deferred is not None and "not published yet" in deferred["r"]

        # A future week: not published, the partition stays not_due; nothing failed.
        future = date(2030, 1, 7)
        ran = inline.attempt(inline.submit(f"{future}/OTC"))
        assert ran.status == "completed" and _result(conn, ran.id)["outcome"] == "not_published"
        assert (
            publisher.count("/equity/otcmarket/weekly/otc/finra_otc_weekly_otc_20300107.csv", 404)
            == 1
        )

    async def state() -> str:
        async with await db.aconnect(database_url) as c:
            rows = await partitions.states(c, wide, [wide.partition(f"{future}/OTC")])
            return rows[0].state

    assert runner.run(state()) == "not_due"


@pytest.mark.slow
def test_two_pools_and_one_request_per_host(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FinraQueryApi({"OTC_W_SMBL_FIRM": list(WEEK_FILES.values())})
    with serving(Publisher(api=api, latency=0.02)) as publisher:
        env = _use(
            monkeypatch,
            SPINE_SOURCE_FINRA_API=publisher.url,
            SPINE_SOURCE_PAGE_SIZE="1000",
            SPINE_SOURCE_MAX_PER_HOST="1",
        )
        env.update(SPINE_DATA_DIR=str(landing), SPINE_RETRY_MAX_BACKOFF="0")
        _backfill(runner, database_url)
        with (
            worker_pool(database_url, processes=2, log_path=tmp_path / "a.log", **env),
            worker_pool(database_url, processes=2, log_path=tmp_path / "b.log", **env),
        ):
            wait_until(lambda: _completed(conn, 3), timeout=120)
        assert publisher.count(API_PATH, 200) >= 15
        assert publisher.max_in_flight == 1
        assert publisher.count(TOKEN_PATH) == 0  # no credentials: none asked


def test_an_sec_source_without_a_user_agent_is_refused_in_one_line(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPINE_HTTP_USER_AGENT")
    get_settings.cache_clear()
    sec = RemoteSource(
        name="sec",
        base_setting="source_sec",
        url="/files/data/fails-deliver-data/cnsfails{date:%Y%m}{half}.zip",
        landing="remote/sec/cnsfails{date:%Y%m}{half}.txt",
        zipped=True,
        contact_required=True,
    )
    with pytest.raises(ContactRequired) as refused:
        require_contact(sec, get_settings())
    message = str(refused.value)
    assert "\n" not in message and "SPINE_HTTP_USER_AGENT" in message


def test_the_same_bytes_under_a_new_etag_refresh_the_validators_then_304(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _served(tmp_path)
    week = WEEKS[0]
    key = f"{week}/OTC"
    path = f"/equity/otcmarket/weekly/otc/finra_otc_weekly_otc_{week:%Y%m%d}.csv"
    inline = Inline(runner, database_url, _cdn_registry(_cdn_dataset()))
    with serving(Publisher({"/": served})) as publisher:
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        ran = inline.attempt(inline.submit(key))
        assert _result(conn, ran.id)["outcome"] == "fetched"
        (first,) = runner.run(_lineage(database_url, key))
        assert first.source_validators is not None  # written with the ingest's record

        publisher.new_etag(path)
        ran = inline.attempt(inline.submit(key))
        unchanged = _result(conn, ran.id)
        assert (unchanged["outcome"], unchanged["status"]) == ("not_modified", 200)
        (same,) = runner.run(_lineage(database_url, key))  # nothing new materialized
        assert same.id == first.id and same.source_validators is not None
        assert same.source_validators["etag"] != first.source_validators["etag"]

        ran = inline.attempt(inline.submit(key))
        assert _result(conn, ran.id)["outcome"] == "not_modified"
        assert publisher.count(path, 200) == 2 and publisher.count(path, 304) == 1


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_zipped_source_lands_unzipped_and_a_corrupt_zip_fails_at_once(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _served(tmp_path)
    zipped = _cdn_dataset(name="zipped_cdn", url=CDN_LAYOUT + ".zip", zipped=True)
    inline = Inline(runner, database_url, _cdn_registry(zipped))
    good, bad = WEEKS[0], WEEKS[1]
    bad_path = f"/equity/otcmarket/weekly/otc/finra_otc_weekly_otc_{bad:%Y%m%d}.csv.zip"
    before = {
        outcome: _sample("spine_source_requests_total", source="zipped_cdn", outcome=outcome)
        for outcome in ("fetched", "error")
    }
    bytes_before = _sample("spine_source_fetch_bytes_sum", source="zipped_cdn")
    count_before = _sample("spine_source_fetch_bytes_count", source="zipped_cdn")
    with serving(Publisher({"/": served})) as publisher:
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        ran = inline.attempt(inline.submit(f"{good}/OTC"))
        assert ran.status == "completed", ran.error
        landed = landing / f"remote/cdn/finra_otc_weekly_otc_{good:%Y%m%d}.csv"
        assert landed.read_bytes() == WEEK_FILES[good].read_bytes()
        result = _result(conn, ran.id)
        assert result["outcome"] == "fetched"
        assert result["sha256"] == hashlib.sha256(landed.read_bytes()).hexdigest()

        publisher.fault(bad_path, Fault(200, {}, b"PK\x03\x04 this is no zip\n"))
        ran = inline.attempt(inline.submit(f"{bad}/OTC"))
        assert (ran.status, ran.attempt) == ("failed", 1)  # permanent: no retry
        assert ran.error is not None and "\n" not in ran.error
        assert "not a readable zip" in ran.error and bad_path in ran.error
        assert not (landing / f"remote/cdn/finra_otc_weekly_otc_{bad:%Y%m%d}.csv").exists()
        assert not list(landing.rglob("*.part"))
    fetched = _sample("spine_source_requests_total", source="zipped_cdn", outcome="fetched")
    errors = _sample("spine_source_requests_total", source="zipped_cdn", outcome="error")
    assert (fetched - before["fetched"], errors - before["error"]) == (1, 1)
    landed_bytes = WEEK_FILES[good].stat().st_size
    assert _sample("spine_source_fetch_bytes_sum", source="zipped_cdn") - bytes_before == (
        landed_bytes
    )
    assert _sample("spine_source_fetch_bytes_count", source="zipped_cdn") - count_before == 1
    text = generate_latest(REGISTRY).decode()  # what /metrics serves of this process
    assert 'spine_source_requests_total{outcome="fetched",source="zipped_cdn"}' in text
    assert 'spine_source_fetch_bytes_bucket{le="1e+06",source="zipped_cdn"}' in text


def test_a_nyse_holiday_is_no_data_without_a_request(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daily = Dataset(
        name="daily_cdn",
        description="A daily file per trading day (a test's).",
        scheme="day",
        pipeline="finra_weekly_ingest",
        params=lambda p, path: {"week": p.start.isoformat(), "file": path},
        start=date(2026, 1, 2),
        freshness=Freshness(grace=timedelta(hours=12)),
        remote=RemoteSource(
            name="daily_cdn",
            base_setting="source_finra_cdn",
            url="/daily/shvol{date:%Y%m%d}.txt",
            landing="remote/daily/shvol{date:%Y%m%d}.txt",
            calendar=True,
        ),
    )
    inline = Inline(runner, database_url, _cdn_registry(daily), daily.name)
    holiday = "2026-01-19"  # Martin Luther King Jr. Day: the NYSE is closed
    with serving(Publisher({"/": tmp_path})) as publisher:
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        ran = inline.attempt(inline.submit(holiday))
        assert ran.status == "completed"
        assert _result(conn, ran.id)["outcome"] == "no_data"
        assert publisher.count() == 0

    async def state() -> str:
        async with await db.aconnect(database_url) as c:
            later = datetime(2027, 1, 1, tzinfo=UTC)  # long past its deadline
            rows = await partitions.states(c, daily, [daily.partition(holiday)], now=later)
            return rows[0].state

    assert runner.run(state()) == "no_data"


def _remote_only(**source: Any) -> Dataset:
    """FINRA's OTC tier through the CDN layout, without a landing pattern."""
    return dataclasses.replace(
        _cdn_dataset(**source), name="cdn_weekly", landing=None, key2=("OTC",),
        key2_names={"otc": "OTC"},
    )  # fmt: skip


def _scan_remote(
    runner: asyncio.Runner, url: str, registry: Registry, dataset: Dataset
) -> remote_scans.RemoteScanResult:
    async def go() -> remote_scans.RemoteScanResult:
        settings = get_settings()
        async with await db.aconnect(url) as conn:
            return await remote_scans.scan_remote(
                conn, registry, settings, make_backend(settings), dataset
            )

    return runner.run(go())


def _run_pending(runner: asyncio.Runner, url: str, registry: Registry, most: int) -> int:
    """Run claimable executions one at a time in this process, at most `most`: how many."""

    async def go() -> int:
        pool = await db.open_async_pool(url, get_settings())
        ran = 0
        try:
            async with pool.connection() as conn:
                await workers.heartbeat(conn, "inline", "test", os.getpid())
            while ran < most:
                _, claimed, _ = await record_batch(pool, "inline", [], claim=1)
                if not claimed:
                    return ran
                await run_held(pool, claimed[0], "inline", registry=registry)
                ran += 1
            return ran
        finally:
            await pool.close()

    return runner.run(go())


def test_a_scan_fetches_the_recent_due_partitions_that_are_not_loaded(
    database_url: str,
    landing: Path,
    conn: Conn,
    runner: asyncio.Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    dataset = _remote_only(recent_periods=3)
    registry = _cdn_registry(dataset)
    now = conn.execute("SELECT now() AS t").fetchone()["t"]  # type: ignore[index]
    tz = ZoneInfo(get_settings().market_tz)
    window = remote_scans.recent_due(dataset, now, 3, tz)
    assert len(window) == 3 and all(p.key2 == "OTC" for p in window)
    assert all(dataset.freshness.due_at(p, tz) <= now for p in window)
    following = Partition("week", window[-1].start + timedelta(7), "OTC")
    assert dataset.freshness.due_at(following, tz) > now
    loaded = window[1]

    async def record_loaded() -> None:
        async with await db.aconnect(database_url) as c, c.transaction():
            await partitions.record(c, [NewMaterialization(dataset.name, loaded.key, None)])

    runner.run(record_loaded())
    fetch_keys = [window[0].key, window[2].key]

    with serving(Publisher({"/": tmp_path / "nothing"})) as publisher:  # 404 for every week
        _use(monkeypatch, SPINE_SOURCE_FINRA_CDN=publisher.url)
        first = _scan_remote(runner, database_url, registry, dataset)
        assert first.window == [p.key for p in window]
        assert (first.submitted, first.joined, first.resting) == (fetch_keys, [], [])
        made = conn.execute(
            "SELECT pipeline, logical_key, params->>'key' AS key FROM executions ORDER BY 3"
        ).fetchall()
        assert [(m["pipeline"], m["key"]) for m in made] == [
            ("dataset_fetch", k) for k in fetch_keys
        ]
        assert publisher.count() == 0  # a scan submits; the fetch asks

        again = _scan_remote(runner, database_url, registry, dataset)
        assert (again.submitted, again.joined) == ([], fetch_keys)
        assert conn.execute("SELECT count(*) AS n FROM executions").fetchone() == {"n": 2}

        # The fetches run: not published. A late week's fetch completes (the partition
        # stays late); one inside its window asks to be tried again (pending).
        assert _run_pending(runner, database_url, registry, 3) == 2
        assert publisher.count(status=404) == 2
        rows = runner.run(_states(database_url, dataset, window))
        late = [k for k in fetch_keys if rows[k] == "late"]
        waiting = [k for k in fetch_keys if rows[k] == "pending"]
        assert sorted(late + waiting) == fetch_keys and rows[loaded.key] == "loaded"
        rested = _scan_remote(runner, database_url, registry, dataset)
        assert (rested.submitted, rested.joined, rested.resting) == ([], waiting, late)

        # Past SPINE_SOURCE_RECHECK, a late week is asked again.
        _use(monkeypatch, SPINE_SOURCE_RECHECK="0.001")
        later = _scan_remote(runner, database_url, registry, dataset)
        assert (later.submitted, later.resting) == (late, [])
    assert publisher.count() == 2


async def _states(url: str, dataset: Dataset, window: list[Partition]) -> dict[str, str]:
    async with await db.aconnect(url) as c:
        tz = ZoneInfo(get_settings().market_tz)
        return {r.key: r.state for r in await partitions.states(c, dataset, window, tz=tz)}


def test_db_init_makes_a_remote_datasets_scan_schedule_and_the_scan_fetches(
    database_url: str, conn: Conn, runner: asyncio.Runner
) -> None:
    dataset = _remote_only(recent_periods=1)
    registry = _cdn_registry(dataset)
    catalog = DatasetCatalog([dataset])

    async def init() -> list[str]:
        async with await db.aconnect(database_url) as c:
            return await sensors.sync(c, registry, get_settings(), catalog)

    assert runner.run(init()) == ["dataset-scan:cdn_weekly"]
    schedule = conn.execute(
        "SELECT pipeline, params, enabled FROM schedules WHERE name = 'dataset-scan:cdn_weekly'"
    ).fetchone()
    assert schedule == {
        "pipeline": "dataset_scan", "params": {"dataset": "cdn_weekly"}, "enabled": False
    }  # fmt: skip
    made, _ = runner.run(_submit_scan(database_url, registry))
    assert _run_pending(runner, database_url, registry, 1) == 1  # the scan (not its fetch)
    result = _result(conn, made)
    assert result["remote"]["submitted"] == result["remote"]["window"]
    assert "files" not in result  # no landing pattern: nothing to look at there
    fetches = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE pipeline = 'dataset_fetch'"
    ).fetchone()
    assert fetches == {"n": 1}


async def _submit_scan(url: str, registry: Registry) -> tuple[str, bool]:
    async with await db.aconnect(url) as c:
        made, created = await submit(
            c, "dataset_scan", {"dataset": "cdn_weekly"}, registry=registry
        )
        return made.id, created
