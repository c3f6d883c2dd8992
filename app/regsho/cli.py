"""Reg SHO's commands, added to the CLI's `query` group: `spine query regsho ...`.

Days, a day's symbols, one symbol's history and a day's markets. The JSON
output is the API's response objects (`app.regsho.schemas`), field for field.
A short ratio counts FINRA-reported volume only, and it is not short interest.
"""

from __future__ import annotations

from datetime import date
from typing import get_args

import click

from app.cli.common import with_conn
from app.cli.render import FORMAT_OPTION, emit, emit_one, limit_option
from app.dates import parse_date
from app.db import AsyncConn
from app.errors import NotFound
from app.regsho import reads
from app.regsho.keys import MARKET_CHOICES, SYMBOLS, MarketChoice
from app.regsho.reads import SymbolSort
from app.regsho.report import day_markets
from app.regsho.schemas import (
    RegshoDayResponse,
    RegshoMarketResponse,
    RegshoMarketsResponse,
    RegshoMismatchResponse,
    RegshoSymbolHistoryResponse,
    RegshoSymbolResponse,
)

__all__ = ["COMMANDS", "regsho_group"]

_EVERYTHING = 100_000  # a CLI listing is one page


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value, "date")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _symbol(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return SYMBOLS.key(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


_DATE_OPTION = click.option(
    "--date", "day", default=None, callback=_day, help="The day (YYYY-MM-DD); default: the latest."
)
_MARKET_OPTION = click.option(
    "--market",
    type=click.Choice(MARKET_CHOICES),
    default="all",
    show_default=True,
    help="all: the five facility files summed (CNMS left out); or one file's code.",
)


@click.group("regsho")
def regsho_group() -> None:
    """Read FINRA Reg SHO daily short sale volume (FINRA-reported volume only; not short
    interest). Load it with regsho_ingest, compute days with regsho_compute."""


async def _loaded(conn: AsyncConn, day: date | None) -> date:
    """The day asked for (a file of it must be loaded), else the latest loaded day."""
    if day is None:
        day = await reads.latest_day(conn)
        if day is None:
            raise NotFound("no Reg SHO day is loaded (run regsho_ingest)")
    elif not await reads.day_loaded(conn, day):
        raise NotFound(f"no Reg SHO file loaded for {day}")
    return day


@regsho_group.command("days")
@FORMAT_OPTION
def regsho_days(fmt: str) -> None:
    """Each loaded day: files, symbols, totals and reconciliation."""
    rows = with_conn(lambda c: reads.days(c, limit=_EVERYTHING + 1))
    emit(
        [RegshoDayResponse.from_row(r) for r in rows],
        fmt,
        "no Reg SHO day is loaded",
        kind=RegshoDayResponse,
        limit=_EVERYTHING,
    )


@regsho_group.command("symbols")
@_DATE_OPTION
@_MARKET_OPTION
@click.option("--sort", type=click.Choice(get_args(SymbolSort)), default="short_ratio")
@click.option("--min-volume", type=click.IntRange(0), default=None)
@limit_option(100, _EVERYTHING)
@FORMAT_OPTION
def regsho_symbols(
    *,
    day: date | None,
    market: MarketChoice,
    sort: SymbolSort,
    min_volume: int | None,
    limit: int,
    fmt: str,
) -> None:
    """A day's symbols by short ratio (or short or total volume), descending."""

    async def go(conn: AsyncConn) -> list[reads.SymbolDay]:
        chosen = await _loaded(conn, day)
        return await reads.symbols(
            conn, chosen, market=market, min_volume=min_volume, sort=sort, limit=limit + 1
        )

    rows = with_conn(go)
    emit(
        [RegshoSymbolResponse.from_row(r) for r in rows],
        fmt,
        "no symbols",
        kind=RegshoSymbolResponse,
        limit=limit,
    )


@regsho_group.command("symbol")
@click.argument("symbol", callback=_symbol)
@_DATE_OPTION
@_MARKET_OPTION
@FORMAT_OPTION
def regsho_symbol(symbol: str, day: date | None, market: MarketChoice, fmt: str) -> None:
    """One symbol (case-sensitive: CPK is not CpK) on every loaded day (or --date), with its
    5-day volume-weighted ratio and its change in points."""
    rows = with_conn(
        lambda c: reads.symbol_history(
            c, symbol, market=market, start=day, end=day, limit=_EVERYTHING + 1
        )
    )
    if not rows:
        when = f" on {day}" if day else ""
        raise NotFound(f"no Reg SHO data for symbol {symbol!r} ({market}){when}")
    emit(
        [RegshoSymbolHistoryResponse.from_row(r) for r in rows],
        fmt,
        "",
        kind=RegshoSymbolHistoryResponse,
        limit=_EVERYTHING,
    )


@regsho_group.command("markets")
@_DATE_OPTION
@FORMAT_OPTION
def regsho_markets(day: date | None, fmt: str) -> None:
    """A day's files with their share of the facilities' volume, and the reconciliation."""

    async def go(conn: AsyncConn) -> RegshoMarketsResponse:
        return await day_markets(conn, await _loaded(conn, day))

    result = with_conn(go)
    if fmt == "json":
        emit_one(result, fmt, "")
        return
    emit(result.markets, fmt, "no files", kind=RegshoMarketResponse)
    rec = result.reconciliation
    if fmt != "csv":
        mismatched = "" if rec.mismatched_symbols is None else f", {rec.mismatched_symbols} symbols"
        stale = " (stale: a file changed since)" if rec.stale else ""
        click.echo(f"reconciliation {result.date}: {rec.status}{mismatched}{stale}")
        if rec.mismatches:
            emit(rec.mismatches, fmt, "", kind=RegshoMismatchResponse)


COMMANDS = {"query": [regsho_group]}
