"""OTC growth: successive 1M-trade files into one database, time per file and bytes per trade.

Not part of `make bench` (it loads many millions of trades); run it by hand:

    python -m bench.otc_growth --database-url postgresql://... --files 5

Each file is a new trading period (the generator's next `days` weekdays, its own
trade ids), loaded by `otc_ingest` through a one-process pool, as a daily feed
would be. After each file it prints the file's time, the stored bytes per trade
by relation, and the p50/p99 of the trades query behind GET /api/v1/otc/trades
(`app.otc.reads.trades`, keyset pages of 100 for several symbols).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import date
from pathlib import Path
from typing import Any

from app import db
from app.otc import reads
from app.otc.generator import generate, trading_days
from bench import otc_data
from bench.context import FULL, Context
from bench.harness import Scratch, WorkerPool, connect, percentile, progress
from bench.otc_storage import stored_bytes


def _start(first: date, index: int, days: int) -> date:
    """The first trading day of file `index` (files cover successive runs of `days` weekdays)."""
    return trading_days(first, days * index + 1)[-1]


async def _page_times(url: str, symbols: list[str], pages: int) -> list[float]:
    """Milliseconds per keyset page: `pages` pages of 100 trades for each symbol."""
    times: list[float] = []
    async with await db.aconnect(url) as conn:
        for symbol in symbols:
            after = None
            for _ in range(pages):
                began = time.perf_counter()
                rows = await reads.trades(conn, symbol, limit=100, after=after)
                times.append((time.perf_counter() - began) * 1000)
                if not rows:
                    break
                last = rows[-1]
                after = (last.trade_date, last.executed_at, last.trade_id)
    return times


def _trades_query(url: str, seed: int) -> dict[str, float]:
    with connect(url) as conn:
        names = [
            r["symbol"]
            for r in conn.execute(
                "SELECT DISTINCT symbol FROM otc_metrics_daily ORDER BY symbol"
            ).fetchall()
        ]
    chosen = random.Random(seed).sample(names, min(10, len(names)))
    asyncio.run(_page_times(url, chosen, 5))  # warm the cache and the connection
    times = asyncio.run(_page_times(url, chosen, 30))
    return {"p50_ms": round(percentile(times, 50), 3), "p99_ms": round(percentile(times, 99), 3)}


# The trades-query index before migration 015, and after it.
_INDEXES = {
    "symbol, trade_date, executed_at, trade_id": "idx_ab_with_trade_id",
    "symbol, trade_date, executed_at": "idx_ab_without_trade_id",
}


def _index_ab(url: str, rounds: int) -> list[dict[str, Any]]:
    """p50/p99 of the trades query with the one index or the other, alternated, both freshly built.

    The table's own index is dropped first, so both sides are built the same way (packed).
    """
    with connect(url) as conn:
        conn.execute("DROP INDEX IF EXISTS idx_otc_trades_symbol_date")
    current: str | None = None
    out: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for columns, name in _INDEXES.items():
            with connect(url) as conn:
                conn.execute(f"CREATE INDEX {name} ON otc_trades ({columns})")
                if current is not None:
                    conn.execute(f"DROP INDEX {current}")
                conn.execute("ANALYZE otc_trades")
                size = conn.execute(f"SELECT pg_relation_size('{name}') AS b").fetchone() or {}
            current = name
            result = {"round": round_ + 1, "index": columns, "index_mb": int(size["b"]) >> 20}
            result.update(_trades_query(url, 99))
            out.append(result)
            progress(json.dumps(result))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.otc_growth", description=__doc__)
    parser.add_argument("--database-url", required=True, help="Server for a scratch database.")
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--rows", type=int, default=FULL.ingest_rows)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--index-ab",
        type=int,
        default=0,
        help="After the last file: this many rounds of the trades query with the old and "
        "the new trades-query index, alternated.",
    )
    args = parser.parse_args(argv)
    scratch = Scratch(args.database_url)
    scratch.drop_leftovers()
    scratch.create_template()
    work = Path(f"/tmp/{scratch.run_id}")
    ctx = Context(scratch=scratch, sizes=FULL, repeat=1, work_dir=work)
    url = scratch.create("growth")
    results: list[dict[str, Any]] = []
    try:
        days = FULL.ingest_days
        first = date(2026, 1, 5)
        with (
            otc_data.bench_settings(ctx),
            WorkerPool(url, 1, ctx.log_path("growth-pool"), SPINE_DATA_DIR=str(work / "data")),
        ):
            for index in range(args.files):
                path = otc_data.data_dir(ctx) / f"growth_{index}.csv"
                start = _start(first, index, days)
                generate(
                    path,
                    args.rows,
                    symbols=FULL.ingest_symbols,
                    days=days,
                    seed=100 + index,
                    start_date=start,
                )
                otc_data.checkpoint(url)
                done = otc_data.run_execution(url, "otc_ingest", {"file": path.name})
                path.unlink()
                sizes = stored_bytes(url)
                query = _trades_query(url, index)
                result = {"file": index + 1, "seconds": round(done.seconds, 2), **sizes, **query}
                results.append(result)
                progress(json.dumps(result))
        if args.index_ab:
            results.extend(_index_ab(url, args.index_ab))
    finally:
        scratch.drop_all()
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
