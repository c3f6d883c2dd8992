"""OTC's commands, added to the CLI's existing groups: `spine query metrics|trades|loads|rejects`
and `spine data generate|prune-raw`.

The JSON output is OTC's response objects (`app.otc.schemas`), the API's own.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from app.cli.common import parse_age, parse_date, with_conn
from app.cli.render import FORMAT_OPTION, emit, limit_option
from app.config import get_settings
from app.dates import range_problem
from app.errors import NotFound
from app.otc import load_reads, reads
from app.otc.generator import after_sample, default_ids, generate, trading_days
from app.otc.retention import prune_raw
from app.otc.schemas import DailyMetricResponse, LoadResponse, RejectResponse, TradeResponse
from app.otc.symbols import InvalidSymbol, normalize_symbol

__all__ = ["COMMANDS"]

PROGRESS_FROM_ROWS = 200_000  # smaller files take well under a second: no progress


class _Symbol(click.ParamType):  # type: ignore[type-arg]
    """A symbol by the API's rule (app.otc.symbols), upper-cased."""

    name = "symbol"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return normalize_symbol(str(value))
        except InvalidSymbol as exc:
            self.fail(str(exc), param, ctx)


SYMBOL = _Symbol()


# Options the query commands share.
_START_OPTION = click.option(
    "--start", "--start-date", "start", default=None, help="YYYY-MM-DD (inclusive)."
)
_END_OPTION = click.option(
    "--end", "--end-date", "end", default=None, help="YYYY-MM-DD (inclusive)."
)


def _dates(start: str | None, end: str | None) -> dict[str, Any]:
    first, last = parse_date(start), parse_date(end)
    if range_problem(first, last):
        raise click.BadParameter(f"--start {first} is after --end {last}")
    return {"start_date": first, "end_date": last}


@click.command("metrics")
@click.option("--symbol", type=SYMBOL, default=None, help="Any case.")
@_START_OPTION
@_END_OPTION
@limit_option(1000)
@FORMAT_OPTION
def query_metrics(
    symbol: str | None, start: str | None, end: str | None, limit: int, fmt: str
) -> None:
    """Daily metrics per symbol and trade date."""
    dates = _dates(start, end)
    rows = with_conn(lambda c: reads.daily_metrics(c, symbol=symbol, limit=limit + 1, **dates))
    emit(
        [DailyMetricResponse.from_row(r) for r in rows],
        fmt,
        f"no metrics for {symbol}" if symbol else "no metrics (has otc_ingest run?)",
        kind=DailyMetricResponse,
        limit=limit,
    )


@click.command("trades")
@click.option("--symbol", type=SYMBOL, required=True, help="Any case.")
@_START_OPTION
@_END_OPTION
@limit_option(100)
@FORMAT_OPTION
def query_trades(symbol: str, start: str | None, end: str | None, limit: int, fmt: str) -> None:
    """One symbol's normalized trades, oldest first."""
    dates = _dates(start, end)
    rows = with_conn(lambda c: reads.trades(c, symbol, limit=limit + 1, **dates))
    emit(
        [TradeResponse.from_row(r) for r in rows],
        fmt,
        f"no trades for {symbol}",
        kind=TradeResponse,
        limit=limit,
    )


@click.command("loads")
@limit_option(20)
@FORMAT_OPTION
def query_loads(limit: int, fmt: str) -> None:
    """Files loaded by otc_ingest, newest first, with their line counts."""
    rows = with_conn(lambda c: load_reads.loads(c, limit=limit + 1))
    emit(
        [LoadResponse.from_row(r) for r in rows],
        fmt,
        "no loads (has otc_ingest run?)",
        kind=LoadResponse,
        limit=limit,
    )


@click.command("rejects")
@click.option(
    "--load", "load_id", type=click.IntRange(1), required=True, help="`spine query loads` ids."
)
@limit_option(100)
@FORMAT_OPTION
def query_rejects(load_id: int, limit: int, fmt: str) -> None:
    """One load's rejected lines, in file order, with the rule each broke."""

    async def go(conn: Any) -> list[load_reads.Reject]:
        if not await load_reads.load_exists(conn, load_id):
            raise NotFound(f"no load {load_id} (`spine query loads` lists them)")
        return await load_reads.rejects(conn, load_id, limit=limit + 1)

    rows = with_conn(go)
    emit(
        [RejectResponse.from_row(r) for r in rows],
        fmt,
        f"no rejected lines in load {load_id}",
        kind=RejectResponse,
        limit=limit,
    )


@click.command("generate")
@click.option("--rows", type=click.IntRange(0), default=1_000_000, show_default=True)
@click.option("--symbols", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same file.")
@click.option(
    "--start-date",
    "start",
    default=after_sample().isoformat(),
    show_default=True,
    help="First trading day (YYYY-MM-DD; weekends are skipped). The default is the first "
    "weekday after the sample's last day, so generated trades never mix into the "
    "sample's metrics.",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def data_generate(
    *, rows: int, symbols: int, days: int, seed: int, start: str, force: bool, out: Path
) -> None:
    """Write a synthetic trades CSV (random-walk prices) to OUT, for benchmarks and trials.

    Trade ids are unique per (seed, start date), so ingesting a generated file
    never overwrites the sample's or another generated file's trades. To ingest
    OUT, put it in the data directory (SPINE_DATA_DIR; files there are
    git-ignored, except the sample).
    """
    start_date = parse_date(start)
    assert start_date is not None
    try:
        trading_days(start_date, days)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--start-date") from None
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists: use --force to overwrite it")
    if not out.parent.is_dir():
        raise click.ClickException(f"{out.parent} is not a directory")
    started = time.perf_counter()
    if rows >= PROGRESS_FROM_ROWS:
        with click.progressbar(
            length=rows, label=f"writing {out.name}", file=sys.stderr, show_percent=True
        ) as bar:
            shown = 0

            def advance(written: int) -> None:
                nonlocal shown
                bar.update(min(written, rows) - shown)
                shown = min(written, rows)

            written = generate(
                out, rows, symbols, days, seed,
                start_date=start_date, market_tz=get_settings().market_tz, on_rows=advance,
            )  # fmt: skip
    else:
        written = generate(
            out, rows, symbols, days, seed,
            start_date=start_date, market_tz=get_settings().market_tz,
        )  # fmt: skip
    took = time.perf_counter() - started
    size_mb = out.stat().st_size / 1e6
    click.echo(
        f"wrote {written:,} trades ({size_mb:.1f} MB, ids {default_ids(seed, start_date)}...) "
        f"to {out} in {took:.1f}s"
    )


@click.command("prune-raw")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Age, like 30d or 12h (default: SPINE_RAW_RETENTION_DAYS days).",
)
def data_prune_raw(older_than: str | None) -> None:
    """Drop the raw lines of loads older than the given age; their summaries and rejects stay."""
    if older_than is None:
        days = get_settings().raw_retention_days
        if days == 0:
            raise click.UsageError(
                "give --older-than (like 30d), or set SPINE_RAW_RETENTION_DAYS to a number of days"
            )
        older_than = f"{days}d"
    seconds = parse_age(older_than)
    pruned = with_conn(lambda c: prune_raw(c, older_than_seconds=seconds))
    click.echo(
        f"dropped the raw lines of {len(pruned.load_ids)} load(s) older than {older_than} "
        f"({pruned.bytes_freed / 1e6:.1f} MB freed)"
    )


COMMANDS = {
    "query": [query_metrics, query_trades, query_loads, query_rejects],
    "data": [data_generate, data_prune_raw],
}
