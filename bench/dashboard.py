"""The dashboard's pages over 1,000,000 executions: `python -m bench.dashboard [SERVER_URL]`.

Fills a scratch database with a month of history (1,000,000 executions, about
1,400 in the last hour, 3 events each, a few pending and running), starts
`spine api` on it, and times each page: 3 warm-up requests, then `--repeat`
timed ones, one at a time, from this process over loopback. Prints a
Markdown table for docs/benchmarks.md. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import httpx

from bench.harness import Scratch, connect, progress, running, spine_env, start_process, wait_until

DEFAULT_SERVER: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS: Final = 200.0
MONTH_SECONDS: Final = 30 * 86400

_FILL = """
INSERT INTO executions (pipeline, lane, trigger_source, status, attempt, worker_id,
                        created_at, queued_at, started_at, completed_at, error)
SELECT (ARRAY['otc_ingest', 'noop', 'sleep'])[n %% 3 + 1],
       CASE WHEN n %% 10 = 0 THEN 'backfill' ELSE 'normal' END,
       'bench',
       CASE WHEN n %% 50 = 0 THEN 'failed' WHEN n %% 97 = 0 THEN 'cancelled' ELSE 'completed' END,
       1, 'bench-worker', t, t, t + interval '1 second', t + interval '2 seconds',
       CASE WHEN n %% 50 = 0 THEN 'ValueError: bench failure' END
FROM generate_series(1, %(n)s) AS n,
     LATERAL (SELECT now() - make_interval(secs => (%(n)s - n) * %(step)s) AS t) AS at
ORDER BY n
"""

_EVENTS = """
INSERT INTO execution_events (execution_id, event_type, timestamp, payload)
SELECT e.id, k.type, CASE k.n WHEN 1 THEN e.created_at WHEN 2 THEN e.started_at
                              ELSE e.completed_at END, '{}'::jsonb
FROM executions e
CROSS JOIN LATERAL (VALUES (1, 'created'), (2, 'started'), (3, e.status)) AS k (n, type)
ORDER BY e.seq, k.n
"""

_ACTIVE = """
WITH w AS (INSERT INTO workers (id, host, pid) VALUES ('bench-live', 'bench', 1) RETURNING id)
INSERT INTO executions (pipeline, lane, trigger_source, status, worker_id, attempt)
SELECT 'sleep', CASE WHEN n % 4 = 0 THEN 'backfill' ELSE 'normal' END, 'bench',
       CASE WHEN n <= 20 THEN 'running' ELSE 'pending' END,
       CASE WHEN n <= 20 THEN (SELECT id FROM w) END, CASE WHEN n <= 20 THEN 1 ELSE 0 END
FROM generate_series(1, 1000) AS n
"""


def fill(url: str, executions: int) -> None:
    with connect(url) as conn:
        started = time.perf_counter()
        conn.execute(_FILL, {"n": executions, "step": MONTH_SECONDS / executions})
        conn.execute(_EVENTS)
        conn.execute(_ACTIVE)
        conn.execute("VACUUM ANALYZE executions")
        conn.execute("VACUUM ANALYZE execution_events")
        conn.execute("VACUUM ANALYZE workers")
        progress(
            f"dashboard: filled {executions:,} executions in {time.perf_counter() - started:.0f} s"
        )


def pages(base: str, client: httpx.Client) -> list[tuple[str, str]]:
    first = client.get(f"{base}/ui/executions")
    marker = 'rel="next" href="'
    older = first.text.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
    detail = first.text.split('<tr data-id="', 1)[1].split('"', 1)[0]
    return [
        ("overview", "/ui"),
        ("executions, first page", "/ui/executions"),
        ("executions, second page (cursor)", older),
        ("executions, status=failed (2%)", "/ui/executions?status=failed"),
        ("executions, status=cancelled (1%)", "/ui/executions?status=cancelled"),
        ("executions, status=running (20 rows)", "/ui/executions?status=running"),
        ("executions, lane=backfill, pipeline=noop", "/ui/executions?lane=backfill&pipeline=noop"),
        (
            "executions, backfill + cancelled + noop (0.03%)",
            "/ui/executions?lane=backfill&status=cancelled&pipeline=noop",
        ),
        ("executions, a pipeline with none", "/ui/executions?pipeline=otc_compute_metrics"),
        ("execution detail", f"/ui/executions/{detail}"),
    ]


def measure(client: httpx.Client, url: str, repeat: int) -> list[float]:
    for _ in range(3):
        client.get(url).raise_for_status()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", nargs="?", default=DEFAULT_SERVER)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args(argv)
    scratch = Scratch(args.server)
    scratch.drop_leftovers()
    try:
        scratch.create_template()
        url = scratch.create("dashboard")
        fill(url, args.executions)
        port = free_port()
        argv_ = [sys.executable, "-m", "app.cli", "api", "--port", str(port), "--workers", "1"]
        log = scratch_log()
        with running(start_process(argv_, env=spine_env(url), log_path=log)):
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(timeout=30) as client:
                wait_until(lambda: _answers(client, base), timeout=60, what="spine api")
                print(f"| Page ({args.executions:,} executions) | median ms | p95 ms | max ms |")
                print("|---|---:|---:|---:|")
                for label, path in pages(base, client):
                    t = sorted(measure(client, base + path, args.repeat))
                    p95 = t[max(int(len(t) * 0.95) - 1, 0)]
                    mark = "" if p95 < TARGET_MS else " (over target)"
                    print(
                        f"| {label} | {statistics.median(t):.1f} | {p95:.1f} | {t[-1]:.1f}{mark} |"
                    )
    finally:
        if args.keep:
            progress(f"dashboard: kept {scratch.url(scratch.run_id + '_dashboard')}")
        else:
            scratch.drop_all()
    return 0


def _answers(client: httpx.Client, base: str) -> bool:
    try:
        return client.get(f"{base}/api/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


def scratch_log() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "api.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
