"""`spine query`: read results, shaped as the API's objects."""

from __future__ import annotations

import click

from app.api.schemas import DailyMetricResponse, TradeResponse
from app.cli.common import parse_date, with_conn
from app.cli.query_finra import finra_group
from app.cli.render import FORMAT_OPTION, emit
from app.otc import reads

__all__ = ["query_group"]


@click.group("query")
def query_group() -> None:
    """Read OTC results and FINRA weeks."""


# Options the query commands share.
_START_OPTION = click.option(
    "--start", "--start-date", "start", default=None, help="YYYY-MM-DD (inclusive)."
)
_END_OPTION = click.option(
    "--end", "--end-date", "end", default=None, help="YYYY-MM-DD (inclusive)."
)


@query_group.command("metrics")
@click.option("--symbol", default=None)
@_START_OPTION
@_END_OPTION
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@FORMAT_OPTION
def query_metrics(
    symbol: str | None, start: str | None, end: str | None, limit: int, fmt: str
) -> None:
    """Daily metrics per symbol and trade date (json: the API's objects)."""
    rows = with_conn(
        lambda c: reads.daily_metrics(
            c,
            symbol=symbol.upper() if symbol else None,
            start_date=parse_date(start),
            end_date=parse_date(end),
            limit=limit,
        )
    )
    emit([DailyMetricResponse.from_row(r) for r in rows], fmt, "no metrics (has otc_ingest run?)")


@query_group.command("trades")
@click.option("--symbol", required=True)
@_START_OPTION
@_END_OPTION
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@FORMAT_OPTION
def query_trades(symbol: str, start: str | None, end: str | None, limit: int, fmt: str) -> None:
    """One symbol's normalized trades, oldest first (json: the API's objects)."""
    rows = with_conn(
        lambda c: reads.trades(
            c, symbol.upper(), start_date=parse_date(start), end_date=parse_date(end), limit=limit
        )
    )
    emit([TradeResponse.from_row(r) for r in rows], fmt, f"no trades for {symbol.upper()}")


query_group.add_command(finra_group)
