"""HTTP: the API under a real load generator vs a bare Litestar + psycopg endpoint.

Market Spine: `spine api --port P` (uvicorn, one process, the product's
settings) over a database holding daily metrics (the OTC scenario's, or a
smaller file ingested here). Baseline: bench/baseline_app.py under the same
uvicorn, one process, on the same database.

- GET /api/v1/otc/metrics/daily?symbol=ACME&start_date=..&end_date=.. vs the
  bare GET /metrics running one indexed SELECT for the same rows;
- POST /api/v1/executions {"pipeline": "noop"} vs the bare POST /executions
  running one INSERT. No worker pool runs: the API only records and enqueues.

Load: wrk (`-t1 -c32 -d15s --latency`) when installed, else an asyncio httpx
client in this process (a Python client saturates long before wrk does, so
its figures are a floor; the table says which one ran). The load generator's
own CPU use is reported beside the server's CPU time per request.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench import otc_data
from bench.baseline_app import URL_VARIABLE
from bench.context import Context
from bench.harness import (
    Row,
    Target,
    connect,
    median,
    percentile,
    progress,
    running,
    spine_env,
    start_process,
    wait_until,
)

NAME = "http"
POST_BODY = b'{"pipeline": "noop", "params": {}}'


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx responses and socket errors
    client_cpu_pct: float  # the load generator's CPU time over wall time, in % of one core
    server_cpu_ms_per_request: float


def run(ctx: Context) -> None:
    url = _database_with_metrics(ctx)
    with connect(url) as conn:
        row = conn.execute(
            "SELECT symbol, min(trade_date) AS first, max(trade_date) AS last "
            "FROM otc_metrics_daily GROUP BY symbol ORDER BY count(*) DESC, symbol LIMIT 1"
        ).fetchone()
    if row is None:
        raise RuntimeError("no daily metrics to query")
    query = f"symbol={row['symbol']}&start_date={row['first']}&end_date={row['last']}"
    client = _client(ctx.http_client)
    progress(f"http: load generator {client}; GET query {query}")

    spine_port, bare_port = _free_port(), _free_port()
    spine_argv = [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1"]
    spine_argv += ["--port", str(spine_port), "--workers", "1"]
    bare_argv = [sys.executable, "-m", "uvicorn", "bench.baseline_app:create_app", "--factory"]
    bare_argv += ["--host", "127.0.0.1", "--port", str(bare_port), "--workers", "1"]
    bare_argv += ["--log-level", "warning", "--no-access-log"]
    spine_proc = start_process(spine_argv, env=spine_env(url), log_path=ctx.log_path("api"))
    with running(spine_proc):
        bare_env = {**os.environ, URL_VARIABLE: url}
        bare_proc = start_process(bare_argv, env=bare_env, log_path=ctx.log_path("baseline-app"))
        with running(bare_proc):
            spine_base = f"http://127.0.0.1:{spine_port}"
            bare_base = f"http://127.0.0.1:{bare_port}"
            _wait_http(f"{spine_base}/api/v1/health", spine_proc, ctx.log_path("api"))
            _wait_http(f"{bare_base}/metrics?{query}", bare_proc, ctx.log_path("baseline-app"))
            cases = [
                ("GET /api/v1/otc/metrics/daily", "GET",
                 f"{spine_base}/api/v1/otc/metrics/daily?{query}", f"{bare_base}/metrics?{query}"),
                ("POST /api/v1/executions (noop)", "POST",
                 f"{spine_base}/api/v1/executions", f"{bare_base}/executions"),
            ]  # fmt: skip
            for label, method, spine_url, bare_url in cases:
                spine: list[Load] = []
                bare: list[Load] = []
                for attempt in range(ctx.repeat + 1):
                    seconds = ctx.sizes.http_seconds if attempt else ctx.sizes.http_warmup_seconds
                    a = _load(client, method, spine_url, seconds, ctx, spine_proc.pid)
                    b = _load(client, method, bare_url, seconds, ctx, bare_proc.pid)
                    tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                    progress(
                        f"http {method} {tag}: spine {a.requests_per_s:,.0f} req/s "
                        f"p50 {a.p50_ms:.1f} p99 {a.p99_ms:.1f} ms; bare "
                        f"{b.requests_per_s:,.0f} req/s p50 {b.p50_ms:.1f} p99 {b.p99_ms:.1f} ms"
                    )
                    if a.errors or b.errors:
                        progress(f"  non-2xx/errors: spine {a.errors}, bare {b.errors}")
                    if attempt:
                        spine.append(a)
                        bare.append(b)
                ctx.rows.append(_row(label, spine, bare, client, ctx))


def _row(label: str, spine: list[Load], bare: list[Load], client: str, ctx: Context) -> Row:
    def mid(loads: list[Load], attr: str) -> float:
        return median([float(getattr(x, attr)) for x in loads])

    return Row(
        scenario=NAME,
        label=f"{label}, concurrency {ctx.sizes.http_concurrency}, "
        f"{ctx.sizes.http_seconds:g}s, {client}",
        unit="req/s",
        spine=[x.requests_per_s for x in spine],
        baseline=[x.requests_per_s for x in bare],
        target=Target("ratio_min", 0.8),
        notes={
            "p50_ms": mid(spine, "p50_ms"),
            "p99_ms": mid(spine, "p99_ms"),
            "baseline_p50_ms": mid(bare, "p50_ms"),
            "baseline_p99_ms": mid(bare, "p99_ms"),
            "server_cpu_ms_per_req": mid(spine, "server_cpu_ms_per_request"),
            "baseline_server_cpu_ms_per_req": mid(bare, "server_cpu_ms_per_request"),
            "load_generator": client,
            "load_generator_cpu_pct": mid(spine + bare, "client_cpu_pct"),
            "errors": sum(x.errors for x in spine + bare),
        },
    )


def _database_with_metrics(ctx: Context) -> str:
    url = ctx.shared.get("otc_url")
    if isinstance(url, str):
        return url
    sizes = ctx.sizes
    url = ctx.scratch.create(NAME)
    path = otc_data.trades_file(ctx, sizes.http_rows, symbols=20, days=sizes.ingest_days)
    otc_data.load_dataset(ctx, url, path, "http-load-pool")
    progress(f"http: loaded {path.name} for the metrics endpoint")
    return url


def _client(choice: str) -> str:
    if choice in ("auto", "wrk") and shutil.which("wrk"):
        return "wrk"
    if choice == "wrk":
        progress("http: wrk is not installed (apt-get install wrk); using the httpx client")
    else:
        progress("http: NOTE wrk not found; falling back to the asyncio httpx client")
    return "httpx"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=60, interval=0.2, what=f"{url} answering")


def _server_cpu(pid: int) -> float:
    """CPU seconds of a server process and its children."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.NoSuchProcess:
        return 0.0


def _load(
    client: str, method: str, url: str, seconds: float, ctx: Context, server_pid: int
) -> Load:
    cpu_before = _server_cpu(server_pid)
    if client == "wrk":
        load = _wrk(method, url, seconds, ctx)
    else:
        load = asyncio.run(_httpx(method, url, seconds, ctx.sizes.http_concurrency))
    used = _server_cpu(server_pid) - cpu_before
    total = max(load.requests_per_s * seconds, 1.0)
    return Load(
        load.requests_per_s,
        load.p50_ms,
        load.p99_ms,
        load.errors,
        load.client_cpu_pct,
        1000 * used / total,
    )


_WRK_POST = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(method: str, url: str, seconds: float, ctx: Context) -> Load:
    argv = ["wrk", "-t1", f"-c{ctx.sizes.http_concurrency}", f"-d{max(1, round(seconds))}s"]
    argv += ["--latency", "--timeout", "10s"]
    if method == "POST":
        script = ctx.work_dir / "post.lua"
        script.write_text(_WRK_POST.format(body=POST_BODY.decode()), encoding="utf-8")
        argv += ["-s", str(script)]
    argv.append(url)
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {output[-500:]}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"cannot read wrk's output: {output[-500:]}")
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?timeout (\d+)"):
        found = re.search(pattern, output)
        errors += int(found.group(1)) if found else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", output)
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return Load(
        requests_per_s=float(rate.group(1)),
        p50_ms=_wrk_latency(output, "50%"),
        p99_ms=_wrk_latency(output, "99%"),
        errors=errors,
        client_cpu_pct=100 * (usage.ru_utime + usage.ru_stime) / wall,
        server_cpu_ms_per_request=0.0,
    )


def _wrk_latency(output: str, label: str) -> float:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


async def _httpx(method: str, url: str, seconds: float, concurrency: int) -> Load:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
        began = time.perf_counter()
        cpu_began = time.process_time()
        stop_at = began + seconds

        async def user() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                try:
                    if method == "POST":
                        response = await http.post(url, content=POST_BODY, headers=headers)
                    else:
                        response = await http.get(url)
                    if response.status_code >= 300:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - now) * 1000)

        await asyncio.gather(*(user() for _ in range(concurrency)))
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
    return Load(
        requests_per_s=len(latencies) / wall,
        p50_ms=median(latencies) if latencies else float("nan"),
        p99_ms=percentile(latencies, 99),
        errors=errors,
        client_cpu_pct=100 * cpu / wall,
        server_cpu_ms_per_request=0.0,
    )
