"""Prometheus metrics, scraped for real: the API's /metrics and a running worker pool's port.

The worker pool is `spine worker start` as a subprocess with SPINE_METRICS_PORT
set; the API is the Litestar app through its test client. What the counters
say is compared with what happened, and with the executions table.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.engine import gauges
from tests.api_support import Client, api_client, closed_port
from tests.support import free_port, submit_many, wait_until, worker_pid, worker_pool

Conn = psycopg.Connection[dict[str, object]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, labels), through prometheus-client's own parser."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def by(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Samples of one name keyed by the values of `labels` (summed over the others)."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for (sample, pairs), value in samples.items():
        if sample == name:
            d = dict(pairs)
            out[tuple(d[k] for k in labels)] += value
    return dict(out)


def check_names(text: str) -> None:
    """Prometheus conventions: counters' samples end in _total, durations are in seconds."""
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("spine_"):
            continue
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert family.name == family.name.lower(), family.name


def scrape_pool(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


async def scrape_api(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def table(conn: Conn, sql: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(str(v) for v in list(r.values())[:-1]): float(list(r.values())[-1])  # type: ignore[arg-type]
        for r in conn.execute(sql).fetchall()
    }


async def test_counters_equal_what_happened(database_url: str, conn: Conn, tmp_path: Path) -> None:
    port = free_port()
    settings = {
        "SPINE_METRICS_PORT": str(port),
        "SPINE_LEASE_TIMEOUT": "1.5",
        "SPINE_POLL_INTERVAL": "0.1",
    }
    async with api_client() as client:
        # A backlog before any worker runs: the depth gauges follow it.
        submit_many(conn, "noop", 30)
        conn.execute(
            "INSERT INTO executions (pipeline, lane, trigger_source)"
            " SELECT 'noop', 'backfill', 'test' FROM generate_series(1, 20)"
        )
        api = parse(await scrape_api(client))
        depth = by(api, "spine_executions", "status", "lane")
        assert depth[("pending", "normal")] == 30
        assert depth[("pending", "backfill")] == 20
        assert depth[("running", "normal")] == 0
        assert by(api, "spine_oldest_pending_age_seconds", "lane")[("normal",)] > 0
        assert by(api, "spine_database_up")[()] == 1

        with worker_pool(database_url, 2, tmp_path / "pool.log", **settings):
            wait_until(lambda: _pending(conn) == 0, timeout=60)
            for _ in range(5):
                response = await client.post("/api/v1/executions", json={"pipeline": "fail"})
                assert response.status_code == 202, response.text
            response = await client.post(
                "/api/v1/executions",
                json={"pipeline": "otc_ingest", "params": {"file": "otc_sample.csv"}},
            )
            assert response.status_code == 202, response.text
            response = await client.post(
                "/api/v1/executions", json={"pipeline": "sleep", "params": {"seconds": 3}}
            )
            sleep_id = response.json()["id"]
            running = wait_until(
                lambda: _row(conn, sleep_id)["status"] == "running" and _row(conn, sleep_id)
            )
            os.kill(worker_pid(str(running["worker_id"])), signal.SIGKILL)
            wait_until(lambda: _active(conn) == 0, timeout=60)
            # The worker counts just after the end commits: wait for the last one to land.
            # 57 submitted, plus the dataset_propagate pass the OTC load asked for (the pool
            # stored the datasets' graph when it started; it finds nothing stale: the load
            # recorded the days' metrics itself): each finished one counted once.
            ended = _finished(conn)
            assert ended >= 57
            try:
                pool_text = wait_until(
                    lambda: _finished_total(t := scrape_pool(port)) == ended and t, timeout=10
                )
            except AssertionError as exc:
                rows = conn.execute(
                    "SELECT pipeline, status, count(*) AS n FROM executions GROUP BY 1, 2"
                ).fetchall()
                counted = by(parse(scrape_pool(port)), "spine_executions_finished_total")
                raise AssertionError(f"table {rows}; pool counted {counted}") from exc
            # The killed child's row goes stale; its replacement heartbeats.
            await until_api(client, lambda m: by(m, "spine_live_workers") == {(): 2})
        check_names(pool_text)
        pool = parse(pool_text)

        # Finished: exactly the table's (pipeline, status), nothing lost or requeued.
        finished = by(pool, "spine_executions_finished_total", "pipeline", "outcome")
        assert finished == table(
            conn, "SELECT pipeline, status, count(*) FROM executions GROUP BY 1, 2"
        )
        assert finished == {
            ("noop", "completed"): 50,
            ("fail", "failed"): 5,
            ("otc_ingest", "completed"): 1,
            ("sleep", "completed"): 1,
            ("dataset_propagate", "completed"): 1,  # asked for by the OTC load
        }
        # Started: one per attempt; the killed child's start is kept after its death.
        started = by(pool, "spine_executions_started_total", "pipeline")
        assert started == table(conn, "SELECT pipeline, sum(attempt) FROM executions GROUP BY 1")
        assert started[("sleep",)] == 2
        # Histograms: one duration per finished execution, one wait per start.
        assert by(pool, "spine_execution_duration_seconds_count", "pipeline") == table(
            conn, "SELECT pipeline, count(*) FROM executions GROUP BY 1"
        )
        assert sum(by(pool, "spine_execution_queue_wait_seconds_count").values()) == 59
        # The kill: one lease recovery (back to pending), one restart.
        requeued = conn.execute(
            "SELECT count(*) AS n FROM execution_events WHERE event_type = 'requeued'"
            # A lease recovery's; a live worker giving back what it held behind the slow
            # run (another reason) is a requeue too, and not a recovery.
            " AND payload->>'reason' = 'worker lost'"
        ).fetchone()
        assert requeued is not None
        assert by(pool, "spine_lease_recoveries_total", "outcome") == {("pending",): requeued["n"]}
        assert requeued["n"] == 1
        assert by(pool, "spine_worker_restarts_total") == {(): 1}
        # The ingest's rows by outcome, as its summary says.
        summary = conn.execute(
            "SELECT payload->'result' AS r FROM execution_events e JOIN executions x"
            " ON x.id = e.execution_id WHERE x.pipeline = 'otc_ingest'"
            " AND e.event_type = 'completed'"
        ).fetchone()
        assert summary is not None
        result = summary["r"]
        assert isinstance(result, dict)
        assert by(pool, "spine_pipeline_rows_total", "pipeline", "outcome") == {
            ("otc_ingest", "inserted"): result["inserted"],
            ("otc_ingest", "duplicate"): result["duplicates"],
            ("otc_ingest", "correction"): result["corrections"],
            ("otc_ingest", "rejected"): result["rejected"],
        }
        assert result["inserted"] > 0

        # The API: the queue drained, the estimate of finished rows after ANALYZE.
        conn.execute("ANALYZE executions")
        api_text = await scrape_api(client)
        check_names(api_text)
        api = parse(api_text)
        assert all(v == 0 for v in by(api, "spine_executions", "status", "lane").values())
        assert by(api, "spine_executions_finished_estimate", "status") == {
            ("completed",): 53,  # with the propagation pass
            ("failed",): 5,
            ("cancelled",): 0,
        }
        # HTTP metrics by route template, method and status.
        posts = by(api, "spine_http_requests_total", "path", "method", "status_code")
        assert posts[("/api/v1/executions", "POST", "202")] >= 7
        assert (
            by(api, "spine_http_request_duration_seconds_count", "path")[("/api/v1/executions",)]
            >= 7
        )


def _finished_total(text: str) -> float:
    return sum(by(parse(text), "spine_executions_finished_total").values())


async def until_api(client: Client, condition: Callable[[Samples], bool]) -> Samples:
    """Scrape the API until `condition` holds (30 s at most)."""
    for _ in range(600):
        samples = parse(await scrape_api(client))
        if condition(samples):
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError("the API's metrics never met the condition")


def _pending(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM executions WHERE status = 'pending'").fetchone()
    return int(row["n"]) if row else -1  # type: ignore[call-overload]


def _finished(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE status IN ('completed', 'failed', 'cancelled')"
    ).fetchone()
    return int(row["n"]) if row else -1  # type: ignore[call-overload]


def _active(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE status IN ('pending', 'queued', 'running')"
    ).fetchone()
    return int(row["n"]) if row else -1  # type: ignore[call-overload]


def _row(conn: Conn, execution_id: str) -> dict[str, object]:
    row = conn.execute("SELECT * FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None
    return row


def test_json_logs_carry_the_execution_and_its_traceback(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    log_path = tmp_path / "pool.log"
    with worker_pool(database_url, 1, log_path, SPINE_LOG_FORMAT="json"):
        submit_many(conn, "fail", 1, '{"message": "boom on purpose"}')
        row = wait_until(
            lambda: (
                (r := conn.execute("SELECT id, worker_id, status FROM executions").fetchone())
                and r["status"] == "failed"
                and r
            )
        )
    lines = log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert entries
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
    failure = [e for e in entries if e.get("execution_id") == row["id"]]
    assert len(failure) == 1, failure
    [line] = failure
    assert line["level"] == "WARNING"
    assert "failed" in line["message"] and "boom on purpose" in line["message"]
    assert line["pipeline"] == "fail"
    assert line["worker_id"] == row["worker_id"]
    assert line["traceback"].startswith("Traceback (most recent call last)")
    assert "PurposefulFailure: boom on purpose" in line["traceback"]
    # Lines of the worker process outside any execution carry its id too.
    started = [
        e for e in entries if e["message"].startswith("worker ") and "started" in e["message"]
    ]
    assert started and started[0]["worker_id"] == row["worker_id"]


SCRAPE_ROWS = 1_000_000
SCRAPE_PENDING = 10_000


@pytest.mark.slow
async def test_a_scrape_stays_cheap_with_a_million_executions(conn: Conn) -> None:
    """1,000,000 finished executions and a 10,000 backlog: a scrape reads a few pages (its
    median time is printed, not judged: that is the bench's business)."""
    conn.execute(
        """
        INSERT INTO executions (pipeline, lane, trigger_source, status, worker_id,
                                created_at, started_at, completed_at)
        SELECT 'noop', CASE WHEN g %% 10 = 0 THEN 'backfill' ELSE 'normal' END, 'test',
               CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'completed' END, 'w',
               now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
        FROM generate_series(1, %s) g
        """,
        (SCRAPE_ROWS - SCRAPE_PENDING,),
    )
    submit_many(conn, "noop", SCRAPE_PENDING)
    conn.execute("VACUUM ANALYZE executions")
    async with api_client() as client:
        for _ in range(5):  # warm the pool and the caches
            await scrape_api(client)
        times = []
        for _ in range(50):
            began = time.perf_counter()
            text = await scrape_api(client)
            times.append(time.perf_counter() - began)
    median = statistics.median(times)
    print(
        f"scrape with {SCRAPE_ROWS:,} executions: median {median * 1e3:.1f} ms, "
        f"max {max(times) * 1e3:.1f} ms"
    )
    api = parse(text)
    assert by(api, "spine_executions", "status", "lane")[("pending", "normal")] == SCRAPE_PENDING
    finished = by(api, "spine_executions_finished_estimate", "status")
    assert abs(finished[("completed",)] - 970_200) < 970_200 * 0.05  # an estimate
    # What makes it cheap, whatever the machine's load: the gauges read a few
    # pages of indexes and catalogs, never the table of finished executions.
    lanes = (list(gauges.LANE_PRIORITY), list(gauges.LANE_PRIORITY.values()))
    statements = [
        (gauges._PENDING, lanes),
        (gauges._HELD, None),
        (gauges._FINISHED_ESTIMATE, None),
        (gauges._LIVE_WORKERS, (30.0,)),
    ]
    pages = 0
    for sql, args in statements:
        row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, args).fetchone()
        assert row is not None
        plan = row["QUERY PLAN"][0]["Plan"]  # type: ignore[index]
        pages += int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])
    table = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'executions'").fetchone()
    assert table is not None
    assert pages < int(str(table["relpages"])) / 20, (pages, table)


async def test_metrics_follow_the_read_token_rule(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", "s3cret-token")
    monkeypatch.setenv("SPINE_API_TOKEN_READS", "1")
    async with api_client() as client:
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert by(parse(ok.text), "spine_database_up") == {(): 1}


async def test_an_unreachable_database_still_serves_http_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://x@127.0.0.1:{closed_port()}/x?connect_timeout=1"
    )
    monkeypatch.setattr("app.api.routes.metrics.SCRAPE_DB_TIMEOUT", 0.5)
    async with api_client() as client:
        await client.get("/api/v1/health")
        text = await scrape_api(client)
    samples = parse(text)
    assert by(samples, "spine_database_up") == {(): 0}
    assert "spine_executions" not in {name for name, _ in samples}
    assert by(samples, "spine_http_requests_total", "path")[("/api/v1/health",)] >= 1
