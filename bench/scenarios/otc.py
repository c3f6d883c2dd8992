"""OTC: ingest a generated trades file end to end, and a full metrics recompute.

ingest — Market Spine: `otc_ingest` submitted through the dispatcher and run by
a one-process worker pool (`spine worker start --max-concurrent 1`) into empty
OTC tables; time = the execution's created_at -> completed_at (COPY of the raw
lines, normalization, metrics, all in one transaction), plus the worker's peak
RSS (VmHWM). Baseline: a bare COPY (psycopg, CSV with header, 1 MiB chunks) of
the same file into a table with otc_trades' primary key (trade_id), empty too.
A CHECKPOINT precedes each side. A second row reports the bytes stored per
trade after the last run (otc_trades' heap and indexes, and the load's raw
lines, which are retained until `spine data prune-raw`), beside the bare COPY's
table (the trades and their primary key only).

metrics — Market Spine: `otc_compute_metrics` with no params (every pair)
over the loaded trades, through the pool. Baseline: the best of two plain SQL
forms on the same otc_trades rows into a bare table shaped like
otc_metrics_daily: one GROUP BY + INSERT ... ON CONFLICT DO UPDATE (rewriting
only rows that differ), and TRUNCATE + INSERT ... SELECT in one transaction.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from bench import otc_data
from bench.context import Context
from bench.harness import Row, Target, WorkerPool, connect, median, peak_rss_bytes, progress
from bench.otc_storage import stored_bytes

INGEST = "ingest"
METRICS = "metrics"

_BARE_TRADES = """
DROP TABLE IF EXISTS bench_trades;
CREATE TABLE bench_trades (
    trade_id    TEXT PRIMARY KEY,
    symbol      TEXT NOT NULL,
    executed_at TIMESTAMPTZ NOT NULL,
    price       NUMERIC(18, 6) NOT NULL,
    size        BIGINT NOT NULL,
    side        TEXT NOT NULL,
    venue       TEXT NOT NULL
);
"""
_BARE_COPY = (
    "COPY bench_trades (trade_id, symbol, executed_at, price, size, side, venue) "
    "FROM STDIN (FORMAT csv, HEADER true)"
)

_BARE_METRICS = """
DROP TABLE IF EXISTS bench_metrics;
CREATE TABLE bench_metrics (
    symbol         TEXT NOT NULL,
    trade_date     DATE NOT NULL,
    trade_count    BIGINT NOT NULL,
    total_volume   NUMERIC NOT NULL,
    total_notional NUMERIC NOT NULL,
    vwap           NUMERIC NOT NULL,
    high_price     NUMERIC(18, 6) NOT NULL,
    low_price      NUMERIC(18, 6) NOT NULL,
    computed_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, trade_date)
);
CREATE INDEX ON bench_metrics (trade_date, symbol);
"""
_AGGREGATE = """
SELECT symbol, trade_date, count(*), sum(size), sum(price * size),
       round(sum(price * size) / sum(size), 10), max(price), min(price)
FROM otc_trades GROUP BY symbol, trade_date
"""
_UPSERT = f"""
INSERT INTO bench_metrics AS m (symbol, trade_date, trade_count, total_volume, total_notional,
                                vwap, high_price, low_price)
{_AGGREGATE}
ON CONFLICT (symbol, trade_date) DO UPDATE
SET trade_count = excluded.trade_count, total_volume = excluded.total_volume,
    total_notional = excluded.total_notional, vwap = excluded.vwap,
    high_price = excluded.high_price, low_price = excluded.low_price, computed_at = now()
WHERE (m.trade_count, m.total_volume, m.total_notional, m.vwap, m.high_price, m.low_price)
      IS DISTINCT FROM (excluded.trade_count, excluded.total_volume, excluded.total_notional,
                        excluded.vwap, excluded.high_price, excluded.low_price)
"""
_REPLACE = f"""
INSERT INTO bench_metrics (symbol, trade_date, trade_count, total_volume, total_notional,
                           vwap, high_price, low_price)
{_AGGREGATE}
"""


def _mib(n: int) -> float:
    return n / 2**20


def run_ingest(ctx: Context) -> None:
    sizes = ctx.sizes
    url = ctx.scratch.create(INGEST)
    keep = False
    try:
        big = otc_data.trades_file(
            ctx, sizes.ingest_rows, symbols=sizes.ingest_symbols, days=sizes.ingest_days
        )
        small = otc_data.trades_file(
            ctx, sizes.warmup_rows, symbols=sizes.ingest_symbols, days=sizes.ingest_days
        )
        with connect(url) as conn:
            conn.execute(_BARE_TRADES.encode())
        spine: list[float] = []
        bare: list[float] = []
        rows_per_s: list[float] = []
        env = {"SPINE_DATA_DIR": str(otc_data.data_dir(ctx))}
        with (
            otc_data.bench_settings(ctx),
            WorkerPool(url, 1, ctx.log_path("ingest-pool"), **env) as pool,
        ):
            for attempt in range(ctx.repeat + 1):
                path = big if attempt else small  # the warm-up loads a small file
                otc_data.reset_otc(url)
                otc_data.checkpoint(url)
                done = otc_data.run_execution(url, "otc_ingest", {"file": path.name})
                read = int((done.result or {}).get("rows_read", 0))
                otc_data.checkpoint(url)
                copy_s = _bare_copy(url, path)
                tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
                progress(
                    f"ingest {tag} ({path.name}): spine {done.seconds:.2f}s "
                    f"({read / done.seconds:,.0f} rows/s), bare COPY {copy_s:.2f}s"
                )
                if attempt:
                    if read != sizes.ingest_rows:
                        raise RuntimeError(
                            f"otc_ingest read {read} rows, expected {sizes.ingest_rows}"
                        )
                    spine.append(done.seconds)
                    bare.append(copy_s)
                    rows_per_s.append(read / done.seconds)
            pids = pool.worker_pids()
            rss = max((peak_rss_bytes(pid) for pid in pids), default=0)
            summary = done.result or {}
        stored = stored_bytes(url)  # the last measured run's load, raw lines retained
        ctx.rows.append(
            Row(
                scenario=INGEST,
                label=f"{sizes.ingest_rows:,}-trade file end to end (otc_ingest)",
                unit="s",
                spine=spine,
                baseline=bare,
                target=Target("ratio_max", 1.5),
                notes={
                    "rows_per_s": median(rows_per_s),
                    "baseline_rows_per_s": sizes.ingest_rows / median(bare),
                    "worker_peak_rss_mib": round(_mib(rss), 1),
                    "file_mib": round(_mib(big.stat().st_size), 1),
                    "inserted": summary.get("inserted"),
                    "rejected": summary.get("rejected"),
                    "metrics_rows_changed": summary.get("metrics_rows_changed"),
                },
            )
        )
        ctx.rows.append(
            Row(
                scenario=INGEST,
                label="stored bytes per trade: otc_trades, its indexes, raw lines",
                unit="B",
                spine=[stored["bytes_per_trade"]],
                baseline=[_bare_bytes_per_trade(url)],
                target=Target("abs_max", 200),
                notes={k: v for k, v in stored.items() if k.endswith("B/trade")},
            )
        )
        ctx.shared["otc_url"] = url  # loaded with the big file: the metrics scenario reuses it
        ctx.shared["otc_rows"] = sizes.ingest_rows
        keep = True
    finally:
        if not keep:
            ctx.scratch.drop(url)


def _bare_copy(url: str, path: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE bench_trades")
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(_BARE_COPY) as copy, path.open("rb") as source:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - began


def _bare_bytes_per_trade(url: str) -> float:
    """The bare COPY's table (the trades with their primary key, nothing else) per trade."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('bench_trades') AS bytes, count(*) AS n"
            " FROM bench_trades"
        ).fetchone()
    return round(int(row["bytes"]) / max(int(row["n"]), 1), 1) if row else 0.0


def _loaded_database(ctx: Context) -> str:
    """The ingest scenario's database, or a fresh one loaded here (untimed)."""
    url = ctx.shared.get("otc_url")
    if isinstance(url, str):
        return url
    sizes = ctx.sizes
    url = ctx.scratch.create(METRICS)
    path = otc_data.trades_file(
        ctx, sizes.ingest_rows, symbols=sizes.ingest_symbols, days=sizes.ingest_days
    )
    began = time.monotonic()
    otc_data.load_dataset(ctx, url, path, "metrics-load-pool")
    progress(f"loaded {path.name} for the recompute in {time.monotonic() - began:.1f}s")
    ctx.shared["otc_url"] = url
    ctx.shared["otc_rows"] = sizes.ingest_rows
    return url


def run_metrics(ctx: Context) -> None:
    url = _loaded_database(ctx)
    trades = int(str(ctx.shared["otc_rows"]))
    with connect(url) as conn:
        conn.execute(_BARE_METRICS.encode())
        conn.execute("VACUUM ANALYZE otc_trades")
        row = conn.execute("SELECT count(*) AS n FROM otc_metrics_daily").fetchone()
        pairs = int(row["n"]) if row else 0
    spine: list[float] = []
    bare: list[float] = []
    upserts: list[float] = []
    replaces: list[float] = []
    with WorkerPool(url, 1, ctx.log_path("metrics-pool")) as _pool:
        for attempt in range(ctx.repeat + 1):
            done = otc_data.run_execution(url, "otc_compute_metrics", {})
            upsert_s, replace_s = _bare_metrics(url)
            best = min(upsert_s, replace_s)
            tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
            progress(
                f"metrics {tag}: spine {done.seconds * 1000:,.0f} ms, bare upsert "
                f"{upsert_s * 1000:,.0f} ms, bare replace {replace_s * 1000:,.0f} ms"
            )
            if attempt:
                spine.append(done.seconds * 1000)
                bare.append(best * 1000)
                upserts.append(upsert_s * 1000)
                replaces.append(replace_s * 1000)
    ctx.rows.append(
        Row(
            scenario=METRICS,
            label=f"full recompute over {trades:,} trades, {pairs:,} (symbol, date) pairs",
            unit="ms",
            spine=spine,
            baseline=bare,
            target=Target("ratio_max", 1.3),
            notes={"bare_upsert_ms": median(upserts), "bare_replace_ms": median(replaces)},
        )
    )


def _bare_metrics(url: str) -> tuple[float, float]:
    """Seconds for the plain upsert and for truncate + insert (each its own transaction)."""
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute(_UPSERT)
        upsert_s = time.perf_counter() - began
        began = time.perf_counter()
        with conn.transaction():
            conn.execute("TRUNCATE bench_metrics")
            conn.execute(_REPLACE)
        replace_s = time.perf_counter() - began
    return upsert_s, replace_s
