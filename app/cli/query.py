"""`spine query`: read results, shaped as the API's objects (and validated by its rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from app.api.schemas_otc import DailyMetricResponse, LoadResponse, RejectResponse, TradeResponse
from app.cli.common import SYMBOL, parse_date, with_conn
from app.cli.query_finra import finra_group
from app.cli.render import FORMAT_OPTION, emit
from app.errors import NotFound
from app.otc import load_reads, reads

__all__ = ["query_group"]


@click.group("query")
def query_group() -> None:
    """Read results: OTC metrics, trades, loads and rejected lines, and FINRA weeks."""


# Options the query commands share.
_START_OPTION = click.option(
    "--start", "--start-date", "start", default=None, help="YYYY-MM-DD (inclusive)."
)
_END_OPTION = click.option(
    "--end", "--end-date", "end", default=None, help="YYYY-MM-DD (inclusive)."
)


def _limit_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--limit", type=click.IntRange(1, 100_000), default=default, show_default=True
    )


def _cut(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """The first `limit` of `limit + 1` rows, and the hint when more were there."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], f"(more rows: showing the first {limit}; use --limit to see more)"


def _dates(start: str | None, end: str | None) -> dict[str, Any]:
    first, last = parse_date(start), parse_date(end)
    if first and last and first > last:
        raise click.BadParameter(f"--start {first} is after --end {last}")
    return {"start_date": first, "end_date": last}


@query_group.command("metrics")
@click.option("--symbol", type=SYMBOL, default=None, help="Any case.")
@_START_OPTION
@_END_OPTION
@_limit_option(1000)
@FORMAT_OPTION
def query_metrics(
    symbol: str | None, start: str | None, end: str | None, limit: int, fmt: str
) -> None:
    """Daily metrics per symbol and trade date."""
    dates = _dates(start, end)
    rows, more = _cut(
        with_conn(lambda c: reads.daily_metrics(c, symbol=symbol, limit=limit + 1, **dates)),
        limit,
    )
    emit(
        [DailyMetricResponse.from_row(r) for r in rows],
        fmt,
        f"no metrics for {symbol}" if symbol else "no metrics (has otc_ingest run?)",
        kind=DailyMetricResponse,
        more=more,
    )


@query_group.command("trades")
@click.option("--symbol", type=SYMBOL, required=True, help="Any case.")
@_START_OPTION
@_END_OPTION
@_limit_option(100)
@FORMAT_OPTION
def query_trades(symbol: str, start: str | None, end: str | None, limit: int, fmt: str) -> None:
    """One symbol's normalized trades, oldest first."""
    dates = _dates(start, end)
    rows, more = _cut(with_conn(lambda c: reads.trades(c, symbol, limit=limit + 1, **dates)), limit)
    emit(
        [TradeResponse.from_row(r) for r in rows],
        fmt,
        f"no trades for {symbol}",
        kind=TradeResponse,
        more=more,
    )


@query_group.command("loads")
@_limit_option(20)
@FORMAT_OPTION
def query_loads(limit: int, fmt: str) -> None:
    """Files loaded by otc_ingest, newest first, with their line counts."""
    rows, more = _cut(with_conn(lambda c: load_reads.loads(c, limit=limit + 1)), limit)
    emit(
        [LoadResponse.from_row(r) for r in rows],
        fmt,
        "no loads (has otc_ingest run?)",
        kind=LoadResponse,
        more=more,
    )


@query_group.command("rejects")
@click.option(
    "--load", "load_id", type=click.IntRange(1), required=True, help="`spine query loads` ids."
)
@_limit_option(100)
@FORMAT_OPTION
def query_rejects(load_id: int, limit: int, fmt: str) -> None:
    """One load's rejected lines, in file order, with the rule each broke."""

    async def go(conn: Any) -> list[load_reads.Reject]:
        if not await load_reads.load_exists(conn, load_id):
            raise NotFound(f"no load {load_id} (`spine query loads` lists them)")
        return await load_reads.rejects(conn, load_id, limit=limit + 1)

    rows, more = _cut(with_conn(go), limit)
    emit(
        [RejectResponse.from_row(r) for r in rows],
        fmt,
        f"no rejected lines in load {load_id}",
        kind=RejectResponse,
        more=more,
    )


query_group.add_command(finra_group)
